"""Where SENSE finds its data and keeps its state.

One setting each, read from the environment:

- ``SENSE_DATA_DIR``: the shared data set (music, FR curves, word→EQ prior). Default:
  ``../shared/data`` beside the project root when that folder exists; otherwise the files are
  fetched from their public upstream into the cache (see :mod:`knowledge.fetch`).
- ``SENSE_HOME``: per-user state (preference store, profiles) and on-disk index caches.
  Default: ``~/.sense``.
"""

from __future__ import annotations

import os
from pathlib import Path

from knowledge.fetch import fetch_data
from tools.errors import DataMissingError

__all__ = ["DataMissingError", "PROJECT_ROOT", "cache_dir", "data_dir", "sense_home"]
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Return the data directory (``SENSE_DATA_DIR`` or ``../shared/data`` beside the project).

    Returns:
        Path to a folder with ``fr/``, ``music/``, ``prefs/`` ... as described in the data README.
    Raises:
        DataMissingError: if ``SENSE_DATA_DIR`` is set but does not exist.
    """
    env = os.environ.get("SENSE_DATA_DIR")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataMissingError(
                f"SENSE_DATA_DIR={env} does not exist; point it at a folder holding fr/, music/ and prefs/"
            )
        return path
    default = PROJECT_ROOT.parent / "shared" / "data"
    if default.is_dir():
        return default
    return fetch_data(cache_dir() / "data")  # only a user's own machine goes this way


def sense_home() -> Path:
    """Return (and create) the folder for per-user state and caches (``SENSE_HOME``, default ``~/.sense``)."""
    path = Path(os.environ.get("SENSE_HOME", "~/.sense")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Return (and create) ``SENSE_HOME/cache``: on-disk indices keyed by a content hash."""
    path = sense_home() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
