"""Loudspeaker frequency responses (CEA-2034 spinoramas) for a room's speaker as the listening device.

Source: Audio Science Review's Klippel NFS measurements, the shared copy in
``data_dir()/fr/speakers_asr`` (``index.csv`` plus one ``spinorama.csv`` per speaker; see the data
README). A loudspeaker and a headphone are measured on different rigs (free field at 1 m vs an ear
simulator), so their raw curves cannot be subtracted. Each is compared with its own target instead:
a headphone with its class target (Harman), a loudspeaker with the CEA-2034 / Harman design goal of
a **flat listening window** (the average of the on-axis and +-10..30 degree responses). A speaker's
*deviation* is its listening window minus flat, normalised like every FR curve here (0 dB mean over
300 Hz-3 kHz). Rendering headphone B on loudspeaker S is then ``(B - target(B)) - deviation(S)``.
Below the speaker's -6 dB point the deviation is taken as 0: SENSE does not try to extend a small
speaker's bass past what it can play (it would only cost headroom and excursion).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

from knowledge.config import DataMissingError, data_dir
from knowledge.fr_store import FR_GRID_HZ, to_grid
from tools.errors import SenseError

BASS_LIMIT_DB = -6.0
"""The listening window's level, dB re its 300 Hz-3 kHz mean, that marks the speaker's low-frequency limit."""
RESOLVE_MIN_SCORE = 80.0
"""Least rapidfuzz WRatio (0-100) for a typed speaker name to resolve to a measured model."""


class UnknownSpeakerError(SenseError, KeyError):
    """A loudspeaker model that is not in the spinorama store (the message lists close names)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown loudspeaker"


@dataclass(frozen=True)
class Loudspeaker:
    """One measured loudspeaker.

    Attributes:
        name: model name as ASR lists it (e.g. "Genelec 8341A").
        listening_window_db: float64 (481,) on FR_GRID_HZ, 0 dB mean over 300 Hz-3 kHz.
        in_room_db: the estimated in-room response, same grid and normalisation.
        path: its spinorama.csv. review_url, license: attribution from index.csv.
    """

    name: str
    listening_window_db: np.ndarray = field(repr=False)
    in_room_db: np.ndarray = field(repr=False)
    path: Path
    review_url: str = ""
    license: str = ""

    @property
    def bass_limit_hz(self) -> float:
        """The lowest frequency, Hz, above which the listening window stays above :data:`BASS_LIMIT_DB`
        (searching down from 300 Hz)."""
        below = np.flatnonzero((FR_GRID_HZ < 300.0) & (self.listening_window_db < BASS_LIMIT_DB))
        return float(FR_GRID_HZ[below[-1] + 1]) if below.size else float(FR_GRID_HZ[0])

    @property
    def deviation_db(self) -> np.ndarray:
        """Listening window minus the flat target, dB on FR_GRID_HZ, 0 below :attr:`bass_limit_hz`."""
        return np.where(FR_GRID_HZ < self.bass_limit_hz, 0.0, self.listening_window_db)


def _read_spinorama(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if len(rows) < 2:
        raise ValueError(f"{path}: fewer than 2 rows")
    f_hz = np.array([float(r["frequency_hz"]) for r in rows])
    lw = np.array([float(r["listening_window_db"]) for r in rows])
    pir = np.array([float(r["estimated_in_room_db"]) for r in rows])
    return f_hz, lw, pir


class SpeakerStore:
    """The measured loudspeakers, by name (loaded from ``fr/speakers_asr/index.csv``)."""

    def __init__(self, speakers: list[Loudspeaker]):
        self._by_name = {s.name: s for s in speakers}

    @classmethod
    def load(cls, root: Path | None = None) -> SpeakerStore:
        """Read every speaker listed in ``root/index.csv`` (default ``data_dir()/fr/speakers_asr``).

        Raises:
            DataMissingError: no index.csv there. ValueError: a listed spinorama.csv is malformed.
        """
        root = Path(root) if root is not None else data_dir() / "fr" / "speakers_asr"
        index = root / "index.csv"
        if not index.is_file():
            raise DataMissingError(f"no loudspeaker index at {index}; set SENSE_DATA_DIR to the shared data folder")
        speakers = []
        with open(index, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                path = root / row["relpath"]
                f_hz, lw, pir = _read_spinorama(path)
                speakers.append(Loudspeaker(row["speaker"], to_grid(f_hz, lw), to_grid(f_hz, pir), path,
                                            row.get("review_url", ""), row.get("license", "")))
        return cls(speakers)

    def names(self) -> list[str]:
        """Every model name, sorted."""
        return sorted(self._by_name)

    def resolve(self, name: str) -> Loudspeaker:
        """The speaker called ``name``: exact (case-insensitive) or the closest name by edit distance.

        Raises:
            UnknownSpeakerError: nothing close enough (the message names the three closest).
        """
        lowered = {n.lower(): n for n in self._by_name}
        if name.strip().lower() in lowered:
            return self._by_name[lowered[name.strip().lower()]]
        matches = process.extract(name, list(self._by_name), scorer=fuzz.WRatio, limit=3)
        if matches and matches[0][1] >= RESOLVE_MIN_SCORE and (len(matches) < 2 or matches[0][1] > matches[1][1]):
            return self._by_name[matches[0][0]]
        close = ", ".join(m[0] for m in matches)
        raise UnknownSpeakerError(f"no measured loudspeaker called {name!r}; closest: {close} "
                                  f"(`sense speaker models` lists all {len(self._by_name)})")


__all__ = ["FR_GRID_HZ", "DataMissingError", "Loudspeaker", "SpeakerStore", "UnknownSpeakerError"]
