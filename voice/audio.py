"""Sample-format helpers shared by the voice models (all of them want 16 kHz mono)."""

from __future__ import annotations

import numpy as np

RATE = 16000
"""Sample rate of every voice model's input (Whisper, Silero VAD, microWakeWord), Hz."""


def to_float32(audio: np.ndarray | bytes, sample_rate: int = RATE, target_rate: int = RATE) -> np.ndarray:
    """Audio as float32 mono in [-1, 1] at ``target_rate``.

    Args:
        audio: shape (samples,) or (samples, channels) (channels are averaged); float in [-1, 1],
            or int16 (scaled by 1/32768), or ``bytes`` of 16-bit little-endian mono PCM.
        sample_rate: rate of ``audio``, Hz; resampled with soxr (HQ) when it differs from ``target_rate``.
        target_rate: rate of the result, Hz.
    Returns:
        float32, shape (samples,), C-contiguous.
    Raises:
        ValueError: more than two dimensions, an unsupported dtype, or a rate <= 0.
    """
    if isinstance(audio, (bytes, bytearray, memoryview)):
        audio = np.frombuffer(audio, dtype="<i2")
    audio = np.asarray(audio)
    if audio.ndim == 2:
        audio = audio.mean(axis=1) if audio.dtype.kind == "f" else audio.astype(np.float64).mean(axis=1)
    if audio.ndim != 1:
        raise ValueError(f"audio must have shape (samples,) or (samples, channels), not {audio.shape}")
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) / 32768.0
    elif audio.dtype.kind == "f":
        audio = audio.astype(np.float32, copy=False)
    else:
        raise ValueError(f"audio must be float or int16 samples, not {audio.dtype}")
    if sample_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive (got {sample_rate} and {target_rate})")
    if sample_rate != target_rate and len(audio):
        import soxr

        audio = soxr.resample(audio, sample_rate, target_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(audio)


def to_pcm16(audio: np.ndarray) -> bytes:
    """float audio in [-1, 1] (clipped), shape (samples,), as 16-bit little-endian PCM bytes; int16 passes through."""
    audio = np.asarray(audio)
    if audio.dtype != np.int16:
        audio = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    return audio.astype("<i2", copy=False).tobytes()
