"""tools.transfer: smoothing, the transfer curve's limits, and the measured transfer of the FIR."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from tests.tools.signals import FR_GRID_HZ, pink_noise
from tools.eq import Filter, frequency_response_db
from tools.transfer import (
    apply_fir,
    default_n_taps,
    device_transfer,
    minimum_phase_fir,
    smooth_octave,
    transfer_curve,
)


def measured_transfer_db(x: np.ndarray, y: np.ndarray, sample_rate: float, grid: np.ndarray) -> np.ndarray:
    """|Pxy / Pxx| (Welch, channels averaged), 1/6-octave smoothed, on ``grid``."""
    nperseg = 8 * default_n_taps(sample_rate)  # segments much longer than the FIR: unbiased H1
    freqs, pxy = scipy.signal.csd(x, y, fs=sample_rate, nperseg=nperseg, axis=-1)
    _, pxx = scipy.signal.welch(x, fs=sample_rate, nperseg=nperseg, axis=-1)
    h1 = 20 * np.log10(np.abs(pxy.sum(axis=0) / pxx.sum(axis=0))[1:])
    return np.interp(grid, freqs[1:], smooth_octave(freqs[1:], h1, 1 / 6))


def rms_error_db(x, y, sample_rate, curve, f_lo=50.0, f_hi=16000.0) -> float:
    band = (FR_GRID_HZ >= f_lo) & (FR_GRID_HZ <= f_hi)
    error = measured_transfer_db(x, y, sample_rate, FR_GRID_HZ[band]) - curve[band]
    return float(np.sqrt(np.mean(error**2)))


@pytest.fixture(scope="module")
def curve(airpods_harman):
    """AirPods Pro (RTINGS) -> Harman in-ear 2019v2: a real transfer with -16.6..+5.4 dB."""
    grid, airpods, harman = airpods_harman
    return transfer_curve(grid, harman, airpods)


# ---- smoothing and curve shaping ----------------------------------------------------------------


def test_smoothing_keeps_constants_and_lines():
    f = FR_GRID_HZ
    assert np.allclose(smooth_octave(f, np.full(f.size, 3.0)), 3.0)
    line = 2.0 * np.log2(f)  # a slope in dB per octave is untouched away from the ends
    assert np.allclose(smooth_octave(f, line)[10:-10], line[10:-10])


def test_smoothing_averages_fine_ripple_and_spreads_a_step():
    f = FR_GRID_HZ
    ripple = 3.0 * np.sin(2 * np.pi * np.log2(f) * 12)  # period 1/12 octave: two periods per window
    assert np.max(np.abs(smooth_octave(f, ripple, 1 / 6)[20:-20])) < 0.05
    dense = np.geomspace(20, 20000, 9601)  # 1/960 octave, so 1 kHz is almost on the grid
    smoothed = smooth_octave(dense, np.where(dense < 1000, 0.0, 6.0), 1 / 6)
    assert np.interp(1000, dense, smoothed) == pytest.approx(3.0, abs=0.05)  # half the window above
    assert np.interp(1000 * 2 ** (1 / 12 + 0.01), dense, smoothed) == pytest.approx(6.0)


def test_transfer_curve_shape_and_limits(curve, airpods_harman):
    grid, airpods, harman = airpods_harman
    band = (grid >= 300) & (grid <= 3000)
    assert abs(np.mean(curve[band])) < 0.1  # normalised: level comes from loudness matching
    assert curve.max() <= 6.0 and curve.min() >= -24.0
    raw = smooth_octave(grid, harman - airpods)
    raw = raw - np.mean(raw[band])
    gentle = np.abs(raw) < 2.5  # below the knees the curve is the smoothed difference
    assert np.max(np.abs(curve[gentle] - raw[gentle])) < 0.1


def test_transfer_curve_soft_limits_big_differences():
    f = FR_GRID_HZ
    target = np.where(f < 100, 20.0, 0.0) + np.where(f > 8000, -40.0, 0.0)
    curve = transfer_curve(f, target, np.zeros(f.size), smoothing=0)
    assert 5.5 < curve[0] < 6.0  # +20 dB asked, soft-limited just under +6
    assert -24.0 < curve[-1] < -23.5  # -40 dB asked, soft-limited just over -24
    held = transfer_curve(f, target, np.zeros(f.size), smoothing=0, f_min_hz=50, f_max_hz=10000)
    assert np.all(held[f < 50] == held[np.argmax(f >= 50)])


# ---- acceptance: the FIR does what the curve says ------------------------------------------------


def test_fir_design_follows_curve(curve):
    for rate in (8000, 44100, 96000):
        fir = minimum_phase_fir(FR_GRID_HZ, curve, rate)
        assert fir.shape == (default_n_taps(rate),)
        freqs, h = scipy.signal.freqz(fir, worN=65536, fs=rate)
        designed = np.interp(FR_GRID_HZ, freqs[1:], smooth_octave(freqs[1:], 20 * np.log10(np.abs(h[1:]))))
        band = (FR_GRID_HZ >= 50) & (FR_GRID_HZ <= min(16000, 0.45 * rate))
        assert np.sqrt(np.mean((designed - curve)[band] ** 2)) < 0.2


def test_pink_noise_transfer_within_1_db_rms(curve):
    rate = 44100
    x = pink_noise(20 * rate, channels=2)
    y, facts = device_transfer(x, rate, FR_GRID_HZ, curve)
    assert y.shape == x.shape and y.dtype == np.float32
    assert facts["n_taps"] == 8193
    assert facts["max_gain_db"] == pytest.approx(curve.max()) and facts["min_gain_db"] == pytest.approx(curve.min())
    error = rms_error_db(x, y, rate, curve)
    print(f"pink noise transfer RMS error 50 Hz-16 kHz: {error:.3f} dB")
    assert error < 1.0


def test_real_track_transfer_within_1_db_rms(curve, vibe_ace_audio):
    x, rate = vibe_ace_audio.samples, vibe_ace_audio.sample_rate
    y, _ = device_transfer(x, rate, FR_GRID_HZ, curve)
    error = rms_error_db(x, y, rate, curve)
    print(f"Vibe Ace transfer RMS error 50 Hz-16 kHz: {error:.3f} dB")
    assert error < 1.0


@pytest.mark.parametrize("rate", [8000, 96000])
def test_transfer_at_other_rates(curve, rate):
    x = pink_noise(10 * rate, channels=1 if rate == 8000 else 2, seed=rate)
    y, facts = device_transfer(x, rate, FR_GRID_HZ, curve)
    assert facts["n_taps"] == default_n_taps(rate)
    audible = curve[FR_GRID_HZ <= rate / 2]
    assert facts["min_gain_db"] == pytest.approx(min(0.0, audible.min()))  # curve above Nyquist ignored
    error = rms_error_db(x, y, rate, curve, f_hi=min(16000, 0.45 * rate))
    print(f"{rate} Hz transfer RMS error: {error:.3f} dB")
    assert error < 1.0


def test_apply_fir_keeps_length_and_is_causal():
    x = np.zeros((2, 1000), dtype=np.float32)
    x[:, 100] = 1.0
    fir = np.array([0.5, 0.25, 0.125])
    y = apply_fir(x, fir)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.allclose(y[:, 100:103], fir) and not y[:, :100].any()


def test_eq_curve_on_the_fr_grid_at_a_low_rate():
    """An EQ response on the fixed 20 Hz-20 kHz grid at 16 kHz (above Nyquist held) filters as designed."""
    rate = 16000
    filters = [
        Filter(type="low_shelf", frequency_hz=200, gain_db=5),
        Filter(type="peaking", frequency_hz=3000, gain_db=-4),
    ]
    curve = frequency_response_db(filters, FR_GRID_HZ, rate)
    x = pink_noise(10 * rate, 1, seed=16)
    y, _ = device_transfer(x, rate, FR_GRID_HZ, curve)
    assert rms_error_db(x, y, rate, curve, f_hi=0.45 * rate) < 0.2
