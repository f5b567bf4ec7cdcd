"""The word → EQ population: what the crowd data says people set for a word, as a distribution.

Shared by the product (variants, personal models) and the evaluation (:mod:`eval.text2eq`). A *setting*
is a float64 (40,) vector of band gains in dB on :data:`knowledge.descriptors.AUDEALIZE_FREQS_HZ`
(Audealize's 40 peaking bands, Q 4.31) at the crowd's default amount (:data:`AMOUNT_DB` at the curve's
extremes), in the word's own direction ("more warm").

Source: Audealize / SocialEQ crowd data (``data_dir()/prefs/audealize/eqdescriptors.json``); the
population model and the 2-D space are defined in docs/EVALUATION.md (after arXiv 2601.09448).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from knowledge.config import data_dir
from knowledge.descriptors import AUDEALIZE_FREQS_HZ, AUDEALIZE_MAX_DB, DEFAULT_AMOUNT, normalised_curve

BOUNDS_DB = (-6.0, 6.0)
"""Range of each axis of the 2-D space (the Beosonic control's ±6 dB); samples are clipped to it."""

AMOUNT_DB = AUDEALIZE_MAX_DB * DEFAULT_AMOUNT
"""Band gain (dB) at curve value ±1: curves are compared at the production default amount."""

_OCTAVES = 5.0  # the 2-D basis spans ±5 octaves around 1 kHz (31 Hz .. 32 kHz)
_T = np.log2(AUDEALIZE_FREQS_HZ / 1000.0) / _OCTAVES
_BASIS = np.stack([np.ones_like(_T), _T**2 - np.mean(_T**2), _T], axis=1)  # level, smile, tilt


def load_english(path: Path | None = None) -> list[dict]:
    """English entries of eqdescriptors.json, file order.

    Args:
        path: default ``data_dir()/prefs/audealize/eqdescriptors.json``.
    Returns:
        dicts ``{word, lang, settings (40 floats), agreement, num, x, y}`` (294 in the shared data).
    Raises:
        DataMissingError: no data dir; OSError / json.JSONDecodeError for an unreadable file.
    """
    path = Path(path) if path is not None else data_dir() / "prefs" / "audealize" / "eqdescriptors.json"
    return [e for e in json.loads(path.read_bytes()) if e["lang"] == "English"]


def band_gains(entries: list[dict]) -> np.ndarray:
    """Band gains of entries at the default amount: float64 (n, 40) dB = AMOUNT_DB · normalised curve.

    Source: Audealize's normalisation (:func:`knowledge.descriptors.normalised_curve`).
    """
    return np.array([AMOUNT_DB * normalised_curve(e["settings"]) for e in entries]).reshape(len(entries), -1)


def smile_tilt_xy(gains_db: np.ndarray) -> np.ndarray:
    """Beosonic-style 2-D coordinates of 40-band curves, clipped to BOUNDS_DB.

    Least-squares fit over the bands of g(f) ≈ c + x·(T² − mean T²) + y·T, T = log2(f / 1 kHz) / 5;
    the level c is dropped (loudness is matched afterwards). x ("smile", dB): how far ±5 octaves
    from 1 kHz rise above 1 kHz; y ("tilt", dB): the slope per 5 octaves, + = brighter.

    Args:
        gains_db: float array (n, 40) or (40,), dB on AUDEALIZE_FREQS_HZ.
    Returns:
        float64 (n, 2) [x, y], dB, each clipped to BOUNDS_DB.
    Source: the 2-D control of DESIGN.md §5 (x smile, y tilt around 1 kHz, ±6 dB), after the
        Beosonic space of arXiv 2601.09448.
    """
    g = np.atleast_2d(np.asarray(gains_db, dtype=np.float64))
    coef, *_ = np.linalg.lstsq(_BASIS, g.T, rcond=None)
    return np.clip(coef[1:].T, *BOUNDS_DB)


def population_samples(
    gains_db: np.ndarray, agreement: np.ndarray, spread: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw per row from N(gains_db[i], (1 − agreement[i])² · C), C = covariance of ``spread``'s rows.

    Args:
        gains_db: float (n, 40), the curve (dB) each sample is drawn around (repeat a word's
            curve n times for n samples of its population).
        agreement: float (n,) (or a scalar), crowd agreement 0..1 of each row's word.
        spread: float (m, 40), m >= 2 curves whose covariance shapes the spread.
        rng: numpy Generator.
    Returns:
        float64 (n, 40) dB.
    """
    centred = spread - spread.mean(axis=0)
    noise = rng.standard_normal((len(gains_db), len(centred))) @ centred / np.sqrt(len(centred) - 1)
    return gains_db + (1.0 - np.asarray(agreement, dtype=np.float64)).reshape(-1, 1) * noise
