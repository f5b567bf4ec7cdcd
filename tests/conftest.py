"""Shared fixtures. Every test run gets its own SENSE_HOME, so no user state is touched."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["SENSE_HOME"] = tempfile.mkdtemp(prefix="sense-test-home-")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from knowledge.config import DataMissingError, data_dir

    try:
        return data_dir()
    except DataMissingError as exc:
        pytest.skip(f"shared data not available: {exc}")


@pytest.fixture(scope="session")
def embedder():
    """The MiniLM embedder, loaded once (about 10 s); skips if the model package is missing."""
    from knowledge.embeddings import get_embedder

    try:
        return get_embedder()
    except ImportError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def vibe_ace(data_dir) -> Path:
    return data_dir / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"


@pytest.fixture(scope="session")
def excerpt(tmp_path_factory, vibe_ace) -> Path:
    """20 s of Vibe Ace (from 10 s in) as a 16-bit WAV: a real track, short enough for many tests."""
    import soundfile as sf

    samples, rate = sf.read(vibe_ace, dtype="float32", start=10 * 44100, frames=20 * 44100)
    path = tmp_path_factory.mktemp("audio") / "vibe_ace_20s.wav"
    sf.write(path, samples, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def rt_rules(tmp_path_factory, data_dir):
    """Runtime without an LLM (rule-based parser), with its own preference store."""
    from agent.runtime import Runtime

    return Runtime.load(use_llm=False, prefs_path=tmp_path_factory.mktemp("prefs") / "prefs.sqlite")


@pytest.fixture(scope="session")
def rt_llm(tmp_path_factory, data_dir):
    """Runtime with the real default planner (Qwen2.5-Coder-1.5B Q4_K_M through llama.cpp)."""
    from agent.models import ModelMissingError
    from agent.runtime import Runtime

    try:
        return Runtime.load(prefs_path=tmp_path_factory.mktemp("prefs-llm") / "prefs.sqlite")
    except ModelMissingError as exc:
        pytest.skip(f"planner model not assembled: {exc}")
