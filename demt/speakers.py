"""Loudspeaker frequency responses (CEA-2034 spinoramas by Audio Science Review) on FR_GRID_HZ.

Source: ``data_dir()/fr/speakers_asr`` (96 speakers measured on a Klippel NFS; see that
folder's README/SOURCES). Each speaker's tidy ``spinorama.csv`` is read, every curve is
interpolated onto :data:`knowledge.fr_store.FR_GRID_HZ` (linear in log frequency, edges held)
and shifted to 0 dB mean over 300 Hz-3 kHz, exactly like the headphone FR store.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.config import DataMissingError, data_dir
from knowledge.fr_store import to_grid

SPIN_COLUMNS = ("on_axis_db", "listening_window_db", "early_reflections_db", "sound_power_db",
                "estimated_in_room_db")
"""Curves kept from each spinorama.csv (dB SPL; only their shapes are used)."""

_SAMPLE = re.compile(r"\s*\(sample\s*\d+\)\s*$", re.IGNORECASE)


@dataclass(eq=False)
class SpeakerCurves:
    """The spinorama of one loudspeaker unit on FR_GRID_HZ.

    Attributes:
        name: folder name as measured, e.g. 'JBL 705P (sample 1)'.
        model: name without a '(sample N)' suffix: units of one model share it.
        curves: column name (see SPIN_COLUMNS) -> float64 (481,) dB, 0 dB mean over 300 Hz-3 kHz.
        path: the spinorama.csv read.
    """

    name: str
    model: str
    curves: dict[str, np.ndarray] = field(repr=False)
    path: Path


def read_spinorama_csv(path: Path) -> dict[str, np.ndarray]:
    """One tidy spinorama.csv -> {column: (481,) dB on FR_GRID_HZ, normalised}.

    Raises:
        ValueError: no frequency_hz column, or fewer than 2 usable rows.
        OSError: unreadable file.
    """
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "frequency_hz" not in rows[0]:
        raise ValueError(f"{path}: no frequency_hz column")
    freq = np.array([float(r["frequency_hz"]) for r in rows])
    out = {}
    for col in SPIN_COLUMNS:
        if col not in rows[0]:
            continue
        vals = np.array([float(r[col]) if r[col] not in ("", None) else np.nan for r in rows])
        ok = np.isfinite(vals) & (freq > 0)
        if ok.sum() < 2:
            continue
        f, first = np.unique(freq[ok], return_index=True)
        out[col] = to_grid(f, vals[ok][first])
    if "listening_window_db" not in out:
        raise ValueError(f"{path}: no usable listening_window_db")
    return out


def load_speakers(root: Path | None = None) -> list[SpeakerCurves]:
    """All speakers listed in ``root/index.csv`` (default ``data_dir()/fr/speakers_asr``), sorted by name.

    Raises:
        DataMissingError: the folder or its index.csv is missing, or nothing could be read.
    """
    root = Path(root) if root is not None else data_dir() / "fr" / "speakers_asr"
    index = root / "index.csv"
    if not index.is_file():
        raise DataMissingError(f"no loudspeaker index at {index}; set SENSE_DATA_DIR to a folder holding fr/speakers_asr/")
    with open(index, newline="", encoding="utf-8") as f:
        entries = list(csv.DictReader(f))
    speakers = []
    for e in entries:
        path = root / e["relpath"]
        try:
            curves = read_spinorama_csv(path)
        except (OSError, ValueError):
            continue
        speakers.append(SpeakerCurves(e["speaker"], _SAMPLE.sub("", e["speaker"]), curves, path))
    if not speakers:
        raise DataMissingError(f"no readable spinorama.csv under {root}")
    return sorted(speakers, key=lambda s: s.name)
