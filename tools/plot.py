"""One-picture summary of a processing result (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from tools.atomic import write_new_file  # noqa: E402
from tools.transfer import smooth_octave  # noqa: E402

F_MIN_HZ, F_MAX_HZ = 20.0, 20000.0
_TICKS_HZ = [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000]


def _hz_label(value: float, _pos: object = None) -> str:
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def _frequency_axis(ax: plt.Axes, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_xlim(F_MIN_HZ, F_MAX_HZ)
    ax.set_xticks(_TICKS_HZ)
    ax.xaxis.set_major_formatter(FuncFormatter(_hz_label))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.45)
    ax.grid(True, which="minor", alpha=0.15)
    ax.set_ylabel(ylabel)


def _in_band(freqs: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    freqs, db = np.asarray(freqs, dtype=float), np.asarray(db, dtype=float)
    keep = (freqs >= F_MIN_HZ) & (freqs <= F_MAX_HZ) & np.isfinite(db)
    return freqs[keep], db[keep]


def plot_result(
    path: str | os.PathLike,
    *,
    frequency_hz: np.ndarray,
    curves: dict[str, np.ndarray],
    applied_db: np.ndarray,
    stages: dict[str, np.ndarray] | None = None,
    spectrum_before: tuple[np.ndarray, np.ndarray],
    spectrum_after: tuple[np.ndarray, np.ndarray],
    title: str,
) -> Path:
    """Draw what was done and what it did, as one PNG with three panels on 20 Hz-20 kHz log axes.

    Panels: (1) the frequency-response curves used (e.g. devices, target), (2) the total
    response applied, boosts and cuts shaded, (3) the long-term spectra before and after,
    1/6-octave smoothed, with their difference (after - before) on a right-hand axis.

    Args:
        path: destination .png; must not exist.
        frequency_hz: float array (n,), Hz, the grid of ``curves`` and ``applied_db``.
        curves: label -> float array (n,), dB (may be empty; NaN points are skipped).
        applied_db: float array (n,), dB, the applied filter's total response.
        stages: label -> float array (n,), dB: the parts summed into ``applied_db`` (e.g. the
            device transfer and each word's EQ), drawn dashed in panel 2 when there are several.
        spectrum_before, spectrum_after: (freqs_hz, db) as from
            tools.analysis.long_term_spectrum.
        title: figure title.
    Returns:
        The path written (atomically, see tools.atomic.write_new_file).
    Raises:
        FileExistsError: ``path`` exists.
    """
    path = Path(path)
    if path.exists():  # before drawing; write_new_file checks again atomically
        raise FileExistsError(f"{path}: already exists; not overwriting")
    fig, axes = plt.subplots(3, 1, figsize=(10, 10.5), sharex=True, gridspec_kw={"height_ratios": [1, 1, 1.15]})
    fig.suptitle(title, fontsize=14, fontweight="bold")

    ax = axes[0]
    for label, db in curves.items():
        ax.plot(*_in_band(frequency_hz, db), lw=1.6, label=label)
    ax.set_title("Frequency responses used", loc="left", fontsize=11)
    if curves:
        ax.legend(loc="best", fontsize=9, framealpha=0.85)

    ax = axes[1]
    f, db = _in_band(frequency_hz, applied_db)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.fill_between(f, 0, db, where=db >= 0, color="tab:green", alpha=0.25, interpolate=True, label="boost")
    ax.fill_between(f, 0, db, where=db < 0, color="tab:red", alpha=0.25, interpolate=True, label="cut")
    if stages and len(stages) > 1:
        for label, stage_db in stages.items():
            ax.plot(*_in_band(frequency_hz, stage_db), lw=1.2, ls="--", label=label)
    ax.plot(f, db, color="black", lw=1.8, label="applied response")
    shown = [db, *(np.asarray(v, dtype=float) for v in (stages or {}).values())]
    limit = max(3.0, max(float(np.nanmax(np.abs(v), initial=0.0)) for v in shown) * 1.2)
    ax.set_ylim(-limit, limit)
    ax.set_title("Applied filter (total response)", loc="left", fontsize=11)
    ax.legend(loc="best", fontsize=9, framealpha=0.85)

    ax = axes[2]
    spectra = {}
    for label, (freqs, db), color in (
        ("before", spectrum_before, "tab:gray"),
        ("after", spectrum_after, "tab:blue"),
    ):
        f, d = _in_band(freqs, db)
        d = smooth_octave(f, d, 1 / 6)
        spectra[label] = (f, d)
        ax.plot(f, d, color=color, lw=1.6, label=f"{label} (1/6-octave smoothed)")
    ax.set_title("Long-term spectrum", loc="left", fontsize=11)
    ax.set_xlabel("frequency (Hz)")
    f_before, d_before = spectra["before"]
    f_after, d_after = spectra["after"]
    twin = ax.twinx()
    twin.plot(f_after, d_after - np.interp(f_after, f_before, d_before), color="tab:orange", lw=1.2, ls="--",
              label="after - before")
    twin.axhline(0.0, color="tab:orange", lw=0.6, alpha=0.5)
    twin.set_ylabel("difference (dB)", color="tab:orange")
    twin.tick_params(axis="y", colors="tab:orange")
    lines = ax.get_legend_handles_labels()
    twin_lines = twin.get_legend_handles_labels()
    ax.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], loc="lower left", fontsize=9, framealpha=0.85)

    for ax, ylabel in zip(axes, ("level (dB)", "gain (dB)", "power density (dB/Hz)")):
        _frequency_axis(ax, ylabel)
    fig.tight_layout()

    try:
        return write_new_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)


def plot_curves(path: str | os.PathLike, *, frequency_hz: np.ndarray, curves: dict[str, np.ndarray], title: str,
                ylabel: str = "dB re target", bands: dict[str, tuple[float, float]] | None = None) -> Path:
    """One panel of labelled curves on a 20 Hz–20 kHz log axis (answers: devices against their targets,
    a word's EQ, a track against typical music), optionally with named bands shaded.

    Args:
        path: destination .png; must not exist.
        frequency_hz: float array (n,), Hz.
        curves: label → float array (n,), dB.
        title: figure title.
        ylabel: the y axis' label.
        bands: label → (low_hz, high_hz) regions to shade (e.g. the band a question asks about).
    Returns:
        The path written (atomically).
    Raises:
        FileExistsError: ``path`` exists.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path}: already exists; not overwriting")
    fig, ax = plt.subplots(figsize=(10, 4.6))
    ax.axhline(0.0, color="0.3", lw=0.8)
    for label, (lo, hi) in (bands or {}).items():
        ax.axvspan(lo, hi, color="tab:orange", alpha=0.12, label=label)
    for label, db in curves.items():
        ax.plot(*_in_band(frequency_hz, db), lw=1.7, label=label)
    _frequency_axis(ax, ylabel)
    ax.set_xlabel("frequency (Hz)")
    ax.set_title(title, fontsize=12, fontweight="bold", loc="left")
    ax.legend(loc="best", fontsize=9, framealpha=0.85)
    fig.tight_layout()
    try:
        return write_new_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)
