"""Fixtures for the knowledge tests: the shared data set, one embedder per session, a private SENSE_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from knowledge.config import PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data dir (SENSE_DATA_DIR or ../shared/data); skips when absent (never fetches)."""
    env = os.environ.get("SENSE_DATA_DIR")
    root = Path(env).expanduser() if env else PROJECT_ROOT.parent / "shared" / "data"
    if not (root / "fr" / "autoeq").is_dir():
        pytest.skip(f"shared data not found at {root}: point SENSE_DATA_DIR at the shared data set")
    return root


@pytest.fixture(scope="session")
def autoeq_dir(shared_data) -> Path:
    """``fr/autoeq`` of the shared data (index.csv, measurements/, targets/); tests read its contents at run time."""
    return shared_data / "fr" / "autoeq"


@pytest.fixture(scope="session")
def sense_home_dir(tmp_path_factory) -> Path:
    """One SENSE_HOME for the session, so on-disk index caches are shared between tests."""
    return tmp_path_factory.mktemp("sense_home")


@pytest.fixture(autouse=True)
def _private_sense_home(monkeypatch, sense_home_dir):
    """Nothing is written to ~/.sense: every test runs with SENSE_HOME in a temp folder."""
    monkeypatch.setenv("SENSE_HOME", str(sense_home_dir))


@pytest.fixture(scope="session")
def fr_store(autoeq_dir):
    """FRStore of the shared AutoEq set."""
    from knowledge.fr_store import FRStore

    return FRStore.load(autoeq_dir)


@pytest.fixture(scope="session")
def device_index(fr_store, embedder, sense_home_dir):
    """DeviceIndex over the shared AutoEq set (index cached in the session's SENSE_HOME)."""
    from knowledge.devices import DeviceIndex

    mp = pytest.MonkeyPatch()
    mp.setenv("SENSE_HOME", str(sense_home_dir))
    try:
        return DeviceIndex.build(fr_store, embedder)
    finally:
        mp.undo()
