"""tools.loudness: BS.1770 loudness and true peak, loudness matching, the true-peak limiter."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import soxr

from tests.tools.signals import pink_noise, sine
from tools.eq import Filter, apply_eq
from tools.loudness import finalize, integrated_lufs, limit_true_peak, match_loudness, true_peak_dbtp


def isp_sine(sample_rate: float, seconds: float = 1.0, amplitude: float = 1.0) -> np.ndarray:
    """fs/4 sine at 45 degrees: every sample at +-amplitude/sqrt(2), the waveform peaks at amplitude."""
    n = np.arange(int(sample_rate * seconds))
    return (amplitude * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)[np.newaxis, :]


def dense_peak_dbtp(x: np.ndarray, sample_rate: int) -> float:
    """Independent check: peak after 16x oversampling with soxr."""
    up = soxr.resample(np.ascontiguousarray(x.T), sample_rate, 16 * sample_rate, quality="VHQ")
    return float(20 * np.log10(np.abs(up).max()))


# ---- measurement ----------------------------------------------------------------------------------


def test_lufs_agrees_with_pyloudnorm(vibe_ace_audio):
    x, rate = vibe_ace_audio.samples, vibe_ace_audio.sample_rate
    ours = integrated_lufs(x, rate)
    theirs = pyloudnorm.Meter(rate).integrated_loudness(x.T.astype(np.float64))
    print(f"Vibe Ace: {ours:.3f} LUFS (pyloudnorm {theirs:.3f})")
    assert ours == pytest.approx(theirs, abs=0.01)
    for rate, channels in ((8000, 1), (96000, 2)):
        noise = pink_noise(5 * rate, channels, seed=rate)
        theirs = pyloudnorm.Meter(rate).integrated_loudness(noise.T.astype(np.float64))
        assert integrated_lufs(noise, rate) == pytest.approx(theirs, abs=0.01)


def test_full_scale_1k_sine_reads_minus_3_lufs():
    # BS.1770-4: a 0 dBFS 1 kHz sine in one channel reads -3.01 LKFS
    assert integrated_lufs(sine(1000, 48000, 5.0, amplitude=1.0), 48000) == pytest.approx(-3.01, abs=0.05)


def test_short_clip_reads_like_long_one():
    long = integrated_lufs(sine(1000, 48000, 2.0), 48000)
    assert integrated_lufs(sine(1000, 48000, 0.15), 48000) == pytest.approx(long, abs=0.1)


def test_silence_is_minus_inf():
    silence = np.zeros((2, 48000), dtype=np.float32)
    assert integrated_lufs(silence, 48000) == -np.inf
    assert true_peak_dbtp(silence, 48000) == -np.inf
    assert np.array_equal(match_loudness(silence, 48000, -14.0), silence)


def test_true_peak_catches_inter_sample_peak():
    x = isp_sine(48000)
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)  # sample peak
    assert true_peak_dbtp(x, 48000) == pytest.approx(0.0, abs=0.1)  # the waveform's peak


def test_true_peak_of_real_track_matches_dense_oversampling(vibe_ace_audio):
    x, rate = vibe_ace_audio.samples, vibe_ace_audio.sample_rate
    assert true_peak_dbtp(x, rate) == pytest.approx(dense_peak_dbtp(x, rate), abs=0.2)
    assert true_peak_dbtp(x, rate) >= 20 * np.log10(np.abs(x).max())


def test_match_loudness_hits_target():
    x = pink_noise(10 * 44100, 2)
    y = match_loudness(x, 44100, -23.0)
    assert integrated_lufs(y, 44100) == pytest.approx(-23.0, abs=0.01)
    assert y.dtype == np.float32 and y.shape == x.shape


# ---- limiter --------------------------------------------------------------------------------------


def test_limiter_catches_inter_sample_peak():
    x = isp_sine(44100)
    assert np.abs(x).max() < 10 ** (-1 / 20)  # a sample-peak limiter at -1 dBFS would do nothing
    y = limit_true_peak(x, 44100, ceiling_dbtp=-1.0)
    assert true_peak_dbtp(y, 44100) <= -1.0
    assert dense_peak_dbtp(y, 44100) <= -0.9


def test_limiter_ceiling_on_loud_noise_and_untouched_below():
    x = pink_noise(5 * 44100, 2) * 8.0  # peaks far above full scale
    y = limit_true_peak(x, 44100, ceiling_dbtp=-1.0)
    assert true_peak_dbtp(y, 44100) <= -1.0
    quiet = pink_noise(44100, 2) * 0.5
    assert np.array_equal(limit_true_peak(quiet, 44100), quiet)


def test_limiter_gain_envelope_timing():
    """One 6 dB over-peak in a steady tone: attack within 1.5 ms before it, 6 dB back in ~80 ms."""
    rate = 48000
    x = sine(1000, rate, 1.0, amplitude=0.25)[0]
    peak = rate // 2
    x[peak] = 10 ** ((-1.0 + 6.0) / 20)  # +5 dBFS: needs ~6 dB of reduction for a -1 dBTP ceiling
    y = limit_true_peak(x, rate, ceiling_dbtp=-1.0)
    assert true_peak_dbtp(y, rate) <= -1.0
    steady = np.abs(x) > 0.05  # skip zero crossings when dividing
    gain_db = np.full(x.size, np.nan)
    gain_db[steady] = 20 * np.log10(y[steady] / x[steady])
    reduced = np.flatnonzero(gain_db < -0.01)
    attack_ms = (peak - reduced[0]) / rate * 1000
    release_ms = (reduced[-1] - peak) / rate * 1000
    print(f"limiter on a single peak: attack {attack_ms:.2f} ms, release {release_ms:.1f} ms, "
          f"deepest {np.nanmin(gain_db):.2f} dB")
    assert 1.0 <= attack_ms <= 1.6
    assert 70 <= release_ms <= 95  # ~6 dB at 6 dB per 80 ms, plus the 1.5 ms smoothing
    assert np.nanmin(gain_db) < -5.5
    assert np.all(np.nan_to_num(gain_db[: peak - int(0.002 * rate)]) == 0)  # untouched until then


def test_limiter_only_touches_peaks(vibe_ace_audio):
    """+3 dB into a -1 dBTP ceiling: the reduction is brief, so loudness barely moves."""
    x = vibe_ace_audio.samples * np.float32(10 ** (3 / 20))
    y = limit_true_peak(x, vibe_ace_audio.sample_rate)
    assert true_peak_dbtp(y, vibe_ace_audio.sample_rate) <= -1.0
    assert integrated_lufs(y, 44100) == pytest.approx(integrated_lufs(x, 44100), abs=0.5)
    unchanged = np.mean(np.all(y == x, axis=0))
    assert unchanged > 0.5


# ---- finalize -------------------------------------------------------------------------------------


def test_finalize_after_bass_boost(vibe_ace_audio):
    x, rate = vibe_ace_audio.samples, vibe_ace_audio.sample_rate
    boosted = apply_eq(x, rate, [Filter(type="low_shelf", frequency_hz=150, gain_db=6.0)])
    y, facts = finalize(boosted, x, rate)
    lufs_in, lufs_out, peak = integrated_lufs(x, rate), integrated_lufs(y, rate), true_peak_dbtp(y, rate)
    print(f"finalize Vibe Ace +6 dB bass: LUFS {lufs_in:.2f} -> {lufs_out:.2f}, true peak {peak:.2f} dBTP, "
          f"limiter {facts['limiter_gain_reduction_max_db']:.2f} dB")
    assert abs(lufs_out - lufs_in) < 0.5
    assert peak <= -1.0
    assert facts["lufs_in"] == pytest.approx(lufs_in) and facts["lufs_out"] == pytest.approx(lufs_out)
    assert facts["true_peak_dbtp"] == pytest.approx(peak, abs=1e-3)
    assert facts["true_peak_in_dbtp"] == pytest.approx(true_peak_dbtp(x, rate))
    assert facts["limiter_gain_reduction_max_db"] >= 0


def test_finalize_silence():
    silence = np.zeros((2, 44100), dtype=np.float32)
    y, facts = finalize(silence, silence, 44100)
    assert np.array_equal(y, silence)
    assert facts["lufs_out"] == -np.inf and facts["gain_db"] == 0.0
    assert not any(np.isnan(v) for v in facts.values())


@pytest.mark.parametrize("rate,channels", [(8000, 1), (96000, 2)])
def test_finalize_other_rates(rate, channels):
    noise = pink_noise(5 * rate, channels, seed=7)
    reference = noise * np.float32(10 ** ((1.0 - true_peak_dbtp(noise, rate)) / 20))  # true peak +1 dBTP
    processed = apply_eq(reference, rate, [Filter(type="peaking", frequency_hz=1000, gain_db=6.0, q=0.7)])
    y, facts = finalize(processed, reference, rate)
    print(f"{rate} Hz x{channels}: LUFS {facts['lufs_in']:.2f} -> {facts['lufs_out']:.2f}, "
          f"true peak {true_peak_dbtp(y, rate):.2f} dBTP")
    assert y.shape == processed.shape
    assert facts["true_peak_limiter_in_dbtp"] > -1.0  # the limiter had work to do
    assert true_peak_dbtp(y, rate) <= -1.0
    assert abs(facts["lufs_out"] - facts["lufs_in"]) < 0.5
