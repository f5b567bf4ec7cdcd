"""The web UI's one link to the agent: run a turn through the conversation engine and show its outcome.

Everything that reads a turn's outcome (:class:`agent.engine.TurnOutcome`) and the JSON trace it
writes lives here, so a change of the agent's output touches this module only. Progress messages
come from the graph's one table (:data:`agent.graph.STEPS`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from agent.engine import Engine, TurnOutcome
from agent.planner import plan_filters
from agent.toolbox import describe
from knowledge.fr_store import FR_GRID_HZ
from tools.eq import Filter
from tools.export import write_exports
from webui.session import Session, assistant


def run_turn(engine: Engine, s: Session, text: str, progress: Callable[..., None]) -> TurnOutcome:
    """One turn of the session's conversation, reporting progress step by step.

    Args:
        engine: the conversation engine.
        s: the session (its thread, audio, user and listening device are used).
        text: what the person said.
        progress: ``progress(fraction 0..1, desc=text)`` (a ``gr.Progress``).
    Raises:
        Whatever the agent raises (the caller turns it into a message).
    """
    return engine.turn(s.thread, text, s.source, user=s.user, listening_device=s.listening,
                       progress=lambda fraction, what: progress(fraction, desc=what))


def show(s: Session, out: TurnOutcome) -> bool:
    """Add the agent's answer to the chat (the lead sentence, then the details and the trace folded) and,
    for processed audio, set ``s.result``.

    Returns:
        True when the result panel changes (a new result, or a reset / undo back to the original).
    Raises:
        OSError, ValueError: the turn's trace cannot be read or the exports cannot be written.
    """
    if out.status != "processed":
        picked = out.understood is not None and out.understood.path == "variant" and s.result is not None
        if picked:  # "keep A": the variants are answered
            s.result = {**s.result, "variants": []}
        s.history.append(assistant(out.reply.split("\n", 1)[0] if out.asked else (out.reply or "…")))
        if out.asked and "\n" in out.reply:  # an answer: the numbers and sources folded, then its plot
            s.history.append(assistant(out.reply.split("\n", 1)[1], title="📏 Numbers and sources"))
        if out.outputs.get("plot"):
            s.history.append({"role": "assistant", "content": {"path": out.outputs["plot"]}})
        if out.settings is None and s.result is not None:  # reset / undone to the original
            s.result = None
            return True
        return picked
    trace = json.loads(Path(out.outputs["trace"]).read_text(encoding="utf-8"))
    exports = _exports(s, out, trace)
    downloads = [out.outputs["audio"], str(exports["config"]), str(exports["parametric"]), str(exports["trace"])]
    s.result = {"input": out.input_path, "audio": out.outputs["audio"], "plot": out.outputs["plot"],
                "record_id": out.record_id, "trace_view": trace_view(trace), "downloads": downloads,
                "words": out.settings.summary(),
                "variants": [(o.letter, o.label, o.audio) for o in out.variants.options] if out.variants else [],
                "variants_word": f"{out.variants.direction} {out.variants.word}" if out.variants else "",
                "variants_kind": out.variants.kind if out.variants else ""}
    s.history.append(assistant(f"**{out.summary}**"))
    if out.details:
        s.history.append(assistant(out.details, title="💬 How and why: devices, words, amounts, what was measured"))
    s.history.append(assistant(trace_markdown(out, trace), title=trace_title(trace)))
    return True


def variant_views(result: dict | None) -> tuple:
    """Values for [variant box, variants text, variant B, variant C, "Use C"] of a result (hidden without variants)."""
    options = (result or {}).get("variants") or []
    if not options:
        return gr.update(visible=False), "", None, None, gr.update(visible=False)
    if result.get("variants_kind") == "probes":
        lines = [f"**Which is closer to what you mean by \"{result['variants_word']}\": B or C?** · loudness-matched like "
                 "the SENSE result above (variant A, between them). Your answer teaches SENSE your taste; the next "
                 "request starts from your pick. Keep A if neither."]
    else:
        lines = [f"**Other ways people mean \"{result['variants_word']}\"** · loudness-matched like the SENSE result "
                 "above, which is variant A. Your pick teaches SENSE your taste; the next request starts from it."]
    lines += [f"- **{letter}**: {label}" for letter, label, _ in options]
    c = options[1][2] if len(options) > 1 else None
    return (gr.update(visible=True), "\n".join(lines), options[0][2],
            gr.update(value=c, visible=c is not None), gr.update(visible=c is not None))


def _exports(s: Session, out: TurnOutcome, trace: dict) -> dict[str, Path]:
    """config.txt, ParametricEQ.txt and a copy of the JSON trace with file names for server paths."""
    transfer = out.execution.transfer_stage() if out.execution else None
    header = [f"SENSE EQ for \"{out.request}\" (result #{out.record_id}, {time.strftime('%Y-%m-%d %H:%M')})",
              f"Stages: {'; '.join(trace.get('steps') or [])}.",
              "Loudness matching and the true-peak limiter SENSE applied after the EQ are not in this file."]
    folder = s.folder / "exports" / Path(out.outputs["audio"]).stem
    written = write_exports(folder, plan_filters(out.plan), (FR_GRID_HZ, transfer.curve) if transfer else None,
                            header=header, graphic_label=transfer.label if transfer else None)
    public = {**trace, "input": Path(trace["input"]).name,
              "outputs": {k: Path(v).name for k, v in (trace.get("outputs") or {}).items()}}
    written["trace"] = folder / Path(out.outputs["trace"]).name
    written["trace"].write_text(json.dumps(public, indent=2, ensure_ascii=False), encoding="utf-8")
    return written


def trace_view(trace: dict) -> dict:
    """The trace for the page: plan, checks, measurements … with file names instead of server paths."""
    plan = []
    for call in trace["plan"]:
        args = dict(call["args"])
        if "filters" in args:
            args["filters"] = [Filter(**f).describe() for f in args["filters"]]
        plan.append({"tool": call["tool"], "args": args})
    view = {k: trace.get(k) for k in ("request", "summary", "intent", "intent_path", "llm", "devices", "adjustments",
                                      "checks", "measurements", "timings_s", "preference_record_id")}
    view["plan"] = plan
    view["files"] = {k: Path(v).name for k, v in (trace.get("outputs") or {}).items()}
    return view


def trace_title(trace: dict) -> str:
    """The title of the chat's collapsible trace message: steps, checks passed, total time."""
    checks = trace.get("checks") or []
    passed = sum(1 for c in checks if c["ok"])
    steps = " → ".join(c["tool"] for c in trace["plan"])
    return f"🔧 Tool trace: {steps} · {passed}/{len(checks)} checks passed · {trace['timings_s'].get('total', 0):.1f} s"


def trace_markdown(out: TurnOutcome, trace: dict) -> str:
    """The trace as chat Markdown: numbered plan (each tool's own sentence), checks, measured bands, timings."""
    lines = ["**Plan**"] + [f"{i}. `{call.tool}` {describe(call)}" for i, call in enumerate(out.plan, 1)]
    lines.append("\n**Checks**")
    for c in out.checks:
        lines.append(f"- {'✅' if c['ok'] else '❌'} {c['name']}: expected {c['expected']}, measured {c['measured']}")
    m = out.measurements
    bands = ", ".join(f"{k.replace('_', ' ')} {v:+.1f} dB" for k, v in (m.get("band_energy_change_db") or {}).items())
    lines.append(f"\n**Measured** {bands}; {m.get('lufs_in', float('nan')):.1f} → {m.get('lufs_out', float('nan')):.1f} LUFS; "
                 f"true peak {m.get('true_peak_dbtp', float('nan')):.1f} dBTP")
    timings = trace.get("timings_s") or {}
    lines.append("\n**Time** " + " · ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    lines.append(f"\nPlanner: {trace.get('intent_path')}{' (' + trace['llm'] + ')' if trace.get('llm') else ''}. "
                 "The full trace is in *Tool trace* on the right and in the downloads.")
    return "\n".join(lines)
