"""tools.eq: measured responses of each cookbook filter against the design, clipping, Nyquist."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
import scipy.signal

from tests.tools.signals import sine
from tools.eq import MAX_GAIN_DB, Filter, apply_eq, design_sos, frequency_response_db

RATE = 48000


def measured_gain_db(flt: list[Filter], frequency_hz: float, sample_rate: float = RATE) -> float:
    """Gain of apply_eq at one frequency: least-squares sine amplitude out/in after settling."""
    x = sine(frequency_hz, sample_rate, 3.0)
    y = apply_eq(x, sample_rate, flt)
    t = np.arange(x.shape[1]) / sample_rate
    steady = slice(int(sample_rate), None)  # skip the first second (filter transient)
    basis = np.stack([np.sin(2 * np.pi * frequency_hz * t), np.cos(2 * np.pi * frequency_hz * t)], axis=1)[steady]
    amp_in = np.linalg.norm(np.linalg.lstsq(basis, x[0, steady], rcond=None)[0])
    amp_out = np.linalg.norm(np.linalg.lstsq(basis, y[0, steady].astype(np.float64), rcond=None)[0])
    return float(20 * np.log10(amp_out / amp_in))


# (filter, what the cookbook says it measures at its frequency)
CASES = [
    (Filter(type="peaking", frequency_hz=3500, gain_db=6.0, q=1.2), 6.0),
    (Filter(type="peaking", frequency_hz=250, gain_db=-9.0, q=2.0), -9.0),
    (Filter(type="low_shelf", frequency_hz=120, gain_db=6.0, q=0.7071), 3.0),  # half gain at the corner
    (Filter(type="high_shelf", frequency_hz=8000, gain_db=-6.0, q=0.7071), -3.0),
    (Filter(type="low_pass", frequency_hz=2000, q=0.7071), -3.0103),
    (Filter(type="high_pass", frequency_hz=80, q=0.7071), -3.0103),
]


@pytest.mark.parametrize("flt,expected_db", CASES, ids=[c[0].describe() for c in CASES])
def test_measured_response_at_design_frequency(flt, expected_db):
    designed = float(frequency_response_db([flt], [flt.frequency_hz], RATE)[0])
    measured = measured_gain_db([flt], flt.frequency_hz)
    assert designed == pytest.approx(expected_db, abs=0.01)
    assert measured == pytest.approx(designed, abs=0.1)


def test_measured_response_on_noise_matches_design_everywhere():
    """A 4-band cascade on 20 s of white noise: Welch H1 = |Pxy / Pxx| vs the design, 30 Hz-20 kHz."""
    filters = [
        Filter(type="high_pass", frequency_hz=40, q=0.7071),
        Filter(type="low_shelf", frequency_hz=150, gain_db=4.0),
        Filter(type="peaking", frequency_hz=3000, gain_db=-5.0, q=1.5),
        Filter(type="high_shelf", frequency_hz=10000, gain_db=3.0),
    ]
    x = np.random.default_rng(3).standard_normal((1, 20 * RATE)).astype(np.float32) * 0.1
    y = apply_eq(x, RATE, filters)
    freqs, pxy = scipy.signal.csd(x[0], y[0], fs=RATE, nperseg=16384)
    _, pxx = scipy.signal.welch(x[0], fs=RATE, nperseg=16384)
    band = (freqs >= 30) & (freqs <= 20000)
    measured = 20 * np.log10(np.abs(pxy[band] / pxx[band]))
    designed = frequency_response_db(filters, freqs[band], RATE)
    assert np.max(np.abs(measured - designed)) < 0.1


def test_gain_is_clipped_to_12_db_and_measures_so():
    flt = Filter(type="peaking", frequency_hz=1000, gain_db=40.0, q=1.0)
    assert flt.gain_db == MAX_GAIN_DB == 12.0
    assert Filter(type="low_shelf", frequency_hz=100, gain_db=-40.0).gain_db == -12.0
    assert measured_gain_db([flt], 1000) == pytest.approx(12.0, abs=0.1)


def test_invalid_filters_are_rejected():
    with pytest.raises(pydantic.ValidationError):
        Filter(type="peaking", frequency_hz=0, gain_db=3)
    with pytest.raises(pydantic.ValidationError):
        Filter(type="peaking", frequency_hz=1000, q=0)
    with pytest.raises(pydantic.ValidationError):
        Filter(type="notch", frequency_hz=1000)


def test_describe():
    assert Filter(type="peaking", frequency_hz=3500, gain_db=-3, q=1.2).describe() == "peaking 3500 Hz -3.0 dB Q 1.20"
    assert Filter(type="low_shelf", frequency_hz=80, gain_db=4).describe() == "low_shelf 80 Hz +4.0 dB Q 0.71"
    assert Filter(type="high_pass", frequency_hz=30).describe() == "high_pass 30 Hz Q 0.71"


def test_filters_at_or_above_nyquist_are_skipped():
    filters = [
        Filter(type="peaking", frequency_hz=6000, gain_db=6),
        Filter(type="high_shelf", frequency_hz=4000, gain_db=6),
    ]
    assert design_sos(filters, 8000).shape == (0, 6)
    x = sine(1000, 8000, 0.5)
    assert np.array_equal(apply_eq(x, 8000, filters), x)
    assert np.allclose(frequency_response_db(filters, [100, 1000, 3999, 4001, 20000], 8000), 0.0)


def test_response_above_nyquist_holds_the_nyquist_value():
    flt = [Filter(type="high_shelf", frequency_hz=2000, gain_db=6)]
    response = frequency_response_db(flt, [4000, 8000, 20000], 8000)
    assert np.all(np.isfinite(response)) and response[1] == response[2] == response[0]


def test_apply_eq_keeps_shape_dtype_and_channels():
    x = np.vstack([sine(1000, RATE, 1.0)[0], np.zeros(RATE, dtype=np.float32)])
    y = apply_eq(x, RATE, [Filter(type="peaking", frequency_hz=1000, gain_db=6)])
    assert y.shape == x.shape and y.dtype == np.float32
    assert not y[1].any()  # a silent channel stays silent
    assert apply_eq(x[0], RATE, []).shape == (RATE,)
