"""tools.export: EqualizerAPO config.txt and AutoEq ParametricEQ.txt, parsed back and measured."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools.signals import FR_GRID_HZ
from tools.eq import Filter, apply_eq, frequency_response_db
from tools.export import (
    EVAL_GRID_HZ, EVAL_SAMPLE_RATE, combined_response_db, equalizer_apo_config, filter_line,
    parametric_eq_txt, parse_eq_text, write_exports,
)

AUDEALIZE_FREQS_HZ = [20, 50, 83, 120, 161, 208, 259, 318, 383, 455, 537, 628, 729, 843, 971, 1114, 1273, 1452,
                      1652, 1875, 2126, 2406, 2719, 3070, 3462, 3901, 4392, 4941, 5556, 6244, 7014, 7875, 8839,
                      9917, 11124, 12474, 13984, 15675, 17566, 19682]


def word_filters(seed: int, scale_db: float = 3.0) -> list[Filter]:
    """40 Audealize-style peaking filters (Q 4.31) with random gains."""
    gains = np.random.default_rng(seed).uniform(-scale_db, scale_db, len(AUDEALIZE_FREQS_HZ))
    return [Filter(type="peaking", frequency_hz=f, gain_db=float(g), q=4.31) for f, g in zip(AUDEALIZE_FREQS_HZ, gains)]


def max_boost_db(filters, graphic=None) -> float:
    """Measured: the largest gain of the combined response on a dense grid (0 if it only cuts)."""
    return max(0.0, float(np.max(combined_response_db(filters, graphic))))


def test_equalizer_apo_line_syntax():
    """The exact EqualizerAPO syntax the config reference gives: `Filter n: ON PK Fc 1000 Hz Gain -3.0 dB Q 1.41`."""
    assert filter_line(1, Filter(type="peaking", frequency_hz=1000, gain_db=-3, q=1.41)) == \
        "Filter 1: ON PK Fc 1000 Hz Gain -3.0 dB Q 1.41"
    assert filter_line(2, Filter(type="low_shelf", frequency_hz=105, gain_db=6.44, q=0.7071)) == \
        "Filter 2: ON LSC Fc 105 Hz Gain 6.4 dB Q 0.71"
    assert filter_line(3, Filter(type="high_shelf", frequency_hz=83.25, gain_db=-2, q=0.7)) == \
        "Filter 3: ON HSC Fc 83.2 Hz Gain -2.0 dB Q 0.70"
    assert filter_line(4, Filter(type="high_pass", frequency_hz=30, q=0.5)) == "Filter 4: ON HPQ Fc 30 Hz Q 0.50"


def test_single_boost_preamp_is_minus_its_gain():
    text = parametric_eq_txt([Filter(type="peaking", frequency_hz=1000, gain_db=3.0, q=1.41)])
    assert text.splitlines() == ["Preamp: -3.0 dB", "Filter 1: ON PK Fc 1000 Hz Gain 3.0 dB Q 1.41"]


def test_cuts_only_preamp_zero():
    text = parametric_eq_txt([Filter(type="peaking", frequency_hz=3500, gain_db=-6.0, q=1.0),
                              Filter(type="high_shelf", frequency_hz=8000, gain_db=-2.0, q=0.71)])
    assert parse_eq_text(text).preamp_db == 0.0
    assert "Preamp: 0.0 dB" in text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parametric_round_trip_and_preamp_is_minus_max_boost(seed):
    """Two words' 40 filters + band edits: parsed back equal at file precision; preamp = -(max boost), measured."""
    filters = word_filters(seed) + word_filters(seed + 10, 2.0) + [
        Filter(type="low_shelf", frequency_hz=150, gain_db=4.0, q=0.7071),
        Filter(type="peaking", frequency_hz=3500, gain_db=-3.0, q=1.41),
        Filter(type="high_shelf", frequency_hz=12000, gain_db=2.5, q=0.7071),
    ]
    parsed = parse_eq_text(parametric_eq_txt(filters, header=["SENSE test"]))
    assert parsed.comments[0] == "SENSE test"
    assert len(parsed.filters) == len(filters) == 83
    for got, want in zip(parsed.filters, filters):
        assert got.type == want.type
        assert got.frequency_hz == pytest.approx(want.frequency_hz, abs=0.05)
        assert got.gain_db == pytest.approx(want.gain_db, abs=0.05)
        assert got.q == pytest.approx(want.q, abs=0.005)
    # the parsed EQ's response matches the original within rounding, and the preamp undoes its largest boost
    original = frequency_response_db(filters, EVAL_GRID_HZ, EVAL_SAMPLE_RATE)
    reread = frequency_response_db(parsed.filters, EVAL_GRID_HZ, EVAL_SAMPLE_RATE)
    assert np.max(np.abs(original - reread)) < 0.5
    boost = max_boost_db(parsed.filters)
    assert boost > 1.0
    assert -boost - 0.1 - 1e-9 <= parsed.preamp_db <= -boost + 1e-9  # rounded down to 0.1 dB: never clips


def test_preamp_keeps_a_full_scale_sine_below_clipping():
    """Measured on audio: a full-scale sine at the largest boost, through preamp + filters, stays ≤ 0 dBFS."""
    filters = word_filters(3)
    parsed = parse_eq_text(parametric_eq_txt(filters))
    f_peak = float(EVAL_GRID_HZ[np.argmax(combined_response_db(parsed.filters))])
    rate = int(EVAL_SAMPLE_RATE)
    t = np.arange(3 * rate) / rate
    x = np.sin(2 * np.pi * f_peak * t).astype(np.float32)[None, :] * 10 ** (parsed.preamp_db / 20)
    y = apply_eq(x, rate, parsed.filters)[:, rate:]  # after the filters settle
    peak_dbfs = 20 * np.log10(np.max(np.abs(y)))
    assert -0.5 < peak_dbfs <= 0.05


def test_config_with_graphic_eq_round_trip():
    """A device-transfer-like curve as GraphicEQ + filters: the curve reads back within 0.1 dB, the preamp
    covers the sum."""
    curve = 5.0 * np.exp(-0.5 * ((np.log2(FR_GRID_HZ) - np.log2(3000.0)) / 0.4) ** 2) - 8.0 * (FR_GRID_HZ < 60)
    filters = [Filter(type="peaking", frequency_hz=3500, gain_db=-3.0, q=1.2)]
    text = equalizer_apo_config(filters, (FR_GRID_HZ, curve), header=["transfer + less harsh"])
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[0].startswith("Preamp: ") and lines[1].startswith("GraphicEQ: 20 ") and lines[2].startswith("Filter 1: ON PK")
    parsed = parse_eq_text(text)
    freqs, gains = parsed.graphic
    assert len(freqs) == 127 and freqs[0] == 20 and freqs[-1] == 20000 and np.all(np.diff(freqs) > 0)
    assert np.max(np.abs(gains - np.interp(np.log(freqs), np.log(FR_GRID_HZ), curve))) <= 0.05 + 1e-9
    # the curve realised between the points (log interpolation, as EqualizerAPO does) follows the original
    between = np.interp(np.log(FR_GRID_HZ), np.log(freqs), gains)
    assert np.max(np.abs(between - curve)[FR_GRID_HZ > 80]) < 0.3
    boost = max_boost_db(parsed.filters, parsed.graphic)
    assert 1.0 < boost < 5.0  # the +5 dB bump minus some of the -3 dB peak cut
    assert -boost - 0.1 - 1e-9 <= parsed.preamp_db <= -boost + 1e-9


def test_parametric_leaves_transfer_out_and_says_so(tmp_path):
    curve = np.linspace(-3.0, 3.0, FR_GRID_HZ.size)
    filters = word_filters(4)
    paths = write_exports(tmp_path, filters, (FR_GRID_HZ, curve), header=["SENSE: less harsh"],
                          graphic_label="device transfer → Apple AirPods")
    parametric = paths["parametric"].read_text()
    assert paths["parametric"].name == "ParametricEQ.txt" and paths["config"].name == "config.txt"
    assert "GraphicEQ" not in parametric.replace("GraphicEQ line", "")
    assert any("NOT included: device transfer → Apple AirPods" in c for c in parse_eq_text(parametric).comments)
    assert len(parse_eq_text(parametric).filters) == 40
    config = parse_eq_text(paths["config"].read_text())
    assert config.graphic is not None and len(config.filters) == 40
    with pytest.raises(FileExistsError):  # never overwrites
        write_exports(tmp_path, filters)


def test_rejects_unknown_filter_lines():
    with pytest.raises(ValueError):
        parse_eq_text("Filter 1: ON PEQ Fc 100 Hz Gain 1.0 dB BW Oct 0.167")
