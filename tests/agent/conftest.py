"""Fixtures of the agent tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def graph(rt_rules):
    """The agent graph with the rule-based parser, one per test module (conversations by thread id)."""
    from agent.graph import build_graph

    return build_graph(rt_rules)
