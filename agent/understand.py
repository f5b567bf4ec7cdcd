"""Understand: text → :class:`Intent` with the LLM, one repair attempt, then the rule-based parser.

The result says which path produced it (``llm``, ``llm-repair`` or ``rules``) so the trace can
show it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import ValidationError
from rapidfuzz import fuzz

from agent import rules
from agent.llm import LLMBackend, LLMError
from agent.prompts import build_messages
from agent.schemas import Intent, intent_json_schema


@dataclass
class Understanding:
    """An extracted intent and how it was obtained.

    Attributes:
        intent: the validated intent.
        path: ``llm`` | ``llm-repair`` | ``rules``.
        raw: the LLM's raw replies, in order (empty for rules only).
        notes: why a fallback ran, or what was dropped as ungrounded.
        seconds: wall time of the whole step.
    """

    intent: Intent
    path: str
    raw: list[str]
    notes: list[str]
    seconds: float


def _grounded(intent: Intent, request: str, notes: list[str]) -> Intent:
    """Drop device names the request does not contain (a small LLM sometimes copies examples)."""
    text = request.lower()
    updates = {}
    for key in ("target_device", "listening_device"):
        value = getattr(intent, key)
        if value and fuzz.partial_ratio(value.lower(), text) < 70:
            notes.append(f"dropped {key}={value!r}: not in the request")
            updates[key] = None
    return intent.model_copy(update=updates) if updates else intent


def understand(request: str, llm: LLMBackend | None) -> Understanding:
    """Extract the intent of ``request``.

    Args:
        request: the person's words (any language the LLM reads).
        llm: the planner backend, or None to use the rule-based parser only.
    Returns:
        An :class:`Understanding`; never raises for bad LLM output (falls back to rules).
    """
    start = time.perf_counter()
    raw: list[str] = []
    notes: list[str] = []
    if llm is None:
        notes.append("no LLM configured")
        return Understanding(rules.parse(request), "rules", raw, notes, time.perf_counter() - start)
    schema = intent_json_schema()
    messages = build_messages(request)
    for path in ("llm", "llm-repair"):
        try:
            reply = llm.complete_json(messages, schema)
        except LLMError as exc:
            notes.append(f"LLM unavailable: {exc}")
            break
        raw.append(reply)
        try:
            intent = Intent.model_validate_json(reply)
            return Understanding(_grounded(intent, request, notes), path, raw, notes, time.perf_counter() - start)
        except ValidationError as exc:
            error = exc.errors()[0]
            notes.append(f"invalid LLM output ({path}): {error['msg']} at {'.'.join(map(str, error['loc']))}")
            messages = messages + [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"That JSON is invalid ({error['msg']}). Reply again with JSON only, "
                                            f"with the keys {', '.join(schema['properties'])}."},
            ]
    return Understanding(rules.parse(request), "rules", raw, notes, time.perf_counter() - start)
