"""tools.plot: the PNG is written atomically, never over an existing file."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from tests.tools.signals import FR_GRID_HZ, pink_noise
from tools.analysis import long_term_spectrum
from tools.eq import Filter, apply_eq, frequency_response_db
from tools.plot import plot_result


def _plot(path):
    filters = [
        Filter(type="low_shelf", frequency_hz=120, gain_db=4),
        Filter(type="peaking", frequency_hz=3500, gain_db=-3, q=1.2),
    ]
    x = pink_noise(2 * 44100, 2)
    applied = frequency_response_db(filters, FR_GRID_HZ, 44100)
    return plot_result(
        path,
        frequency_hz=FR_GRID_HZ,
        curves={"device A": np.sin(np.log(FR_GRID_HZ)) * 3, "device B": np.zeros(FR_GRID_HZ.size)},
        applied_db=applied,
        spectrum_before=long_term_spectrum(x, 44100),
        spectrum_after=long_term_spectrum(apply_eq(x, 44100, filters), 44100),
        title="test plot",
    )


def test_plot_writes_a_png(tmp_path):
    path = _plot(tmp_path / "result.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert width >= 1000 and height >= 1000
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]  # no temp file left


def test_plot_never_overwrites(tmp_path):
    path = tmp_path / "result.png"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        _plot(path)
    assert path.read_bytes() == b"keep"
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]
