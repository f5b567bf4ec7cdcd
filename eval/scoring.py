"""Scoring one turn: the checks an :class:`eval.suite.Expect` asks for, against what the agent did.

Each expectation becomes a :class:`Check` (name, expected, measured, ok). The plan is read as the
agent's list of tool calls, ``[{"tool": name, "args": {...}}, ...]``; each call reads in a report as
its tool's own sentence (:func:`agent.toolbox.describe`, via :func:`_describe_call`). Audio is measured on the turn's
input clip and its written output (:func:`measure_output`), band changes in dB relative to the
median band change (:func:`tools.analysis.band_energy_change_db`). The numbers in an answer's
reply are checked against truths computed here from the data (:func:`score_facts`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from eval.suite import (AudioExpect, DeviceCountFact, DeviceDeviationFact, DeviceDifferenceFact, Expect, Fact,
                        FilterConstraint, LufsFact, Range, TruePeakFact, WordRegionFact, hz_band)
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


# ------------------------------------------------------------------------------------------ facts

#: How far a number in the reply may be from the truth (absolute values compared); kinds not named
#: here must match exactly (``device_count``: the integer; ``word_region``: the region's label).
FACT_TOLERANCE = {"device_difference": 0.3, "device_deviation": 0.3, "lufs": 0.3, "true_peak": 0.3}
_FACT_UNIT = {"device_difference": " dB", "device_deviation": " dB", "lufs": " LUFS", "true_peak": " dBTP"}

#: A number not glued to a word before it ("XM4", "v1.2" hold none); its sign is ignored.
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)")
#: Letters allowed right after a number (a unit written without a space: "3.1dB", "-14LUFS").
_UNIT_AFTER = re.compile(r"(dB|LU|Hz|kHz|%)", re.IGNORECASE)
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_SPACES = re.compile(r"[\s\u00a0\u2009\u202f]+")
_REGION = re.compile(r"\d+(?:\.\d+)?\s*k?Hz\s*[–—-]\s*\d+(?:\.\d+)?\s*k?Hz", re.IGNORECASE)


def reply_numbers(reply: str, words: bool = False) -> list[float]:
    """The numbers written in a reply, as absolute values, in order.

    A number counts when no letter, digit or point comes right before it and no letter right after it
    other than a unit (dB, LU/LUFS, Hz/kHz, %): "+3.1 dB", "−3.1 dB", "3.1dB", "-14 LUFS" and "(2 kHz)"
    count; the 4 of "XM4", the 2 of "2nd" and the 1000 of "1000XM4" do not. Signs are dropped ("-",
    "−" and "3.1 dB lower" all state 3.1).

    Args:
        reply: the reply text.
        words: also read the number words zero … twenty ("six models" → 6).
    Returns:
        Absolute values as floats (integers too), in the order they appear.
    """
    found: list[tuple[int, float]] = []
    for m in _NUMBER.finditer(reply):
        after = reply[m.end():m.end() + 4]
        if after[:1] == "." and after[1:2].isdigit():
            continue  # "1.2.3": a version, not a number
        if after[:1].isalpha() and not _UNIT_AFTER.match(after):
            continue
        found.append((m.start(), float(m.group(1))))
    if words:
        for m in re.finditer(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", reply, re.IGNORECASE):
            found.append((m.start(), float(_NUMBER_WORDS[m.group(1).lower()])))
    return [v for _, v in sorted(found)]


@lru_cache(maxsize=1)
def _fr_store():
    """The FR store (:meth:`knowledge.fr_store.FRStore.load`), loaded once."""
    from knowledge.fr_store import FRStore

    return FRStore.load()


@lru_cache(maxsize=1)
def _word_eq():
    """The word meanings (:class:`knowledge.words.WordEQ`), loaded once."""
    from knowledge.descriptors import DescriptorPrior
    from knowledge.expert import ExpertVocabulary
    from knowledge.words import WordEQ

    return WordEQ(DescriptorPrior.load(), ExpertVocabulary.load())


def device_band_deviation_db(name: str, band: str) -> float:
    """Mean over ``band`` of the model's response minus its class target, dB (grid points lo ≤ f < hi).

    Raises:
        KeyError: unknown model (the message names the closest ones).
        knowledge.config.DataMissingError: no FR data.
    """
    from knowledge.fr_store import FR_GRID_HZ

    store = _fr_store()
    lo, hi = BANDS_HZ[band]
    inside = (FR_GRID_HZ >= lo) & (FR_GRID_HZ < hi)
    return float(np.mean((store.curve(name).db - store.target_for(name).db)[inside]))


def device_count(brand: str | None, type_: str | None) -> int:
    """How many stored models start with ``brand`` (case-insensitive) and have type ``type_`` (None: any)."""
    store = _fr_store()
    return sum(1 for n in store.devices()
               if (not brand or n.casefold().startswith(brand.strip().casefold()))
               and (type_ is None or store.device_type(n) == type_))


def word_region_label(word: str) -> str:
    """The tone word's main region as the project writes it, e.g. ``"100 Hz–400 Hz"``."""
    return _word_eq().lookup(word).main.label()


def fact_truth(fact: Fact, input_audio=None) -> float | str:
    """The truth of one ``facts`` entry, computed from the data (never from the agent).

    Args:
        fact: the entry.
        input_audio: the turn's input clip (a :class:`tools.audio_io.Audio`), for ``lufs`` and ``true_peak``.
    Returns:
        dB / LUFS / dBTP as a float, the count as an int, or the region label as a string.
    Raises:
        KeyError: an unknown model; ValueError: no input audio for a loudness fact (or a word that
        cannot be looked up); DataMissingError: no data folder.
    """
    if isinstance(fact, DeviceDifferenceFact):
        return device_band_deviation_db(fact.a, fact.band) - device_band_deviation_db(fact.b, fact.band)
    if isinstance(fact, DeviceDeviationFact):
        return device_band_deviation_db(fact.device, fact.band)
    if isinstance(fact, (LufsFact, TruePeakFact)):
        if input_audio is None:
            raise ValueError("no input audio to measure")
        from tools.loudness import integrated_lufs, true_peak_dbtp

        measure = integrated_lufs if isinstance(fact, LufsFact) else true_peak_dbtp
        return float(measure(input_audio.samples, input_audio.sample_rate))
    if isinstance(fact, DeviceCountFact):
        return device_count(fact.brand, fact.type)
    if isinstance(fact, WordRegionFact):
        return word_region_label(fact.word)
    raise TypeError(f"unknown fact {fact!r}")


def _fact_name(fact: Fact) -> str:
    if isinstance(fact, DeviceDifferenceFact):
        return f"fact {fact.band} difference {fact.a} − {fact.b}"
    if isinstance(fact, DeviceDeviationFact):
        return f"fact {fact.band} deviation of {fact.device}"
    if isinstance(fact, DeviceCountFact):
        what = " ".join(w for w in (fact.brand, fact.type) if w) or "all"
        return f"fact device count ({what})"
    if isinstance(fact, WordRegionFact):
        return f"fact region of \"{fact.word}\""
    return {"lufs": "fact integrated loudness", "true_peak": "fact true peak"}[fact.kind]


def score_fact(fact: Fact, reply: str, input_audio=None) -> Check:
    """One ``facts`` entry against the reply: expected is the truth, measured the closest number (or the
    regions) found in the reply. A truth that cannot be computed fails the check and says why."""
    name = _fact_name(fact)
    try:
        truth = fact_truth(fact, input_audio)
    except Exception as exc:  # noqa: BLE001 - an unknown model or missing data fails this check only
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return Check(name, "a truth from the data", f"cannot compute: {msg}", False)
    if isinstance(fact, WordRegionFact):
        text = _SPACES.sub(" ", reply)
        regions = [_SPACES.sub(" ", r) for r in _REGION.findall(text)]
        return Check(name, str(truth), ", ".join(dict.fromkeys(regions)) or "no region in the reply",
                     str(truth).casefold() in text.casefold())
    if isinstance(fact, DeviceCountFact):
        numbers = reply_numbers(reply, words=True)
        ok = float(truth) in numbers
        closest = min(numbers, key=lambda n: abs(n - truth), default=None)
        return Check(name, f"{truth} (exact)", "no number in the reply" if closest is None else f"{closest:g}", ok)
    tol, unit = FACT_TOLERANCE[fact.kind], _FACT_UNIT[fact.kind]
    if not math.isfinite(truth):
        return Check(name, "a finite truth", f"cannot compute: {truth} (silence)", False)
    numbers = reply_numbers(reply)
    closest = min(numbers, key=lambda n: abs(n - abs(truth)), default=None)
    ok = closest is not None and abs(closest - abs(truth)) <= tol + 1e-9
    return Check(name, f"{truth:+.2f}{unit} ±{tol:g} (either sign)",
                 "no number in the reply" if closest is None else f"{closest:g}{unit}", ok)


def score_facts(expect: Expect, reply: str, input_audio=None) -> list[Check]:
    """The ``facts`` checks of a turn, in order (none when the turn has no ``facts``).

    Args:
        expect: the turn's expectations.
        reply: the reply text.
        input_audio: the turn's input clip (:class:`tools.audio_io.Audio`), or None (loudness facts then fail).
    Returns:
        One :class:`Check` per fact.
    """
    return [score_fact(f, reply, input_audio) for f in expect.facts]
