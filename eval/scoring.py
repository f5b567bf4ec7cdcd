"""Scoring one turn: the checks an :class:`eval.suite.Expect` asks for, against what the agent did.

Each expectation becomes a :class:`Check` (name, expected, measured, ok). The plan is read as the
agent's list of tool calls, ``[{"tool": name, "args": {...}}, ...]``; each call reads in a report as
its tool's own sentence (:func:`agent.toolbox.describe`, via :func:`_describe_call`). Audio is measured on the turn's
input clip and its written output (:func:`measure_output`), band changes in dB relative to the
median band change (:func:`tools.analysis.band_energy_change_db`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval.suite import AudioExpect, Expect, FilterConstraint, Range, hz_band
from tools.analysis import BANDS_HZ, band_energy_change_db

#: The written output is re-read from a 24-bit file; the limiter aims at the ceiling itself.
TRUE_PEAK_TOLERANCE_DB = 0.05


@dataclass
class Check:
    """One scored expectation: what was expected, what was measured, whether it held."""

    name: str
    expected: str
    measured: str
    ok: bool


def fmt_range(r: Range, unit: str = "") -> str:
    """``[+lo, +hi]unit``, e.g. ``[-8, -1] dB``."""
    return f"[{r[0]:+g}, {r[1]:+g}]{unit}"


def _in(value: float | None, r: Range) -> bool:
    return value is not None and math.isfinite(value) and r[0] <= value <= r[1]


def _matches_value(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, list) and wanted and all(isinstance(w, str) for w in wanted):
        return isinstance(actual, str) and actual.casefold() in {w.casefold() for w in wanted}
    if isinstance(wanted, list):
        return isinstance(actual, (int, float)) and not isinstance(actual, bool) and _in(float(actual), tuple(wanted))
    if isinstance(wanted, str):
        return isinstance(actual, str) and actual.casefold() == wanted.casefold()
    return actual == wanted


def _filter_matches(flt: dict, want: FilterConstraint) -> bool:
    if want.type is not None:
        types = [want.type] if isinstance(want.type, str) else want.type
        if str(flt.get("type", "")).casefold() not in {t.casefold() for t in types}:
            return False
    for name in ("frequency_hz", "gain_db", "q"):
        r = getattr(want, name)
        if r is not None and not _in(_num(flt.get(name)), r):
            return False
    return True


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _call_meets(call: dict, constraints: dict, previous_amounts: dict[str, float]) -> tuple[bool, list[str]]:
    """Whether one call meets every (per-call) constraint; the reasons it does not."""
    args = call.get("args") or {}
    why = []
    for name, wanted in constraints.items():
        if name == "max_gain_db":
            continue
        if name == "filter":
            want = FilterConstraint.model_validate(wanted)
            if not any(_filter_matches(f, want) for f in args.get("filters") or []):
                why.append("no filter matches")
        elif name == "amount_ratio":
            prev = previous_amounts.get(str(args.get("descriptor")))
            amount = _num(args.get("amount"))
            if prev is None or amount is None or prev == 0:
                why.append("no previous amount for this descriptor")
            elif not _in(amount / prev, tuple(wanted)):
                why.append(f"amount ratio {amount / prev:.2f}")
        elif name not in args:
            why.append(f"no argument {name}")
        elif not _matches_value(args[name], wanted):
            why.append(f"{name}={args[name]!r}")
    return not why, why


def _describe_call(call: dict) -> str:
    """One tool call for a report: the tool's own sentence (:func:`agent.toolbox.describe`), e.g.
    ``EQ for "less harsh" (amount 0.49, 39 peaking filters)``; a call that is not a valid plan step
    shows its tool and first arguments.

    Args:
        call: ``{"tool": name, "args": {...}}`` as in the agent's plan.
    Returns:
        One line of text.
    """
    from pydantic import ValidationError

    from agent.plan import load_plan
    from agent.toolbox import describe

    try:
        return describe(load_plan([call])[0])
    except ValidationError:
        args = call.get("args") or {}
        return f"{call.get('tool')}(" + ", ".join(f"{k}={v}" for k, v in list(args.items())[:3]) + ")"


def plan_summary(plan: list[dict] | None) -> str:
    """One line per plan: ``device_transfer(...) → equalize(...) → finalize``, or ``(no plan)``."""
    return " → ".join(_describe_call(c) for c in plan) if plan else "(no plan)"


def score_plan(expect: Expect, status: str | None, plan: list[dict], device: str | None,
               previous_amounts: dict[str, float]) -> list[Check]:
    """The checks on what the agent decided: status, tools in / not in the plan, device, arguments.

    Args:
        expect: the turn's expectations.
        status: the turn's status (``processed``, ``question``, ``answer``), None when the agent raised.
        plan: the tool calls, ``[{"tool": ..., "args": {...}}]`` (empty without a plan).
        device: the resolved target device's name, or None.
        previous_amounts: descriptor → ``amount`` of the previous processed turn (for ``amount_ratio``).
    Returns:
        One :class:`Check` per expectation given, in that order.
    """
    checks: list[Check] = []
    if expect.status is not None:
        wanted = [expect.status] if isinstance(expect.status, str) else expect.status
        checks.append(Check("status", " | ".join(wanted), str(status), status in wanted))
    tools = [c.get("tool") for c in plan]
    for tool in expect.tools:
        checks.append(Check(f"tool {tool}", "in plan", ", ".join(tools) or "(no plan)", tool in tools))
    for tool in expect.no_tools:
        checks.append(Check(f"no tool {tool}", "not in plan", ", ".join(tools) or "(no plan)", tool not in tools))
    if expect.device is not None:
        wanted = [expect.device] if isinstance(expect.device, str) else expect.device
        ok = device is not None and device.casefold() in {w.casefold() for w in wanted}
        checks.append(Check("device", " | ".join(wanted), str(device), ok))
    return checks + _score_args(expect, plan, previous_amounts)


def equalize_amounts(plan: list[dict]) -> dict[str, float]:
    """descriptor → ``amount`` of the plan's word-based ``equalize`` calls (what ``amount_ratio`` compares to)."""
    return {str(c["args"]["descriptor"]): float(c["args"]["amount"]) for c in plan
            if c.get("tool") == "equalize" and "descriptor" in (c.get("args") or {})
            and _num(c["args"].get("amount")) is not None}


def _score_args(expect: Expect, plan: list[dict], previous_amounts: dict[str, float]) -> list[Check]:
    checks = []
    for tool, spec in expect.args.items():
        calls = [c for c in plan if c.get("tool") == tool]
        specs = spec if isinstance(spec, list) else [spec]
        for constraints in specs:
            if "max_gain_db" in constraints:
                r = tuple(constraints["max_gain_db"])
                gains = [g for c in calls for f in (c.get("args") or {}).get("filters") or []
                         if (g := _num(f.get("gain_db"))) is not None]
                ok = bool(calls) and all(_in(g, r) for g in gains)
                checks.append(Check(f"args {tool}.max_gain_db", f"every filter gain in {fmt_range(r, ' dB')}",
                                    (f"gains {min(gains):+.1f}…{max(gains):+.1f} dB over {len(calls)} call(s)"
                                     if gains else f"{len(calls)} {tool} call(s), no filters"), ok))
            rest = {k: v for k, v in constraints.items() if k != "max_gain_db"}
            if not rest:
                continue
            results = [_call_meets(c, rest, previous_amounts) for c in calls]
            ok = any(r[0] for r in results)
            if not calls:
                measured = f"no {tool} call"
            else:
                measured = "; ".join(f"{_describe_call(c)}: {', '.join(why) or 'ok'}" for c, (_, why) in zip(calls, results))
            checks.append(Check(f"args {tool}", json.dumps(rest, ensure_ascii=False), measured, ok))
    return checks


def hz_changes(before: np.ndarray, after: np.ndarray, rate: int, keys: list[str]) -> dict[str, float]:
    """Energy change per band given in Hz, dB, against the same median reference as :func:`band_energy_change_db`.

    Args:
        before, after: float arrays (channels, samples) at ``rate``.
        rate: sample rate, Hz.
        keys: ``bands_hz`` keys such as ``"200-315"``.
    Returns:
        key → dB; empty for no keys.
    """
    if not keys:
        return {}
    custom = {k: hz_band(k) for k in keys}
    rel = band_energy_change_db(before, after, rate)
    plain = band_energy_change_db(before, after, rate, bands={**BANDS_HZ, **custom}, relative=False)
    held = [b for b in BANDS_HZ if rel[b] != 0.0 or plain[b] != 0.0]
    offset = plain[held[0]] - rel[held[0]] if held else 0.0
    return {k: plain[k] - offset for k in keys}


def _band_checks(prefix: str, want: dict[str, Range], want_hz: dict[str, Range], measured: dict[str, float]) -> list[Check]:
    checks = []
    for band, r in [*want.items(), *want_hz.items()]:
        value = measured.get(band)
        label = f"{band} ({BANDS_HZ[band][0]:g}–{BANDS_HZ[band][1]:g} Hz)" if band in BANDS_HZ else f"{band} Hz"
        checks.append(Check(f"{prefix} {label}", fmt_range(r, " dB"),
                            "n/a" if value is None else f"{value:+.2f} dB", _in(value, r)))
    return checks


def _rounded(changes: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in changes.items()}


def measure_output(input_audio, out_audio, previous_audio=None) -> dict[str, Any]:
    """What a processed turn did to the audio.

    Args:
        input_audio: the turn's input, a :class:`tools.audio_io.Audio` (samples (channels, samples)).
        out_audio: the written output, same rate.
        previous_audio: the previous processed turn's output (or the input after an undo), or None.
    Returns:
        ``band_change_db`` (band → dB, relative to the median band change), ``lufs_in``,
        ``lufs_out`` (LUFS), ``lufs_change`` (LU; None when either is silent), ``true_peak_dbtp``
        (dBTP) and, with a ``previous_audio`` of the same channel count,
        ``band_change_vs_previous_db``; values rounded to 0.01.
    """
    from tools.loudness import integrated_lufs, true_peak_dbtp

    rate = input_audio.sample_rate
    measured: dict[str, Any] = {"band_change_db": _rounded(band_energy_change_db(input_audio.samples,
                                                                                 out_audio.samples, rate))}
    lufs_in, lufs_out = integrated_lufs(input_audio.samples, rate), integrated_lufs(out_audio.samples, rate)
    measured["lufs_in"], measured["lufs_out"] = round(lufs_in, 2), round(lufs_out, 2)
    measured["lufs_change"] = round(lufs_out - lufs_in, 2) if math.isfinite(lufs_in) and math.isfinite(lufs_out) else None
    measured["true_peak_dbtp"] = round(true_peak_dbtp(out_audio.samples, rate), 2)
    if previous_audio is not None and previous_audio.samples.shape[0] == out_audio.samples.shape[0]:
        measured["band_change_vs_previous_db"] = _rounded(
            band_energy_change_db(previous_audio.samples, out_audio.samples, rate))
    return measured


def score_audio(want: AudioExpect, measured: dict[str, Any], input_audio, out_audio, previous_audio) -> list[Check]:
    """The checks of ``audio:`` on a processed turn (call only with an output to measure).

    Args:
        want: the turn's audio expectations.
        measured: :func:`measure_output`'s dict; ``band_change_hz_db`` and
            ``band_change_vs_previous_hz_db`` are added to it when ``bands_hz`` are asked for.
        input_audio, out_audio, previous_audio: as :func:`measure_output` (``previous_audio`` None:
            a ``vs_previous`` check fails).
    Returns:
        Band checks, then vs-previous, loudness change and true-peak checks, as given.
    """
    rate = input_audio.sample_rate
    hz = hz_changes(input_audio.samples, out_audio.samples, rate, list(want.bands_hz))
    if hz:
        measured["band_change_hz_db"] = _rounded(hz)
    checks = _band_checks("band", want.bands, want.bands_hz, {**measured["band_change_db"], **hz})
    if want.vs_previous is not None:
        if previous_audio is None:
            checks.append(Check("vs previous output", "a previous processed turn", "none", False))
        else:
            vp = dict(measured.get("band_change_vs_previous_db") or {})
            vp_hz = hz_changes(previous_audio.samples, out_audio.samples, rate, list(want.vs_previous.bands_hz))
            if vp_hz:
                measured["band_change_vs_previous_hz_db"] = _rounded(vp_hz)
            checks += _band_checks("vs previous", want.vs_previous.bands, want.vs_previous.bands_hz, {**vp, **vp_hz})
    if want.lufs_change is not None:
        v = measured.get("lufs_change")
        checks.append(Check("loudness change", fmt_range(want.lufs_change, " LU"),
                            "n/a (silence)" if v is None else f"{v:+.2f} LU", _in(v, want.lufs_change)))
    if want.true_peak_dbtp_max is not None:
        tp = measured["true_peak_dbtp"]
        checks.append(Check("true peak", f"≤ {want.true_peak_dbtp_max:+.1f} dBTP", f"{tp:+.2f} dBTP",
                            tp <= want.true_peak_dbtp_max + TRUE_PEAK_TOLERANCE_DB))
    return checks


def score_reply(expect: Expect, reply: str) -> list[Check]:
    """The checks on the reply text: every ``reply_contains`` phrase, one of ``reply_contains_any``,
    none of ``reply_not_contains`` (all case-insensitive)."""
    low = reply.casefold()
    checks = []
    for phrase in expect.reply_contains:
        checks.append(Check(f"reply contains \"{phrase}\"", "present", reply_excerpt(reply), phrase.casefold() in low))
    if expect.reply_contains_any:
        checks.append(Check("reply contains one of " + ", ".join(f'"{p}"' for p in expect.reply_contains_any),
                            "present", reply_excerpt(reply), any(p.casefold() in low for p in expect.reply_contains_any)))
    for phrase in expect.reply_not_contains:
        checks.append(Check(f"reply lacks \"{phrase}\"", "absent", reply_excerpt(reply), phrase.casefold() not in low))
    return checks


def reply_excerpt(reply: str, n: int = 160) -> str:
    """The reply on one line, cut to ``n`` characters (with …), or ``(empty reply)``."""
    text = " ".join(reply.split())
    return (text[:n] + "…") if len(text) > n else (text or "(empty reply)")
