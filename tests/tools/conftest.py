"""Fixtures for the tools tests: real audio and FR curves from the shared data set.

They build on tests/conftest.py's ``data_dir`` and ``vibe_ace`` (which skip when the data is absent).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools.signals import FR_GRID_HZ


@pytest.fixture(scope="session")
def vibe_ace_audio(vibe_ace):
    """Vibe Ace (61.5 s, 44.1 kHz stereo) decoded."""
    from tools.audio_io import load_audio

    if not vibe_ace.exists():
        pytest.skip(f"{vibe_ace} not found: point SENSE_DATA_DIR at the shared data set")
    return load_audio(vibe_ace)


def _read_autoeq(path) -> np.ndarray:
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    return np.interp(np.log(FR_GRID_HZ), np.log(table[:, 0]), table[:, 1])


@pytest.fixture(scope="session")
def airpods_harman(data_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, AirPods Pro (RTINGS) dB, Harman in-ear 2019v2 dB) on the FR store's grid."""
    root = data_dir / "fr" / "autoeq"
    device = root / "measurements" / "rtings" / "in-ear" / "Apple AirPods Pro.csv"
    target = root / "targets" / "Harman in-ear 2019v2.csv"
    if not (device.exists() and target.exists()):
        pytest.skip(f"AutoEq CSVs not found under {root}: point SENSE_DATA_DIR at the shared data set")
    return FR_GRID_HZ, _read_autoeq(device), _read_autoeq(target)
