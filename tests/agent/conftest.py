"""Fixtures of the agent tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def engine(rt_rules):
    """The conversation engine with the rule-based parser, one per test module (conversations by thread id)."""
    from agent.engine import Engine

    return Engine(rt_rules)
