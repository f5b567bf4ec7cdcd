"""The SENSE agent as a LangGraph ``StateGraph``: understand → dialogue → plan → act → check → variants → respond,
and understand → ask → respond for a question (read-only tools, nothing processed).

This module only wires: the nodes are top-level functions in :mod:`agent.nodes` (dependencies in
LangGraph's runtime context, :class:`agent.nodes.Deps`), and :data:`STEPS` names each node's
progress message for every front end (CLI spinner, web UI progress bar).
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph

from agent import nodes
from agent.nodes import Deps, SenseState

#: node → (progress fraction after it, what happens next), in graph order.
STEPS: dict[str, tuple[float, str]] = {
    "understand": (0.25, "Looking up devices and your preferences…"),
    "ask": (0.9, "Answering…"),
    "dialogue": (0.35, "Planning the EQ…"),
    "plan": (0.45, "Processing the audio…"),
    "act": (0.7, "Measuring the result…"),
    "check": (0.8, "Rendering variants…"),
    "variants": (0.9, "Drawing the plot and writing the explanation…"),
    "respond": (1.0, "Done"),
}
FIRST_STEP = "Understanding the request…"

#: The typed values the checkpointer may restore (LangGraph refuses unlisted types in strict mode).
_STATE_TYPES = [
    ("agent.nodes", "TurnRequest"), ("agent.nodes", "Understood"), ("agent.nodes", "Processed"),
    ("agent.dialogue", "Conversation"), ("agent.dialogue", "PendingQuestion"), ("agent.dialogue", "LastResult"),
    ("agent.settings", "Settings"), ("agent.settings", "DeviceRef"), ("agent.settings", "ToneMove"),
    ("agent.settings", "BandMove"), ("agent.settings", "StemMove"), ("agent.schemas", "Intent"),
    ("agent.schemas", "Adjustment"), ("agent.schemas", "BandEdit"), ("agent.schemas", "StemEdit"),
    ("tools.eq", "Filter"), ("agent.variants", "VariantSet"), ("agent.variants", "VariantOption"),
    *[("agent.answers", name) for name in ("CompareDevices", "DescribeDevice", "ListDevices", "RankDevices",
                                           "AnalyzeTrack", "PreviewWord", "ExplainLast")],
    *[("agent.plan", name) for name in ("SeparateCall", "StemEqCall", "StemGainCall", "StemMuteCall", "StemSoloCall",
                                        "RemixCall", "TransferCall", "EqualizeCall", "FinalizeCall", "SeparateArgs",
                                        "StemEqArgs", "StemGainArgs", "StemArgs", "RemixArgs", "TransferArgs",
                                        "BandEditArgs", "EqualizeArgs", "FinalizeArgs")],
]


def checkpointer() -> InMemorySaver:
    """An in-memory checkpointer that restores SENSE's typed state (one conversation per ``thread_id``)."""
    return InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=_STATE_TYPES))


def build_graph(checkpoint: Any | None = None):
    """Compile the agent graph (invoke it with ``context=Deps(...)``; :class:`agent.engine.Engine` does).

    Args:
        checkpoint: a LangGraph checkpointer (default :func:`checkpointer`).
    """
    graph = StateGraph(SenseState, context_schema=Deps)
    for name in STEPS:
        graph.add_node(name, getattr(nodes, f"{name}_node"))
    graph.add_edge(START, "understand")
    graph.add_conditional_edges("understand", nodes.route_after_understand, ["ask", "dialogue"])
    graph.add_edge("ask", "respond")
    graph.add_conditional_edges("dialogue", nodes.route_after_dialogue, ["plan", "respond"])
    graph.add_conditional_edges("plan", nodes.route_after_plan, ["act", "respond"])
    graph.add_edge("act", "check")
    graph.add_edge("check", "variants")
    graph.add_edge("variants", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpoint or checkpointer())
