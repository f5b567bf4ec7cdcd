"""Fixtures of the agent tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def engine(rt_rules):
    """The conversation engine with the rule-based parser, one per test module (conversations by thread id)."""
    from agent.engine import Engine

    return Engine(rt_rules)


@pytest.fixture(scope="module")
def small_model():
    """Path of the real 0.5B planner GGUF (Qwen2.5-Coder-0.5B Q4_K_M); the test is skipped when it is not assembled."""
    from agent.models import ModelMissingError, model_path

    try:
        path = model_path("qwen2.5-coder-0.5b")
    except ModelMissingError as exc:
        pytest.skip(f"0.5B planner not assembled: {exc}")
    if not path.is_file():
        pytest.skip("0.5B planner not assembled")
    return path
