"""Tests of the voice models (real models, no mocks). Shared helpers for building test clips."""

from __future__ import annotations

import numpy as np

from voice.audio import RATE, to_float32


def silence(seconds: float) -> np.ndarray:
    """float32 zeros, 16 kHz."""
    return np.zeros(int(round(seconds * RATE)), np.float32)


def speak(tts, text: str, lead_s: float = 0.0, tail_s: float = 0.0, peak: float = 0.5) -> np.ndarray:
    """``text`` synthesized by ``tts`` at 16 kHz, peak-normalized to ``peak``, between silences (s)."""
    speech = tts.synthesize(text)
    x = to_float32(speech.samples, speech.sample_rate)
    x = peak * x / max(float(np.abs(x).max()), 1e-9)
    return np.concatenate([silence(lead_s), x, silence(tail_s)]).astype(np.float32)


def speech_bounds(x: np.ndarray, level: float = 0.01) -> tuple[float, float]:
    """(first, last) time where |x| exceeds ``level`` (the ground truth of a clean synthetic clip), s."""
    idx = np.nonzero(np.abs(x) > level)[0]
    return idx[0] / RATE, idx[-1] / RATE
