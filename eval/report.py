"""The evaluation report: summary numbers, ``report.json``, ``report.md`` and ``report.png``.

Pass rates are reported per turn, per conversation and per category, with latency p50/p95 per
turn. A turn passes when all its checks pass; a conversation when all its turns pass.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eval.scoring import Check, reply_excerpt

if TYPE_CHECKING:
    from eval.runner import ConversationResult, TurnResult

#: Exit codes of :func:`eval.harness.eval_command`.
EXIT_OK, EXIT_BELOW_MIN_PASS, EXIT_BAD_SUITE = 0, 1, 2


@dataclass
class Report:
    """What an evaluation run measured; ``summary`` holds the pass rates and latencies."""

    conversations: list[ConversationResult]
    summary: dict
    report_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def turn_pass_rate(self) -> float:
        """Share of turns that passed, 0..1."""
        return self.summary["turns"]["pass_rate"]

    def exit_code(self, min_pass: float) -> int:
        """0 when the turn pass rate reaches ``min_pass``, else 1."""
        return EXIT_OK if self.turn_pass_rate >= min_pass else EXIT_BELOW_MIN_PASS

    def failed_checks(self) -> list[tuple[ConversationResult, TurnResult, Check]]:
        """Every failed check with its conversation and turn, in run order."""
        return [(c, t, k) for c in self.conversations for t in c.turns for k in t.checks if not k.ok]

    def to_dict(self) -> dict:
        """``{"summary": ..., "conversations": [...]}`` as ``report.json`` holds it (``passed`` added)."""
        convs = []
        for c in self.conversations:
            d = {k: v for k, v in asdict(c).items() if k != "turns"}
            d["passed"] = c.passed
            d["turns"] = [{**asdict(t), "passed": t.passed} for t in c.turns]
            convs.append(d)
        return {"summary": self.summary, "conversations": convs}


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------

def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _rate(passed: int, total: int) -> float:
    return passed / total if total else 0.0


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _categories(results: list[ConversationResult]) -> dict[str, dict]:
    """category → turns, turns_passed, conversations, conversations_passed and both pass rates (sorted)."""
    cats: dict[str, dict] = defaultdict(lambda: {"turns": 0, "turns_passed": 0, "conversations": 0,
                                                 "conversations_passed": 0})
    for c in results:
        cat = cats[c.category]
        cat["conversations"] += 1
        cat["conversations_passed"] += int(c.passed)
        cat["turns"] += len(c.turns)
        cat["turns_passed"] += sum(t.passed for t in c.turns)
    for cat in cats.values():
        cat["turn_pass_rate"] = round(_rate(cat["turns_passed"], cat["turns"]), 4)
        cat["conversation_pass_rate"] = round(_rate(cat["conversations_passed"], cat["conversations"]), 4)
    return dict(sorted(cats.items()))


def _latency(turns: list[TurnResult]) -> dict[str, float | None]:
    """Turn, processed-turn and understanding latency p50/p95 (and the turn max), s, rounded to ms."""
    seconds = [t.seconds for t in turns if t.error is None or t.seconds > 0]
    understand = [t.timings_s["understand"] for t in turns if "understand" in (t.timings_s or {})]
    processed = [t.seconds for t in turns if t.status == "processed"]
    return {
        "turn_p50": _r(_percentile(seconds, 50)), "turn_p95": _r(_percentile(seconds, 95)),
        "turn_max": _r(max(seconds) if seconds else None),
        "processed_turn_p50": _r(_percentile(processed, 50)), "processed_turn_p95": _r(_percentile(processed, 95)),
        "understand_p50": _r(_percentile(understand, 50)), "understand_p95": _r(_percentile(understand, 95)),
    }


def summary(results: list[ConversationResult], runtime, *, min_pass: float, fast_only: bool,
            max_audio_s: float | None, wall_s: float) -> dict:
    """The report's summary: planner, pass rates (turns, conversations, checks, per category), latency.

    Args:
        results: every conversation's results.
        runtime: the runtime that ran them (its ``llm.name`` names the planner).
        min_pass: the turn pass rate needed; ``passed`` says whether it was reached.
        fast_only, max_audio_s: how the run was limited (stated in the report).
        wall_s: the run's wall time, s.
    Returns:
        A JSON-ready dict (rates 0..1 rounded to 4 places, latencies in s).
    """
    turns = [t for c in results for t in c.turns]
    paths: dict[str, int] = defaultdict(int)
    path_passed: dict[str, int] = defaultdict(int)
    for t in turns:
        if t.intent_path:
            paths[t.intent_path] += 1
            path_passed[t.intent_path] += int(t.passed)
    checks = [k for t in turns for k in t.checks]
    llm = getattr(getattr(runtime, "llm", None), "name", None)
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    turn_rate = _rate(sum(t.passed for t in turns), len(turns))
    return {
        "llm": llm or "none (rule-based parser)",
        "fast_only": fast_only,
        "max_audio_s": max_audio_s,
        "min_pass": min_pass,
        "passed": turn_rate >= min_pass,
        "turns": {"total": len(turns), "passed": sum(t.passed for t in turns), "pass_rate": round(turn_rate, 4)},
        "conversations": {"total": len(results), "passed": sum(c.passed for c in results),
                          "pass_rate": round(_rate(sum(c.passed for c in results), len(results)), 4)},
        "checks": {"total": len(checks), "passed": sum(k.ok for k in checks)},
        "categories": _categories(results),
        "latency_s": _latency(turns),
        "intent_paths": dict(paths),
        "intent_path_pass_rates": {k: round(_rate(path_passed[k], n), 4) for k, n in paths.items()},
        "errors": sum(t.error is not None for t in turns),
        "wall_s": round(wall_s, 1),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": load,  # other work on the machine inflates the latencies
    }


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def write_report(report: Report) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.png`` into ``report.report_dir`` (atomically).

    Returns:
        ``{"json": path, "md": path, "png": path}`` (also stored in ``report.files``).
    """
    from tools.atomic import replace_file

    d = report.report_dir
    text_json = json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=_json_default)
    files = {
        "json": replace_file(d / "report.json", lambda p: p.write_text(text_json, encoding="utf-8")),
        "md": replace_file(d / "report.md", lambda p: p.write_text(render_markdown(report), encoding="utf-8")),
        "png": replace_file(d / "report.png", lambda p: _plot(report, p)),
    }
    report.files = files
    return files


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def sec(v: float | None) -> str:
    """A latency for a person: ``1.23 s``, or ``n/a``."""
    return "n/a" if v is None else f"{v:.2f} s"


def render_markdown(report: Report) -> str:
    """The human-readable report: summary, per-category rates, latency, every failed check."""
    lines = _summary_lines(report.summary)
    lines += ["", "## Conversations", "", "| conversation | category | turns passed | latency per turn (s) |",
              "|---|---|---|---|"]
    for c in report.conversations:
        lat = ", ".join(f"{t.seconds:.1f}" for t in c.turns)
        mark = "✅" if c.passed else "❌"
        lines.append(f"| {mark} {c.id} | {c.category} | {sum(t.passed for t in c.turns)}/{len(c.turns)} | {lat} |")
    failed = [(c, t) for c in report.conversations for t in c.turns if not t.passed]
    lines += ["", f"## Failed turns ({len(failed)})", ""]
    if not failed:
        lines.append("None.")
    for c, t in failed:
        lines += _failed_turn_lines(c, t)
    return "\n".join(lines) + "\n"


def _summary_lines(s: dict) -> list[str]:
    """The report's head: overall rates, latency, intent paths, then the per-category table."""
    lines = [
        "# SENSE scripted-conversation evaluation", "",
        f"- planner: {s['llm']}" + (" (fast slice)" if s["fast_only"] else "")
        + (f"; audio capped at {s['max_audio_s']:g} s" if s["max_audio_s"] else ""),
        f"- **turns passed: {s['turns']['passed']}/{s['turns']['total']} ({100 * s['turns']['pass_rate']:.1f} %)** — "
        f"needed {100 * s['min_pass']:.0f} %: **{'PASS' if s['passed'] else 'FAIL'}**",
        f"- conversations passed: {s['conversations']['passed']}/{s['conversations']['total']} "
        f"({100 * s['conversations']['pass_rate']:.1f} %); checks passed: {s['checks']['passed']}/{s['checks']['total']}",
        f"- latency per turn: p50 {sec(s['latency_s']['turn_p50'])}, p95 {sec(s['latency_s']['turn_p95'])}, "
        f"max {sec(s['latency_s']['turn_max'])}; processed turns p50 {sec(s['latency_s']['processed_turn_p50'])}, "
        f"p95 {sec(s['latency_s']['processed_turn_p95'])}; understanding p50 {sec(s['latency_s']['understand_p50'])}, "
        f"p95 {sec(s['latency_s']['understand_p95'])}",
        "- intent paths (turns, pass rate): " + (", ".join(
            f"{k} {v} ({100 * s.get('intent_path_pass_rates', {}).get(k, 0):.0f} %)" for k, v in s["intent_paths"].items())
            or "none") + "; "
        f"agent errors: {s['errors']}; wall time {s['wall_s']:.0f} s; finished {s['finished_at']} on "
        f"{s['cpu_count']} cores, load average {s['load_average_at_end']} (other work inflates latency)", "",
        "## Per category", "",
        "| category | turns passed | turn pass rate | conversations passed | conversation pass rate |",
        "|---|---|---|---|---|",
    ]
    for name, c in s["categories"].items():
        lines.append(f"| {name} | {c['turns_passed']}/{c['turns']} | {100 * c['turn_pass_rate']:.0f} % | "
                     f"{c['conversations_passed']}/{c['conversations']} | {100 * c['conversation_pass_rate']:.0f} % |")
    return lines


def _failed_turn_lines(c: ConversationResult, t: TurnResult) -> list[str]:
    """One failed turn: what was said, status, intent, plan, device, measurements, reply, failed checks."""
    lines = [f"### {c.id} — turn {t.index}: \"{_md(t.say)}\"", "",
             f"- category {c.category}; file `{c.source}`; audio `{c.audio}`",
             f"- status **{t.status}**, {t.seconds:.2f} s; intent ({t.intent_path}): "
             f"`{json.dumps(t.intent, ensure_ascii=False) if t.intent else None}`",
             f"- plan: {_md(t.plan_summary)}",
             f"- device: {t.device}"]
    if t.measured:
        bands = t.measured.get("band_change_db") or {}
        lines.append("- measured: " + ", ".join(f"{k} {v:+.1f}" for k, v in bands.items())
                     + f" dB; ΔLUFS {t.measured.get('lufs_change')}; true peak {t.measured.get('true_peak_dbtp')} dBTP")
        if t.measured.get("band_change_vs_previous_db"):
            lines.append("- vs previous output: " + ", ".join(
                f"{k} {v:+.1f}" for k, v in t.measured["band_change_vs_previous_db"].items()) + " dB")
    lines.append(f"- reply: {_md(reply_excerpt(t.reply, 300))}")
    if t.trace:
        lines.append(f"- trace: `{t.trace}`")
    lines += ["", "| check | expected | measured |", "|---|---|---|"]
    for k in t.checks:
        if not k.ok:
            lines.append(f"| ❌ {_md(k.name)} | {_md(k.expected)} | {_md(k.measured)} |")
    lines.append("")
    return lines


def _plot(report: Report, path: Path) -> None:
    """report.png: pass rate per category (turns and conversations) beside the turn-latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = report.summary["categories"]
    names = list(cats)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.4, 1]})
    y = np.arange(len(names))
    rates = [100 * cats[n]["turn_pass_rate"] for n in names]
    conv_rates = [100 * cats[n]["conversation_pass_rate"] for n in names]
    ax1.barh(y - 0.2, rates, height=0.4, label="turns", color="#3b7dd8")
    ax1.barh(y + 0.2, conv_rates, height=0.4, label="conversations", color="#a6c8f0")
    for yi, r, n in zip(y, rates, names):
        ax1.text(r + 1, yi - 0.2, f"{r:.0f}% ({cats[n]['turns_passed']}/{cats[n]['turns']})", va="center", fontsize=8)
    ax1.axvline(100 * report.summary["min_pass"], color="#c0392b", ls="--", lw=1, label="min pass")
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    ax1.set_xlim(0, 122)
    ax1.set_xticks(range(0, 101, 20))
    ax1.set_xlabel("pass rate, %")
    ax1.set_title(f"Pass rate per category (turns {100 * report.turn_pass_rate:.0f} % overall)")
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    seconds = [t.seconds for c in report.conversations for t in c.turns]
    if seconds:
        ax2.hist(seconds, bins=min(30, max(5, len(seconds) // 3)), color="#5aa469")
        lat = report.summary["latency_s"]
        for q, style in (("turn_p50", "-"), ("turn_p95", "--")):
            if lat[q] is not None:
                ax2.axvline(lat[q], color="k", ls=style, lw=1, label=f"{q[5:]} {lat[q]:.2f} s")
        ax2.legend(fontsize=8)
    ax2.set_xlabel("turn latency, s")
    ax2.set_ylabel("turns")
    ax2.set_title(f"Latency per turn — planner: {report.summary['llm']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def write_markdown_section(path: Path, name: str, markdown: str) -> None:
    """Put ``markdown`` between the ``<!-- NAME:begin -->`` / ``<!-- NAME:end -->`` markers of ``path``
    (appended with the markers when absent; the file is created when missing), atomically."""
    import re

    from tools.atomic import replace_file

    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{markdown.rstrip(chr(10))}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
