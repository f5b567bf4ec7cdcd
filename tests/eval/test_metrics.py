"""eval.metrics: the distances between EQ settings, and the names it re-exports from tools."""

from __future__ import annotations

import numpy as np
import pytest

import tools.analysis
import tools.loudness
import tools.metrics
from eval import metrics
from eval.metrics import kantorovich_distance, reflected_kde_grid, reflective_kde_kantorovich


# --- re-exports ----------------------------------------------------------------------------------

def test_loudness_and_bands_are_the_tools_functions():
    for name in ("snr_db", "si_sdr_db", "sdr_db", "stoi", "spectral_rmse_db", "SDR_CLAMP_DB"):
        assert getattr(metrics, name) is getattr(tools.metrics, name), name
    assert metrics.integrated_lufs is tools.loudness.integrated_lufs
    assert metrics.true_peak_dbtp is tools.loudness.true_peak_dbtp
    assert metrics.band_energy_change_db is tools.analysis.band_energy_change_db


def test_lufs_and_true_peak_reference_values():
    """BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS; a 0.5 sine peaks at -6.02 dBTP."""
    t = np.arange(4 * 48000) / 48000
    sine = np.sin(2 * np.pi * 997 * t)
    assert metrics.integrated_lufs(sine, 48000) == pytest.approx(-3.01, abs=0.05)
    assert metrics.true_peak_dbtp(0.5 * sine, 48000) == pytest.approx(-6.02, abs=0.1)


# --- Kantorovich ---------------------------------------------------------------------------------

def test_kantorovich_1d_shift_equals_the_shift():
    a = np.random.default_rng(10).normal(size=(40, 1))
    assert kantorovich_distance(a, a + 0.7) == pytest.approx(0.7, abs=1e-9)


def test_kantorovich_hand_cases():
    assert kantorovich_distance([0.0, 1.0, 2.0], [0.5, 1.5, 2.5]) == pytest.approx(0.5, abs=1e-12)
    assert kantorovich_distance([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(5.0, abs=1e-12)
    assert kantorovich_distance([0.0], [-1.0, 1.0]) == pytest.approx(1.0, abs=1e-12)
    # uneven weights: 1/2 at {0, 1} against 1/3 at {0, 0.5, 1}; ∫|F_a - F_b| = 1/6
    assert kantorovich_distance([0.0, 1.0], [0.0, 0.5, 1.0]) == pytest.approx(1 / 6, abs=1e-12)


def test_kantorovich_symmetric_and_zero_for_identical_sets():
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(12, 3)), rng.normal(size=(7, 3)) + 1
    assert kantorovich_distance(a, b) == pytest.approx(kantorovich_distance(b, a), abs=1e-12)
    assert kantorovich_distance(a, a) == 0.0
    with pytest.raises(ValueError, match="dimensions"):
        kantorovich_distance(a, b[:, :2])


# --- reflective KDE Kantorovich ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cloud() -> np.ndarray:
    """32 points around (-1, 0), well inside the ±6 dB box."""
    return np.random.default_rng(12).normal(size=(32, 2)) * 0.8 + [-1.0, 0.0]


def test_reflective_kde_identical_sets_is_zero(cloud):
    assert reflective_kde_kantorovich(cloud, cloud) == pytest.approx(0.0, abs=1e-9)


def test_reflective_kde_grows_with_shift_and_is_about_the_shift(cloud):
    distances = [reflective_kde_kantorovich(cloud, cloud + [s, 0.0]) for s in (0.5, 1.0, 2.0)]
    assert distances[0] < distances[1] < distances[2]
    assert distances == pytest.approx([0.5, 1.0, 2.0], abs=0.06)
    shifted = cloud + [1.0, 0.5]
    forward, backward = reflective_kde_kantorovich(cloud, shifted), reflective_kde_kantorovich(shifted, cloud)
    assert forward == pytest.approx(backward, abs=1e-9)


@pytest.mark.parametrize(("point", "plain_mass"), [((6.0, 6.0), 0.25), ((6.0, 0.0), 0.5), ((0.0, 0.0), 1.0)])
def test_reflection_keeps_the_mass_a_plain_kde_loses(point, plain_mass):
    step_area = (12.0 / 20) ** 2
    _, reflected = reflected_kde_grid(np.array([point]))
    _, plain = reflected_kde_grid(np.array([point]), reflect=False)
    assert reflected.sum() * step_area == pytest.approx(1.0, abs=2e-3)
    assert plain.sum() * step_area == pytest.approx(plain_mass, abs=2e-3)


def test_reflective_kde_rejects_points_outside_the_box(cloud):
    with pytest.raises(ValueError, match="inside"):
        reflective_kde_kantorovich(cloud, cloud + 10)
