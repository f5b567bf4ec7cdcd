"""Headphone frequency responses and target curves in AutoEq's CSV format.

Source: jaakkopasanen/AutoEq (measurements by oratory1990 and RTINGS.com, Harman targets);
the shared copy lives in ``data_dir()/fr/autoeq`` (see its SOURCES.md). Every curve is
resampled onto one log grid, FR_GRID_HZ, and normalised to 0 dB mean over 300 Hz–3 kHz.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from rapidfuzz import process

from knowledge.config import DataMissingError, data_dir

log = logging.getLogger(__name__)

FR_GRID_HZ = np.geomspace(20.0, 20000.0, 481)
"""Common frequency grid (Hz): 481 log-spaced points, 20 Hz–20 kHz (about 1/48 octave)."""

NORM_BAND_HZ = (300.0, 3000.0)
"""Every curve is shifted so its mean over this band (Hz, on FR_GRID_HZ) is 0 dB."""

MEASUREMENT_TYPES = ("in-ear", "earbud", "over-ear")
"""AutoEq's folder names for headphone classes (``measurements/<source>/data/<type>/``)."""

_NORM_MASK = (FR_GRID_HZ >= NORM_BAND_HZ[0]) & (FR_GRID_HZ <= NORM_BAND_HZ[1])
_SAMPLE_SUFFIX = re.compile(r"\s*\((?:sample|unit|s/n|serial)\b[^)]*\)\s*$", re.IGNORECASE)


@dataclass(eq=False)
class FRCurve:
    """One frequency response or target curve on FR_GRID_HZ.

    Attributes:
        device: model name (AutoEq file stem without a "(sample N)" suffix) or target name.
        type: 'in-ear' | 'earbud' | 'over-ear' | 'target' | 'unknown'.
        source: measurer ('oratory1990', 'rtings', or 'a+b' for a mean curve); 'autoeq' for targets.
        kind: 'measurement' | 'target'.
        db: float64 (481,) level in dB on FR_GRID_HZ, 0 dB = mean over 300 Hz–3 kHz.
        path: the CSV it came from (the first one for a mean curve).
    """

    device: str
    type: str
    source: str
    kind: Literal["measurement", "target"]
    db: np.ndarray = field(repr=False)
    path: Path


def read_autoeq_csv(source: Path | bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read an AutoEq CSV (a path or its bytes): header with ``frequency`` and ``raw``, other columns ignored.

    Returns:
        (frequency_hz, raw_db): float64 (m,), sorted by frequency, unique, finite, m >= 2.
    Raises:
        ValueError: no such columns, unparsable numbers, not UTF-8, or fewer than 2 usable points.
        OSError: the path cannot be read.
    """
    raw_bytes = source if isinstance(source, bytes) else Path(source).read_bytes()
    rows = csv.reader(io.StringIO(raw_bytes.decode("utf-8-sig")))
    header = [h.strip().lower() for h in next(rows, [])]
    if "frequency" not in header or "raw" not in header:
        raise ValueError(f"header {header[:4]} lacks 'frequency' and 'raw'")
    i_f, i_r = header.index("frequency"), header.index("raw")
    points = [
        (float(row[i_f]), float(row[i_r]))
        for row in rows
        if len(row) > max(i_f, i_r) and row[i_f].strip() and row[i_r].strip()
    ]
    data = np.array(points, dtype=np.float64).reshape(-1, 2)
    data = data[np.isfinite(data).all(axis=1) & (data[:, 0] > 0)]
    freq, first = np.unique(data[:, 0], return_index=True)
    if freq.size < 2:
        raise ValueError("fewer than 2 usable (frequency, raw) rows")
    return freq, data[first, 1]


def to_grid(frequency_hz: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Interpolate a curve onto FR_GRID_HZ (linear in log frequency, edges held) and normalise.

    Args:
        frequency_hz: (m,) ascending frequencies in Hz.
        db: (m,) levels in dB.
    Returns:
        float64 (481,) dB on FR_GRID_HZ with mean 0 over 300 Hz–3 kHz.
    """
    grid_db = np.interp(np.log10(FR_GRID_HZ), np.log10(frequency_hz), db)
    return grid_db - grid_db[_NORM_MASK].mean()


class FRStore:
    """All measurements and targets of one folder, resampled onto FR_GRID_HZ.

    Build with :meth:`FRStore.load`. Several measurements of one model (different rigs or
    samples) are all kept; :meth:`curve` averages them.
    """

    def __init__(self, curves: list[FRCurve], root: Path, content_hash: str):
        self.root = root
        self._hash = content_hash
        self._measurements: dict[str, list[FRCurve]] = {}
        self._targets: dict[str, FRCurve] = {}
        for c in curves:
            if c.kind == "target":
                self._targets[_target_key(c.device)] = c
            else:
                self._measurements.setdefault(c.device, []).append(c)

    @classmethod
    def load(cls, root: Path | None = None) -> FRStore:
        """Load every usable AutoEq CSV under ``root``.

        Args:
            root: folder of AutoEq CSVs; default ``data_dir()/fr/autoeq``. With an ``index.csv``
                (columns device, type, source, kind, relpath) that lists the files; otherwise the
                folder is walked: only ``measurements/`` and ``targets/`` when present (a full
                AutoEq checkout), device = file stem without "(sample N)", type = a parent folder
                named in-ear / earbud / over-ear, source = the folder after ``measurements``,
                files under ``targets`` are targets. Malformed CSVs are skipped with a warning.
        Returns:
            FRStore.
        Raises:
            DataMissingError: the folder is missing or holds no usable AutoEq CSV.
        """
        root = Path(root) if root is not None else data_dir() / "fr" / "autoeq"
        entries = _index_entries(root) if (root / "index.csv").is_file() else _walk_entries(root)
        digest = hashlib.sha256()
        curves = []
        for rel, device, type_, source, kind in entries:
            path = root / rel
            try:
                content = path.read_bytes()
                freq, raw = read_autoeq_csv(content)
            except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                log.warning("skipping %s: %s", path, exc)
                continue
            digest.update("\0".join((rel, device, type_, source, kind)).encode() + content)
            curves.append(FRCurve(device, type_, source, kind, to_grid(freq, raw), path))
        if not curves:
            raise DataMissingError(
                f"no usable AutoEq CSVs (header frequency,raw) under {root}; "
                "pass a folder of them or set SENSE_DATA_DIR to a folder holding fr/autoeq/"
            )
        return cls(curves, root, digest.hexdigest())

    def content_hash(self) -> str:
        """sha256 hex of every loaded file's bytes and metadata; the key for derived index caches."""
        return self._hash

    def devices(self) -> list[str]:
        """Sorted unique model names that have at least one measurement (targets excluded)."""
        return sorted(self._measurements)

    def brands(self) -> frozenset[str]:
        """The first word of each model name, lower case ("sony", "apple", "7hz")."""
        return frozenset(name.split()[0].lower() for name in self._measurements)

    def measurements(self, name: str) -> list[FRCurve]:
        """All measurements of model ``name`` (exact or case-insensitive name).

        Raises:
            KeyError: unknown model; the message names the closest known models.
        """
        return list(self._measurements[self._model(name)])

    def device_type(self, name: str) -> str:
        """Class of model ``name``: 'in-ear' | 'earbud' | 'over-ear' | 'unknown' (most common over its measurements).

        Raises:
            KeyError: unknown model.
        """
        return Counter(c.type for c in self.measurements(name)).most_common(1)[0][0]

    def sources(self, name: str) -> list[str]:
        """Sorted unique measurers of model ``name`` (e.g. ['oratory1990', 'rtings']).

        Raises:
            KeyError: unknown model.
        """
        return sorted({c.source for c in self.measurements(name)})

    def curve(self, name: str) -> FRCurve:
        """The model's response: the mean in dB of its measurements on FR_GRID_HZ.

        Returns:
            FRCurve with source joined like 'oratory1990+rtings' and path of the first measurement.
        Raises:
            KeyError: unknown model.
        """
        items = self.measurements(name)
        if len(items) == 1:
            return items[0]
        return FRCurve(
            device=items[0].device,
            type=self.device_type(name),
            source="+".join(self.sources(name)),
            kind="measurement",
            db=np.mean([c.db for c in items], axis=0),
            path=items[0].path,
        )

    def targets(self) -> list[FRCurve]:
        """All target curves, sorted by name."""
        return sorted(self._targets.values(), key=lambda c: c.device)

    def target(self, name: str) -> FRCurve:
        """Target curve by name; case, '_' and spaces are ignored ('harman_in-ear_2019v2' works).

        Raises:
            KeyError: no such target in this store.
        """
        try:
            return self._targets[_target_key(name)]
        except KeyError:
            known = ", ".join(c.device for c in self.targets())
            raise KeyError(f"target {name!r} is not in {self.root} (have: {known})") from None

    def target_for(self, name: str) -> FRCurve:
        """The class target AutoEq pairs with model ``name``.

        in-ear and earbud → 'Harman in-ear 2019v2'; over-ear → 'Harman over-ear 2018', or
        'Rtings Harman over-ear 2018' when every measurement of the model is from RTINGS (the
        same target as seen on the RTINGS rig).
        Raises:
            KeyError: unknown model, or that target is not in the store.
            ValueError: the model's type has no class target (e.g. 'unknown').
        """
        type_ = self.device_type(name)
        if type_ in ("in-ear", "earbud"):
            return self.target("Harman in-ear 2019v2")
        if type_ == "over-ear":
            rtings_only = self.sources(name) == ["rtings"]
            return self.target("Rtings Harman over-ear 2018" if rtings_only else "Harman over-ear 2018")
        raise ValueError(f"{name!r} has type {type_!r}; no class target (expected one of {MEASUREMENT_TYPES})")

    def _model(self, name: str) -> str:
        """Map an exact or case-insensitive model name to the stored one, else KeyError with suggestions."""
        if name in self._measurements:
            return name
        folded = {n.casefold(): n for n in self._measurements}
        if name.casefold() in folded:
            return folded[name.casefold()]
        close = [m for m, _, _ in process.extract(name, list(self._measurements), limit=3)]
        raise KeyError(f"no measurements of {name!r} in {self.root}; closest: {', '.join(close)}")


def _target_key(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip().casefold())


def _index_entries(root: Path) -> list[tuple[str, str, str, str, str]]:
    """(relpath, device, type, source, kind) rows of ``root/index.csv``."""
    with open(root / "index.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        (
            r["relpath"],
            r["device"],
            r.get("type") or ("target" if r.get("kind") == "target" else "unknown"),
            r.get("source") or "autoeq",
            "target" if r.get("kind") == "target" else "measurement",
        )
        for r in rows
    ]


def _walk_entries(root: Path) -> list[tuple[str, str, str, str, str]]:
    """(relpath, device, type, source, kind) for every CSV in an AutoEq-like folder tree."""
    if not root.is_dir():
        return []
    subroots = [root / d for d in ("measurements", "targets") if (root / d).is_dir()] or [root]
    entries = []
    for sub in subroots:
        for path in sorted(sub.rglob("*.csv")):
            parts = path.relative_to(root.parent).parts[:-1]
            if "raw_data" in parts:  # AutoEq keeps unprocessed vendor files there
                continue
            rel = path.relative_to(root).as_posix()
            if "targets" in parts:
                entries.append((rel, path.stem, "target", "autoeq", "target"))
                continue
            type_ = next((p for p in reversed(parts) if p in MEASUREMENT_TYPES), "unknown")
            source = "unknown"
            if "measurements" in parts:
                i = len(parts) - 1 - parts[::-1].index("measurements")
                source = parts[i + 1] if i + 1 < len(parts) else "unknown"
            entries.append((rel, _SAMPLE_SUFFIX.sub("", path.stem), type_, source, "measurement"))
    return entries
