"""Respond: the reply (a short lead of what changed, then the details) and the JSON trace.

Every sentence about a tool comes from that tool's ``explain`` in :mod:`agent.toolbox`; this module
only orders them and adds the measured summary.
"""

from __future__ import annotations

from agent.executor import Execution
from agent.plan import ToolCall, dump_plan
from agent.settings import Settings
from agent.toolbox import DESCRIBE_BANDS, TOOLS, StepView, band_label, describe, describe_changes

#: The trace's format: 2 added ``version``, ``summary``, ``steps``, ``dialogue_notes`` and ``settings``.
TRACE_VERSION = 2
#: The lead names at most this many measured band moves.
LEAD_BANDS = 2


def lead(settings: Settings, measurements: dict) -> str:
    """One short sentence of what changed: ``"Apple AirPods rendering, less harsh: presence (2 kHz–5 kHz) −3.8 dB."``"""
    bands = measurements["band_energy_change_db"]
    moved = sorted((b for b in DESCRIBE_BANDS if abs(bands.get(b, 0.0)) >= 0.5), key=lambda b: -abs(bands[b]))
    change = ", ".join(f"{band_label(b)} {bands[b]:+.1f} dB" for b in moved[:LEAD_BANDS]) or "no band moved by 0.5 dB"
    text = settings.summary()
    return f"{text[0].upper()}{text[1:]}: {change}."


def details(settings: Settings, plan: list[ToolCall], ex: Execution, measurements: dict, checks: list[dict]) -> list[str]:
    """The reasoning lines: one per tool call (its ``explain``), notes, the measured summary, failed checks."""
    lines = []
    for step, call in enumerate(plan):
        view = StepView(settings, ex.facts.get(f"{step}:{call.tool}", {}), [s for s in ex.stages if s.step == step],
                        ex.facts)
        line = TOOLS[call.tool].explain(call.args, view)
        if line:
            lines.append(line)
    lines += settings.notes
    m = measurements
    lines.append(f"Measured on the output (each band against the median band, so level changes cancel): "
                 f"{describe_changes(m['band_energy_change_db'])}; loudness {m['lufs_in']:.1f} LUFS in, "
                 f"{m['lufs_out']:.1f} LUFS out; true peak {m['true_peak_dbtp']:.1f} dBTP.")
    failed = [c for c in checks if not c["ok"]]
    if failed:
        lines.append("Check failed: " + "; ".join(f"{c['name']}: expected {c['expected']}, measured {c['measured']}"
                                                  for c in failed) + ".")
    return lines


def explain(settings: Settings, plan: list[ToolCall], ex: Execution, measurements: dict, checks: list[dict],
            told: list[str] | tuple[str, ...] = ()) -> str:
    """The reply of a processed turn: the lead sentence, what an earlier step found (``told``: a multi-step
    request's ranking), then the details, one per line."""
    return "\n".join([lead(settings, measurements), *told, *details(settings, plan, ex, measurements, checks)])


def _devices(settings: Settings, plan: list[ToolCall]) -> list[dict]:
    devices = [{"role": role, "name": d.name, "type": d.type, "source": "+".join(d.sources), "asked": d.query,
                "via": d.via, "alternatives": d.alternatives}
               for role, d in (("target", settings.target), ("listening", settings.listening)) if d is not None]
    for call in plan:
        if call.tool == "device_transfer" and call.args.reference_kind == "target":
            devices.append({"role": "reference", "name": call.args.reference, "type": "target", "source": "AutoEq target"})
    return devices


def trace(state: dict, reply: str, record_id: int, timings: dict) -> dict:
    """The JSON trace of a processed turn (see README, "The JSON trace"; :data:`TRACE_VERSION`)."""
    turn, u, processed = state["turn"], state["understood"], state["processed"]
    settings: Settings = state["conversation"].settings
    plan = state["plan"]
    return {
        "version": TRACE_VERSION,
        "request": turn.request, "input": turn.input_path, "outputs": processed.outputs,
        "summary": reply.split("\n", 1)[0],
        "intent": u.intent.model_dump(), "intent_path": u.path, "llm": u.llm, "llm_notes": u.notes,
        "dialogue_notes": state.get("notes") or [],
        "plan": dump_plan(plan), "steps": [describe(c) for c in plan],
        "devices": _devices(settings, plan),
        "adjustments": [m.model_dump() for m in settings.adjustments],
        "stems": {name: st.model_dump() for name, st in settings.stems.items()},
        "settings": settings.model_dump(mode="json"),
        "reasoning": reply, "measurements": processed.measurements, "checks": processed.checks,
        "tool_facts": processed.facts,
        "timings_s": {**timings, "total": round(sum(timings.values()), 4)},
        "preference_record_id": record_id, "user": turn.user,
    }


def answer_trace(state: dict, reply: str, asked: list[dict], notes: list[str], raw: list[str], timings: dict) -> dict:
    """The JSON trace of a question turn: each tool call with its validated arguments and what it found, how
    the calls were chosen (closed vocabulary or LLM, its raw replies and any repair), the reply."""
    turn, u = state["turn"], state["understood"]
    return {
        "version": TRACE_VERSION, "kind": "answer",
        "request": turn.request, "input": turn.input_path,
        "summary": reply.split("\n", 1)[0],
        "chosen_by": "rules" if u.calls else "llm", "llm": u.llm, "llm_raw": raw, "notes": notes,
        "calls": asked, "reasoning": reply,
        "timings_s": {**timings, "total": round(sum(timings.values()), 4)}, "user": turn.user,
    }
