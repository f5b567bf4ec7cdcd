"""tools.analysis: spectrum, band energies, band changes, measure()."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools.signals import pink_noise, sine
from tools.analysis import BANDS_HZ, band_energy_change_db, band_energy_db, long_term_spectrum, measure
from tools.eq import Filter, apply_eq
from tools.loudness import finalize

RATE = 48000


def test_bands():
    for name, edges in {
        "sub_bass": (20, 60), "bass": (60, 250), "low_mid": (250, 500), "mud": (150, 500),
        "mid": (500, 2000), "presence": (2000, 5000), "brilliance": (5000, 10000), "air": (10000, 20000),
    }.items():
        assert BANDS_HZ[name] == edges


def test_spectrum_of_sine_peaks_at_its_frequency():
    freqs, db = long_term_spectrum(np.vstack([sine(1000, RATE, 2.0)[0]] * 2), RATE)
    assert freqs.shape == db.shape == (4097,)
    assert freqs[np.argmax(db)] == pytest.approx(1000, abs=RATE / 8192)


def test_white_noise_spectrum_is_flat():
    x = np.random.default_rng(0).standard_normal((2, 10 * RATE)).astype(np.float32) * 0.1
    freqs, db = long_term_spectrum(x, RATE)
    inner = (freqs > 100) & (freqs < 20000)
    assert np.std(db[inner]) < 0.5
    assert np.mean(db[inner]) == pytest.approx(10 * np.log10(0.01 / (RATE / 2)), abs=0.1)  # power / bandwidth


def test_band_energy_of_a_sine():
    x = sine(1000, RATE, 2.0, amplitude=1.0)  # mean square 0.5: -3.01 dB
    assert band_energy_db(x, RATE, BANDS_HZ["mid"]) == pytest.approx(-3.01, abs=0.1)
    assert band_energy_db(x, RATE, BANDS_HZ["air"]) < -60


def test_level_change_reads_zero_relative_and_minus_6_absolute():
    x = pink_noise(5 * RATE, 2)
    for reference in ("median", "broadband"):
        relative = band_energy_change_db(x, x * 0.5, RATE, reference=reference)
        assert all(abs(v) < 0.01 for v in relative.values())
    absolute = band_energy_change_db(x, x * 0.5, RATE, relative=False)
    assert all(v == pytest.approx(-6.02, abs=0.01) for v in absolute.values())
    with pytest.raises(ValueError):
        band_energy_change_db(x, x, RATE, reference="loudness")


def test_bass_shelf_on_a_real_track_reads_near_its_gain(vibe_ace_audio):
    """Loudness-matched +4 dB bass shelf: the median reference sees it; broadband (mostly bass) hardly."""
    rate = vibe_ace_audio.sample_rate
    x = vibe_ace_audio.samples[:, 10 * rate : 30 * rate]
    y, _ = finalize(apply_eq(x, rate, [Filter(type="low_shelf", frequency_hz=250, gain_db=4.0)]), x, rate)
    median = band_energy_change_db(x, y, rate)
    broadband = band_energy_change_db(x, y, rate, reference="broadband")
    print(f"+4 dB shelf at 250 Hz: bass {median['bass']:+.2f} dB (median), {broadband['bass']:+.2f} dB (broadband)")
    assert 3.0 < median["bass"] < 4.5 and 3.0 < median["sub_bass"] < 4.5
    assert abs(median["presence"]) < 1.0
    assert broadband["bass"] < 1.0


def test_presence_cut_is_measured_in_presence():
    x = pink_noise(10 * RATE, 2)
    y = apply_eq(x, RATE, [Filter(type="peaking", frequency_hz=3162, gain_db=-6.0, q=0.7)])
    y = y * 1.7  # loudness matching afterwards must not hide the cut
    change = band_energy_change_db(x, y, RATE)
    print(f"-6 dB peak at 3.2 kHz on pink noise: presence {change['presence']:+.2f} dB")
    assert -6.0 < change["presence"] < -3.0
    assert abs(change["bass"]) < 0.5 and abs(change["sub_bass"]) < 0.5
    assert change["presence"] < change["mid"] < 0


def test_silence_and_bands_above_nyquist_read_zero():
    silence = np.zeros((2, RATE), dtype=np.float32)
    assert set(band_energy_change_db(silence, pink_noise(RATE, 2), RATE).values()) == {0.0}
    x = pink_noise(8000 * 3, 1)
    change = band_energy_change_db(x, x * 2, 8000)
    assert change["air"] == 0.0 and change["brilliance"] == 0.0


def test_measure():
    x = sine(1000, RATE, 3.0, amplitude=1.0)
    facts = measure(x, RATE)
    assert facts["lufs"] == pytest.approx(-3.01, abs=0.05)
    assert facts["true_peak_dbtp"] == pytest.approx(0.0, abs=0.1)
    assert facts["duration_s"] == pytest.approx(3.0)
