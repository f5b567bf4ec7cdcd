"""Test signals and the FR store's frequency grid, shared by the tools tests."""

from __future__ import annotations

import numpy as np

FR_GRID_HZ = np.geomspace(20.0, 20000.0, 481)  # the FR store's grid: 1/48 octave


def pink_noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Pink (1/f power) Gaussian noise, float32 (channels, n), RMS 0.1."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((channels, n)), axis=-1)
    f = np.arange(spectrum.shape[-1], dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(f), n=n, axis=-1)
    return (0.1 * x / np.sqrt(np.mean(x**2))).astype(np.float32)


def sine(
    frequency_hz: float, sample_rate: float, seconds: float, amplitude: float = 0.5, phase: float = 0.0
) -> np.ndarray:
    """A mono sine, float32 (1, samples)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t + phase)).astype(np.float32)[np.newaxis, :]
