"""tools.metrics (SNR, SI-SDR, SDR, STOI, spectral RMSE) against hand-computed values and the reference libraries."""

from __future__ import annotations

import fast_bss_eval
import numpy as np
import pystoi
import pytest
import scipy.signal
import soundfile as sf

from tools.metrics import SDR_CLAMP_DB, sdr_db, si_sdr_db, snr_db, spectral_rmse_db, stoi


def _scaled_noise(signal: np.ndarray, snr: float, rng: np.random.Generator, orthogonal: bool = False) -> np.ndarray:
    """White noise whose energy is exactly ``snr`` dB below ``signal``'s (optionally orthogonal to it)."""
    noise = rng.standard_normal(signal.shape)
    if orthogonal:
        noise -= noise.mean()
        noise -= np.dot(noise, signal) / np.dot(signal, signal) * signal
    return noise * np.sqrt(np.sum(signal**2) / np.sum(noise**2) / 10 ** (snr / 10))


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    """3 s of a zero-mean 440 Hz + 3 kHz mix plus a little noise, 44.1 kHz."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * 44100) / 44100
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t) + 0.05 * rng.standard_normal(t.size)
    return x - x.mean()


@pytest.fixture(scope="module")
def speech(data_dir) -> tuple[np.ndarray, int]:
    """4 s of a LibriSpeech utterance (16 kHz mono)."""
    x, rate = sf.read(data_dir / "speech" / "198-209-0000.hq.ogg", dtype="float64", frames=4 * 16000)
    return x, rate


# --- SNR -----------------------------------------------------------------------------------------

def test_snr_of_noise_scaled_to_20_db(tone):
    noisy = tone + _scaled_noise(tone, 20.0, np.random.default_rng(1))
    assert snr_db(tone, noisy) == pytest.approx(20.0, abs=0.01)


def test_snr_pools_channels_by_hand():
    ref = np.ones((2, 2))
    est = ref + np.array([[0.1, 0.0], [0.0, 0.1]])
    assert snr_db(ref, est) == pytest.approx(10 * np.log10(4 / 0.02), abs=1e-9)  # 23.01 dB


def test_snr_counts_scale_as_error_and_copy_is_infinite(tone):
    assert snr_db(tone, 2 * tone) == pytest.approx(0.0, abs=1e-9)  # error energy = signal energy
    assert snr_db(tone, tone) == np.inf


def test_ratios_reject_silent_reference_and_mismatched_shapes(tone):
    with pytest.raises(ValueError, match="silent"):
        snr_db(np.zeros(100), np.ones(100))
    with pytest.raises(ValueError, match="shape"):
        si_sdr_db(tone, tone[:-1])


# --- SI-SDR --------------------------------------------------------------------------------------

def test_si_sdr_of_orthogonal_noise_at_20_db(tone):
    noisy = tone + _scaled_noise(tone, 20.0, np.random.default_rng(2), orthogonal=True)
    assert si_sdr_db(tone, noisy) == pytest.approx(20.0, abs=1e-6)


def test_si_sdr_is_scale_invariant_where_snr_is_not(tone):
    noisy = tone + _scaled_noise(tone, 12.0, np.random.default_rng(3))
    base = si_sdr_db(tone, noisy)
    for gain in (0.01, 3.7, -2.0):
        assert si_sdr_db(tone, gain * noisy) == pytest.approx(base, abs=1e-9)
    assert snr_db(tone, 3.7 * noisy) < base - 10


def test_si_sdr_matches_fast_bss_eval(tone):
    rng = np.random.default_rng(4)
    est = np.stack([0.3 * tone + 0.2 * rng.standard_normal(tone.size), tone + 0.5 * rng.standard_normal(tone.size)])
    ref = np.stack([tone, tone])
    expected = fast_bss_eval.si_sdr(ref[:, np.newaxis], est[:, np.newaxis], zero_mean=True).mean()
    assert si_sdr_db(ref, est) == pytest.approx(float(expected), abs=1e-6)


# --- SDR -----------------------------------------------------------------------------------------

def test_sdr_equals_fast_bss_eval_on_the_same_arrays(tone):
    est = 0.8 * tone + _scaled_noise(tone, 8.0, np.random.default_rng(5))
    assert sdr_db(tone, est) == pytest.approx(float(fast_bss_eval.sdr(tone[np.newaxis], est[np.newaxis])[0]), abs=1e-9)


def test_sdr_forgives_a_short_filter_by_hand(tone):
    """est = (64-tap FIR of ref) + noise 20 dB below it: the 512-tap projection absorbs the filter
    and ~512/N of the noise, so SDR = 20 dB; SNR, which forgives nothing, is far lower."""
    rng = np.random.default_rng(6)
    fir = rng.standard_normal(64) * np.exp(-np.arange(64) / 8)
    filtered = scipy.signal.lfilter(fir, 1.0, tone)
    est = filtered + _scaled_noise(filtered, 20.0, rng)
    assert sdr_db(tone, est) == pytest.approx(20.0, abs=0.05)
    assert snr_db(tone, est) < 5.0


def test_sdr_of_an_exact_copy_is_the_clamp(tone):
    assert sdr_db(tone, 0.5 * tone) == pytest.approx(SDR_CLAMP_DB, abs=0.01)


# --- STOI ----------------------------------------------------------------------------------------

def test_stoi_identical_speech_is_one(speech):
    x, rate = speech
    assert stoi(x, x, rate) == pytest.approx(1.0, abs=1e-6)


def test_stoi_falls_with_noise_and_equals_pystoi(speech):
    x, rate = speech
    rng = np.random.default_rng(7)
    values = []
    for snr in (20.0, 5.0, -5.0):
        noisy = x + _scaled_noise(x, snr, rng)
        values.append(stoi(x, noisy, rate))
        assert values[-1] == pystoi.stoi(x, noisy, rate)
    assert 1.0 > values[0] > values[1] > values[2] > 0.0


def test_stoi_averages_channels(speech):
    x, rate = speech
    noisy = x + _scaled_noise(x, 0.0, np.random.default_rng(8))
    stereo_value = stoi(np.stack([x, x]), np.stack([x, noisy]), rate)
    assert stereo_value == pytest.approx((1.0 + pystoi.stoi(x, noisy, rate)) / 2, abs=1e-6)


# --- spectral RMSE -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def white() -> np.ndarray:
    return np.random.default_rng(9).standard_normal((2, 4 * 44100)) * 0.1


def test_spectral_rmse_self_is_zero_and_3_db_gain_reads_3(white):
    assert spectral_rmse_db(white, white, 44100) == 0.0
    assert spectral_rmse_db(white, white * 10 ** (3 / 20), 44100) == pytest.approx(3.0, abs=0.01)


def test_spectral_rmse_counts_only_its_frequency_range(white):
    """Removing everything above 18 kHz is outside 50 Hz-16 kHz (+1/12 octave of smoothing):
    it reads ~0 there, and well over 1 dB once the range reaches 20 kHz."""
    spectrum = np.fft.rfft(white, axis=-1)
    spectrum[:, np.fft.rfftfreq(white.shape[-1], 1 / 44100) > 18000] = 0
    cut = np.fft.irfft(spectrum, n=white.shape[-1], axis=-1)
    assert spectral_rmse_db(white, cut, 44100) < 0.01
    assert spectral_rmse_db(white, cut, 44100, f_range_hz=(50.0, 20000.0)) > 1.0
