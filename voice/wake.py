"""Wake word detection with microWakeWord models through pymicro-wakeword (TensorFlow Lite, on the CPU).

The pymicro-wakeword wheel ships four models: ``okay_nabu``, ``hey_jarvis``, ``hey_mycroft``, ``alexa``
(:func:`voice.models.wakeword_models`). Audio goes through microWakeWord's front end (40 log-mel
features per 10 ms step, 30 ms window); the model scores every 3 steps and a wake word is detected
when the mean of its last ``sliding_window_size`` scores exceeds the model's ``probability_cutoff``
(both from the model's JSON, as ESPHome and Home Assistant use them).

Source: pymicro-wakeword 2.x (OHF-Voice, Apache-2.0) ``MicroWakeWord`` / ``MicroWakeWordFeatures``;
models by Kevin Ahrendt (microWakeWord).
"""

from __future__ import annotations

import numpy as np

from tools.errors import SenseError
from voice.audio import RATE, to_float32, to_pcm16
from voice.models import wakeword_models

STEP_S = 0.010
"""microWakeWord's feature step, s."""
WINDOW_S = 0.030
"""microWakeWord's feature window, s: feature k covers the stream up to ``WINDOW_S + k * STEP_S``."""
REFRACTORY_S = 2.0
"""After a detection, further detections are ignored for this long (one utterance fires once), s."""


class UnknownWakeWordError(SenseError, ValueError):
    """The wake word model is not one the installed pymicro-wakeword ships; the message lists the known ones."""


class WakeWordDetector:
    """Streaming wake word detector for 16 kHz 16-bit mono audio.

    Args:
        name: model name, one of :func:`voice.models.wakeword_models` (default ``okay_nabu``).
        refractory_s: detections less than this long after the previous one are ignored, s.
    Raises:
        UnknownWakeWordError: ``name`` is not a shipped model (the message lists the known names).
    """

    def __init__(self, name: str = "okay_nabu", refractory_s: float = REFRACTORY_S) -> None:
        known = wakeword_models()
        if name not in known:
            listed = ", ".join(known) or "none (pymicro-wakeword is not installed; run `make setup`)"
            raise UnknownWakeWordError(f"unknown wake word {name!r}; known: {listed}")
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

        self.name, self.refractory_s = name, float(refractory_s)
        self._model = MicroWakeWord.from_builtin(Model(name))
        self._features = MicroWakeWordFeatures()
        self.wake_word: str = self._model.wake_word
        self.cutoff: float = float(self._model.probability_cutoff)
        self._frames = 0
        self._last: float | None = None
        self.max_probability = 0.0
        """Highest windowed probability since the last :meth:`reset` (for diagnostics), 0-1."""

    def reset(self) -> None:
        """Forget the stream: stream time restarts at 0 and the model's state is cleared."""
        self._model.reset()
        self._features.reset()
        self._frames, self._last, self.max_probability = 0, None, 0.0

    @property
    def stream_s(self) -> float:
        """Stream time covered by the features computed so far, s."""
        return WINDOW_S + (self._frames - 1) * STEP_S if self._frames else 0.0

    def process(self, chunk: np.ndarray | bytes) -> float | None:
        """Feed the next chunk of the stream (any length).

        Args:
            chunk: 16 kHz mono; int16 or float32 in [-1, 1], shape (samples,), or 16-bit PCM bytes.
        Returns:
            Stream time of the first detection in this chunk, s (the end of the audio that triggered it),
            or None.
        """
        pcm = chunk if isinstance(chunk, (bytes, bytearray)) else to_pcm16(np.asarray(chunk))
        found = None
        for features in self._features.process_streaming(bytes(pcm)):
            self._frames += 1
            prob = self._model.process_streaming_prob(features)
            if prob is None:
                continue
            self.max_probability = max(self.max_probability, prob)
            if prob > self.cutoff:
                now = self.stream_s
                if self._last is None or now - self._last >= self.refractory_s:
                    self._last = now
                    found = now if found is None else found
        return found

    def detect(self, audio: np.ndarray, sample_rate: int = RATE) -> float | None:
        """Whether the wake word is in a whole clip (the detector is reset first).

        Args:
            audio: shape (samples,), float32 in [-1, 1] or int16, mono; resampled to 16 kHz when needed.
            sample_rate: rate of ``audio``, Hz.
        Returns:
            Time of the first detection in the clip, s, or None.
        """
        self.reset()
        samples = to_float32(audio, sample_rate, RATE)
        found = None
        for start in range(0, len(samples), 1600):  # 100 ms chunks, as a microphone delivers them
            hit = self.process(samples[start:start + 1600])
            found = hit if found is None else found
        return found
