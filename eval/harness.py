"""Scripted-conversation evaluation: YAML conversations run turn by turn against the real agent.

Each conversation is played like a person would: a fresh LangGraph thread and a fresh user, the
same audio every turn, the requests in order. Every turn is timed and scored against what a
person would expect (status, plan, resolved device, plan arguments, measured audio, reply text);
a report says what passed (``report.json``, ``report.md``, ``report.png``).

Conversation files (``eval/conversations/*.yaml``)
-------------------------------------------------
A file holds a list of conversations (or ``{conversations: [...]}``)::

    - id: airpods-less-harsh            # unique over the whole suite
      category: combinations            # free text; the report groups pass rates by it
      audio: Kevin_MacLeod_-_Vibe_Ace.hq.ogg   # relative to SENSE_DATA_DIR/music
      clip: [10, 15]                    # optional [start_s, duration_s]: every turn processes this excerpt
      user: alice                       # optional; a unique suffix makes each run's user fresh
      profile: {owns: ["Apple AirPods Pro (2nd generation)"]}   # optional: registered before turn 1
      listening_device: Sony WH-1000XM4 # optional: passed with every turn (like --listening-device)
      fast: true                        # optional: part of the fast slice (``make test``)
      note: why this conversation exists   # optional, free text
      turns:
        - say: make this sound like it's on my AirPods, less harsh
          expect:
            status: processed           # processed | question | answer, or a list of accepted ones
            tools: [device_transfer, equalize]   # must all appear in the plan
            no_tools: [separate]        # must not appear (a turn without a plan has no tools)
            device: [Apple AirPods]     # resolved target device (from the turn's settings), one of
            args:                       # plan arguments, per tool (see "args" below)
              equalize: {descriptor: [harsh], direction: less}
            audio:                      # measured on the written output (see "audio" below)
              presence: [-8, -1]
              lufs_change: [-0.5, 0.5]
              true_peak_dbtp_max: -1.0
            reply_contains: ["AirPods"]           # every phrase, case-insensitive
            reply_contains_any: ["harsh", "2 kHz"]  # at least one phrase
            reply_not_contains: ["error"]         # none of them

``args``: ``{tool: constraints}`` or ``{tool: [constraints, ...]}``. With a list, every entry must
be met by some call of that tool (e.g. two ``equalize`` calls for two words). Within one
constraints mapping, every key must hold for the SAME call:

- ``name: value`` — the call's argument equals the value (strings case-insensitive);
- ``name: [a, b, ...]`` (strings) — the argument is one of them;
- ``name: [lo, hi]`` (two numbers) — the numeric argument lies in the closed range;
- ``filter: {type: peaking | [..], frequency_hz: [lo, hi], gain_db: [lo, hi], q: [lo, hi]}`` —
  some filter in the call's ``filters`` meets all given fields;
- ``amount_ratio: [lo, hi]`` — the call's ``amount`` divided by the amount the previous processed
  turn used for the same descriptor (for "more" / "too much").

One key is checked over ALL calls of the tool instead: ``max_gain_db: [lo, hi]`` — every
filter's ``gain_db`` in every call lies in the range (the ±12 dB hearing-safety cap).

``audio`` (needs a processed turn; a turn without output fails these checks):

- a band of :data:`tools.analysis.BANDS_HZ` (``sub_bass, bass, low_mid, mud, mid, presence,
  brilliance, air``): ``[min, max]`` dB, the band's energy change from the turn's input clip to
  its output, relative to the median band change
  (:func:`tools.analysis.band_energy_change_db`; loudness matching does not hide an EQ move);
- ``bands_hz: {"200-315": [min, max]}`` — the same for any band given in Hz (same reference);
- ``vs_previous: {presence: [min, max], ...}`` — band changes from the previous processed turn's
  output to this one ("a bit more" must move further, "undo" must move back); ``bands_hz`` keys
  are allowed inside as well;
- ``lufs_change: [min, max]`` — integrated loudness (BS.1770) of the output minus the input, LU;
- ``true_peak_dbtp_max: -1.0`` — true peak of the written output, dBTP (read back from the
  24-bit file, so :data:`TRUE_PEAK_TOLERANCE_DB` is allowed on top).

A turn passes when all its checks pass; a conversation when all its turns pass. Pass rates are
reported per turn, per conversation and per category, with latency p50/p95 per turn.

Use
---
``eval_command(paths, llm_url, model, report_dir, min_pass, fast)`` (what ``sense eval`` calls)
loads the runtime with a preference store inside ``report_dir`` and returns an exit code;
``run_conversations(paths, runtime=..., report_dir=...)`` runs with an already loaded runtime;
``python -m eval.harness [FILES] [--fast] [--no-llm] [--report-dir DIR]`` from a shell.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import typing
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tools.analysis import BANDS_HZ, band_energy_change_db

CONVERSATIONS_DIR = Path(__file__).resolve().parent / "conversations"
DEFAULT_REPORT_DIR = Path("out/eval")
#: The written output is re-read from a 24-bit file; the limiter aims at the ceiling itself.
TRUE_PEAK_TOLERANCE_DB = 0.05
#: Exit codes of :func:`eval_command`.
EXIT_OK, EXIT_BELOW_MIN_PASS, EXIT_BAD_SUITE = 0, 1, 2
_TRACES_MARKER = ".sense-eval-traces"

Status = Literal["processed", "question", "answer"]


class SuiteError(ValueError):
    """A conversation file is missing, not YAML, or does not follow the schema (message names file and field)."""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

def _known_tools() -> tuple[str, ...]:
    """The tool names the agent's plans can hold (from ``agent.schemas.ToolCall``)."""
    try:
        from agent.schemas import ToolCall

        names = typing.get_args(ToolCall.model_fields["tool"].annotation)
        return tuple(names) if names else ()
    except Exception:  # noqa: BLE001 - the agent is optional for validating files
        return ()


def _check_range(value: Any, what: str) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{what} must be [min, max] (two numbers), got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"{what}: min {lo:g} > max {hi:g}")
    return lo, hi


Range = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Profile(_Strict):
    """Devices the conversation's user owns ("my AirPods" prefers these)."""

    owns: list[str] = Field(default_factory=list)


class FilterConstraint(_Strict):
    """Some filter of an ``equalize`` call must meet every given field."""

    type: str | list[str] | None = None
    frequency_hz: Range | None = None
    gain_db: Range | None = None
    q: Range | None = None

    @field_validator("frequency_hz", "gain_db", "q", mode="before")
    @classmethod
    def _range(cls, v, info):
        return None if v is None else _check_range(v, info.field_name)


def _hz_band(key: str) -> tuple[float, float]:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*", str(key))
    if not m or float(m.group(1)) >= float(m.group(2)):
        raise ValueError(f"bands_hz key must look like \"200-315\" (low-high Hz, low < high), got {key!r}")
    return float(m.group(1)), float(m.group(2))


def _band_ranges(data: dict, where: str) -> dict[str, Range]:
    out = {}
    for key, value in data.items():
        if key not in BANDS_HZ:
            raise ValueError(f"{where}: unknown band {key!r}; bands are {', '.join(BANDS_HZ)} (or use bands_hz)")
        out[key] = _check_range(value, f"{where}.{key}")
    return out


class BandChanges(BaseModel):
    """Band changes in dB: named bands of ``BANDS_HZ`` plus ``bands_hz`` ranges."""

    model_config = ConfigDict(extra="forbid")
    bands: dict[str, Range] = Field(default_factory=dict)
    bands_hz: dict[str, Range] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data):
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping of band → [min, max], got {data!r}")
        data = dict(data)
        hz = data.pop("bands_hz", None) or {}
        if not isinstance(hz, dict):
            raise ValueError("bands_hz must be a mapping like {\"200-315\": [-4, -1]}")
        for k, v in hz.items():
            _hz_band(k)
            _check_range(v, f"bands_hz.{k}")
        return {"bands": _band_ranges(data, "band"), "bands_hz": hz}


class AudioExpect(BaseModel):
    """Measured checks on a processed turn's output (see module doc)."""

    model_config = ConfigDict(extra="forbid")
    bands: dict[str, Range] = Field(default_factory=dict)
    bands_hz: dict[str, Range] = Field(default_factory=dict)
    vs_previous: BandChanges | None = None
    lufs_change: Range | None = None
    true_peak_dbtp_max: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data):
        if not isinstance(data, dict):
            raise ValueError(f"audio must be a mapping, got {data!r}")
        data = dict(data)
        fixed = {k: data.pop(k) for k in ("vs_previous", "lufs_change", "true_peak_dbtp_max") if k in data}
        if "lufs_change" in fixed:
            fixed["lufs_change"] = _check_range(fixed["lufs_change"], "lufs_change")
        split = BandChanges.model_validate(data)
        return {**fixed, "bands": split.bands, "bands_hz": split.bands_hz}

    def empty(self) -> bool:
        return not (self.bands or self.bands_hz or self.vs_previous or self.lufs_change
                    or self.true_peak_dbtp_max is not None)


def _check_arg_constraints(tool: str, constraints: dict) -> dict:
    if not isinstance(constraints, dict) or not constraints:
        raise ValueError(f"args.{tool}: expected a non-empty mapping of argument → constraint, got {constraints!r}")
    for name, value in constraints.items():
        where = f"args.{tool}.{name}"
        if name == "filter":
            try:
                FilterConstraint.model_validate(value)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"{where}: {problems} (filter fields: type, frequency_hz, gain_db, q)") from None
        elif name in ("max_gain_db", "amount_ratio"):
            _check_range(value, where)
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"{where}: empty list")
            if all(isinstance(v, str) for v in value):
                continue
            _check_range(value, where)
        elif not isinstance(value, (str, int, float, bool)) and value is not None:
            raise ValueError(f"{where}: expected a value, a list of values or [min, max], got {value!r}")
    return constraints


class Expect(_Strict):
    """What a person expects from one turn. Every field is optional; at least one must be given."""

    status: Status | list[Status] | None = None
    tools: list[str] = Field(default_factory=list)
    no_tools: list[str] = Field(default_factory=list)
    device: str | list[str] | None = None
    args: dict[str, Union[dict[str, Any], list[dict[str, Any]]]] = Field(default_factory=dict)
    audio: AudioExpect | None = None
    reply_contains: str | list[str] = Field(default_factory=list)
    reply_contains_any: list[str] = Field(default_factory=list)
    reply_not_contains: str | list[str] = Field(default_factory=list)

    @field_validator("tools", "no_tools")
    @classmethod
    def _tools(cls, v):
        known = _known_tools()
        bad = [t for t in v if known and t not in known]
        if bad:
            raise ValueError(f"unknown tool(s) {bad}; the agent's tools are {list(known)}")
        return v

    @field_validator("args")
    @classmethod
    def _args(cls, v):
        known = _known_tools()
        for tool, constraints in v.items():
            if known and tool not in known:
                raise ValueError(f"unknown tool {tool!r} in args; the agent's tools are {list(known)}")
            for c in (constraints if isinstance(constraints, list) else [constraints]):
                _check_arg_constraints(tool, c)
        return v

    @field_validator("reply_contains", "reply_not_contains")
    @classmethod
    def _as_list(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _not_empty(self):
        if (self.status is None and not self.tools and not self.no_tools and self.device is None and not self.args
                and (self.audio is None or self.audio.empty()) and not self.reply_contains
                and not self.reply_contains_any and not self.reply_not_contains):
            raise ValueError("expect has no checks")
        return self


class Turn(_Strict):
    say: str = Field(min_length=1)
    expect: Expect


class Conversation(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    category: str = Field(min_length=1)
    audio: str
    clip: Range | None = None
    user: str | None = None
    profile: Profile | None = None
    listening_device: str | None = None
    fast: bool = False
    note: str | None = None
    turns: list[Turn] = Field(min_length=1)
    source: str = ""  # file it came from (set by the loader)

    @field_validator("clip", mode="before")
    @classmethod
    def _clip(cls, v):
        if v is None:
            return None
        if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            raise ValueError(f"clip must be [start_s, duration_s], got {v!r}")
        if v[0] < 0 or v[1] <= 0:
            raise ValueError(f"clip needs start_s >= 0 and duration_s > 0, got {v!r}")
        return float(v[0]), float(v[1])


def _format_validation_error(path: Path, exc: ValidationError, prefix: str) -> str:
    lines: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not re.match(r"^(function-|union\[|list\[|dict\[|literal\[|"
                                                                    r"nullable\[|tuple\[|str$|float$|int$)", str(p)))
        loc = re.sub(r"\bturns\.(\d+)", lambda m: f"turn {int(m.group(1)) + 1}", loc).replace(".expect", ", expect")
        msg = " ".join(str(err["msg"]).split())
        line = f"{path}: {prefix}{', ' + loc if loc else ''}: {msg}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def load_conversations(paths: list[str | Path] | None = None, *, fast_only: bool = False,
                       check_audio: bool = False) -> list[Conversation]:
    """Read and validate conversation files.

    Args:
        paths: YAML files or folders of them (default: ``eval/conversations``).
        fast_only: keep only conversations marked ``fast: true``.
        check_audio: also check each conversation's audio file exists under ``SENSE_DATA_DIR/music``.
    Returns:
        The conversations in file order (files sorted by name within a folder).
    Raises:
        SuiteError: a file is missing or unreadable, a field breaks the schema, an ``id`` repeats,
            or (``check_audio``) an audio file is missing. The message names the file and field.
    """
    files: list[Path] = []
    for p in ([CONVERSATIONS_DIR] if not paths else [Path(p) for p in paths]):
        if p.is_dir():
            files += sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml"))
        elif p.is_file():
            files.append(p)
        else:
            raise SuiteError(f"{p}: no such conversation file or folder")
    if not files:
        raise SuiteError(f"no conversation files (*.yaml) in {', '.join(map(str, paths or [CONVERSATIONS_DIR]))}")
    conversations: list[Conversation] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SuiteError(f"{path}: cannot read YAML: {exc}") from exc
        if isinstance(data, dict) and "conversations" in data:
            data = data["conversations"]
        if not isinstance(data, list):
            raise SuiteError(f"{path}: expected a list of conversations (or {{conversations: [...]}}), "
                             f"got {type(data).__name__}")
        for i, item in enumerate(data):
            label = f"conversation {item.get('id', i) if isinstance(item, dict) else i}"
            try:
                conv = Conversation.model_validate({**item, "source": str(path)} if isinstance(item, dict) else item)
            except ValidationError as exc:
                raise SuiteError(_format_validation_error(path, exc, label)) from None
            if conv.id in seen:
                raise SuiteError(f"{path}: conversation id {conv.id!r} repeats (first in {seen[conv.id]})")
            seen[conv.id] = path
            conversations.append(conv)
    if check_audio:
        music = _music_dir()
        for conv in conversations:
            if not (music / conv.audio).is_file():
                raise SuiteError(f"{conv.source}: conversation {conv.id}.audio: no file {music / conv.audio}")
    if fast_only:
        conversations = [c for c in conversations if c.fast]
    return conversations


def _music_dir() -> Path:
    from knowledge.config import data_dir

    return data_dir() / "music"


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass
class Check:
    """One scored expectation: what was expected, what was measured, whether it held."""

    name: str
    expected: str
    measured: str
    ok: bool


@dataclass
class TurnResult:
    index: int
    say: str
    status: str | None
    reply: str
    seconds: float
    checks: list[Check]
    plan_summary: str
    device: str | None
    intent: dict | None
    intent_path: str | None
    measured: dict
    timings_s: dict
    trace: str | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)


@dataclass
class ConversationResult:
    id: str
    category: str
    source: str
    audio: str
    fast: bool
    turns: list[TurnResult]

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.turns)


@dataclass
class Report:
    """What an evaluation run measured; ``summary`` holds the pass rates and latencies."""

    conversations: list[ConversationResult]
    summary: dict
    report_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def turn_pass_rate(self) -> float:
        return self.summary["turns"]["pass_rate"]

    def exit_code(self, min_pass: float) -> int:
        """0 when the turn pass rate reaches ``min_pass``, else 1."""
        return EXIT_OK if self.turn_pass_rate >= min_pass else EXIT_BELOW_MIN_PASS

    def failed_checks(self) -> list[tuple[ConversationResult, TurnResult, Check]]:
        return [(c, t, k) for c in self.conversations for t in c.turns for k in t.checks if not k.ok]

    def to_dict(self) -> dict:
        convs = []
        for c in self.conversations:
            d = {k: v for k, v in asdict(c).items() if k != "turns"}
            d["passed"] = c.passed
            d["turns"] = [{**asdict(t), "passed": t.passed} for t in c.turns]
            convs.append(d)
        return {"summary": self.summary, "conversations": convs}


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------

def _fmt_range(r: Range, unit: str = "") -> str:
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
    args = call.get("args") or {}
    tool = call.get("tool")
    if tool == "device_transfer":
        return f"device_transfer({args.get('target')} vs {args.get('reference_kind')} {args.get('reference')})"
    if tool == "equalize":
        filters = args.get("filters") or []
        gains = [f.get("gain_db", 0.0) for f in filters]
        span = f", gains {min(gains):+.1f}…{max(gains):+.1f} dB" if gains else ""
        if "descriptor" in args:
            head = f"{args.get('direction')} {args.get('descriptor')} ×{args.get('amount')}"
        elif args.get("band_edits"):
            head = ", ".join(f"{e.get('label')} {e.get('gain_db'):+g} dB" + (" (capped)" if e.get("capped") else "")
                             for e in args["band_edits"])
        else:
            head = ", ".join(f"{f.get('type')} {f.get('frequency_hz'):g} Hz {f.get('gain_db'):+g} dB"
                             for f in filters[:4])
        return f"equalize({head}; {len(filters)} filters{span})"
    if tool == "finalize":
        return "finalize"
    keys = ", ".join(f"{k}={v}" for k, v in list(args.items())[:3])
    return f"{tool}({keys})"


def plan_summary(plan: list[dict] | None) -> str:
    """One line per plan: ``device_transfer(...) → equalize(...) → finalize``, or ``(no plan)``."""
    return " → ".join(_describe_call(c) for c in plan) if plan else "(no plan)"


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
                checks.append(Check(f"args {tool}.max_gain_db", f"every filter gain in {_fmt_range(r, ' dB')}",
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


def _hz_changes(before: np.ndarray, after: np.ndarray, rate: int, keys: list[str]) -> dict[str, float]:
    """Change per Hz band, with the same median reference as :func:`band_energy_change_db`."""
    if not keys:
        return {}
    custom = {k: _hz_band(k) for k in keys}
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
        checks.append(Check(f"{prefix} {label}", _fmt_range(r, " dB"),
                            "n/a" if value is None else f"{value:+.2f} dB", _in(value, r)))
    return checks


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

def _read_audio(path: str | Path):
    from tools.audio_io import load_audio

    return load_audio(path)


def _prepare_input(conv: Conversation, work: Path, max_audio_s: float | None) -> Path:
    """The file every turn of ``conv`` processes: the track, or its clip as a float WAV in ``work``."""
    import soundfile as sf

    source = _music_dir() / conv.audio
    if not source.is_file():
        raise FileNotFoundError(f"{conv.source}: conversation {conv.id}: no audio file {source}")
    start, dur = conv.clip if conv.clip else (0.0, None)
    if max_audio_s is not None:
        dur = min(dur, max_audio_s) if dur is not None else max_audio_s
    if conv.clip is None and dur is None:
        return source
    audio = _read_audio(source)
    rate = audio.sample_rate
    a = int(round(start * rate))
    b = audio.samples.shape[-1] if dur is None else min(audio.samples.shape[-1], a + int(round(dur * rate)))
    if b - a < rate // 10:
        raise ValueError(f"{conv.source}: conversation {conv.id}: clip {conv.clip} is outside {conv.audio} "
                         f"({audio.samples.shape[-1] / rate:.1f} s)")
    path = work / f"{conv.id}-input.wav"
    sf.write(path, audio.samples[:, a:b].T, rate, subtype="FLOAT")
    return path


def _fresh_user(conv: Conversation, run_id: str) -> str:
    return f"{conv.user or 'eval'}~{conv.id}~{run_id}"


def _run_turn(graph, config: dict, conv: Conversation, index: int, turn: Turn, *, input_path: Path,
              input_audio, work: Path, user: str, previous: dict, traces_dir: Path) -> TurnResult:
    from agent.graph import turn_input

    expect = turn.expect
    output = work / conv.id / f"turn{index + 1:02d}.wav"
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    error = None
    try:
        graph.invoke(turn_input(turn.say, input_path, user=user, output_path=output,
                                listening_device=conv.listening_device), config)
    except Exception as exc:  # noqa: BLE001 - a crash is a failed turn, not a failed run
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    values = graph.get_state(config).values if error is None else {}
    status = values.get("status")
    reply = values.get("reply") or ""
    plan = values.get("plan") or []
    settings = values.get("settings") or {}
    device = ((settings.get("target") or {}).get("name")) if settings else None
    understanding = values.get("understanding") or {}
    outputs = values.get("outputs") or {}
    processed = status == "processed" and outputs.get("audio") and Path(outputs["audio"]).is_file()

    checks: list[Check] = []
    if error:
        checks.append(Check("agent ran", "no exception", error, False))
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
    checks += _score_args(expect, plan, previous.get("amounts", {}))

    measured: dict[str, Any] = {}
    out_audio = None
    if processed:
        out_audio = _read_audio(outputs["audio"])
        from tools.loudness import integrated_lufs, true_peak_dbtp

        rate = input_audio.sample_rate
        measured["band_change_db"] = {k: round(v, 2) for k, v in
                                      band_energy_change_db(input_audio.samples, out_audio.samples, rate).items()}
        lufs_in, lufs_out = integrated_lufs(input_audio.samples, rate), integrated_lufs(out_audio.samples, rate)
        measured["lufs_in"], measured["lufs_out"] = round(lufs_in, 2), round(lufs_out, 2)
        measured["lufs_change"] = round(lufs_out - lufs_in, 2) if math.isfinite(lufs_in) and math.isfinite(lufs_out) else None
        measured["true_peak_dbtp"] = round(true_peak_dbtp(out_audio.samples, rate), 2)
        if previous.get("audio") is not None and previous["audio"].samples.shape[0] == out_audio.samples.shape[0]:
            measured["band_change_vs_previous_db"] = {
                k: round(v, 2) for k, v in band_energy_change_db(previous["audio"].samples, out_audio.samples, rate).items()}
    a = expect.audio
    if a is not None and not a.empty():
        if not processed:
            checks.append(Check("audio output", "a processed output to measure",
                                f"none (status {status})" if not error else "none (agent raised)", False))
        else:
            rate = input_audio.sample_rate
            hz = _hz_changes(input_audio.samples, out_audio.samples, rate, list(a.bands_hz))
            if hz:
                measured["band_change_hz_db"] = {k: round(v, 2) for k, v in hz.items()}
            checks += _band_checks("band", a.bands, a.bands_hz, {**measured["band_change_db"], **hz})
            if a.vs_previous is not None:
                if previous.get("audio") is None:
                    checks.append(Check("vs previous output", "a previous processed turn", "none", False))
                else:
                    vp = dict(measured.get("band_change_vs_previous_db") or {})
                    vp_hz = _hz_changes(previous["audio"].samples, out_audio.samples, rate, list(a.vs_previous.bands_hz))
                    if vp_hz:
                        measured["band_change_vs_previous_hz_db"] = {k: round(v, 2) for k, v in vp_hz.items()}
                    checks += _band_checks("vs previous", a.vs_previous.bands, a.vs_previous.bands_hz, {**vp, **vp_hz})
            if a.lufs_change is not None:
                v = measured.get("lufs_change")
                checks.append(Check("loudness change", _fmt_range(a.lufs_change, " LU"),
                                    "n/a (silence)" if v is None else f"{v:+.2f} LU", _in(v, a.lufs_change)))
            if a.true_peak_dbtp_max is not None:
                tp = measured["true_peak_dbtp"]
                checks.append(Check("true peak", f"≤ {a.true_peak_dbtp_max:+.1f} dBTP", f"{tp:+.2f} dBTP",
                                    tp <= a.true_peak_dbtp_max + TRUE_PEAK_TOLERANCE_DB))
    low = reply.casefold()
    for phrase in expect.reply_contains:
        checks.append(Check(f"reply contains \"{phrase}\"", "present", _reply_excerpt(reply), phrase.casefold() in low))
    if expect.reply_contains_any:
        checks.append(Check("reply contains one of " + ", ".join(f'"{p}"' for p in expect.reply_contains_any),
                            "present", _reply_excerpt(reply), any(p.casefold() in low for p in expect.reply_contains_any)))
    for phrase in expect.reply_not_contains:
        checks.append(Check(f"reply lacks \"{phrase}\"", "absent", _reply_excerpt(reply), phrase.casefold() not in low))

    trace_path = None
    if processed:
        previous["audio"] = out_audio
        previous["amounts"] = {str(c["args"]["descriptor"]): float(c["args"]["amount"]) for c in plan
                               if c.get("tool") == "equalize" and "descriptor" in (c.get("args") or {})
                               and _num(c["args"].get("amount")) is not None}
        dest = traces_dir / conv.id
        dest.mkdir(parents=True, exist_ok=True)
        for key in ("trace", "plot"):
            src = Path(outputs.get(key, ""))
            if src.is_file():
                target = dest / f"turn{index + 1:02d}{src.suffix}"
                shutil.move(str(src), target)
                if key == "trace":
                    trace_path = str(target)
        Path(outputs["audio"]).unlink(missing_ok=True)  # measured; WAVs of a full run would be hundreds of MB
    elif error is None and not settings and previous.get("audio") is not None:
        previous["audio"], previous["amounts"] = input_audio, {}  # undo/reset back to the original
    return TurnResult(
        index=index + 1, say=turn.say, status=status, reply=reply, seconds=round(seconds, 3), checks=checks,
        plan_summary=plan_summary(plan), device=device, intent=understanding.get("intent"),
        intent_path=understanding.get("path"), measured=measured, timings_s=dict(values.get("timings_s") or {}),
        trace=trace_path, error=error)


def _reply_excerpt(reply: str, n: int = 160) -> str:
    text = " ".join(reply.split())
    return (text[:n] + "…") if len(text) > n else (text or "(empty reply)")


def run_conversations(paths: list[str | Path] | None = None, *, runtime, report_dir: str | Path,
                      min_pass: float = 0.8, fast_only: bool = False, progress: bool = True,
                      max_audio_s: float | None = None, conversations: list[Conversation] | None = None) -> Report:
    """Run conversations against the agent and write the report.

    Args:
        paths: conversation files or folders (default: ``eval/conversations``).
        runtime: a loaded :class:`agent.runtime.Runtime` (its LLM, or none, is what is evaluated).
        report_dir: where ``report.json``, ``report.md``, ``report.png`` and ``traces/`` go (created).
        min_pass: turn pass rate the run needs; stated in the report (see :meth:`Report.exit_code`).
        fast_only: only the conversations marked ``fast: true``.
        progress: show a progress bar over turns (tqdm, on stderr).
        max_audio_s: cap every conversation's audio to this many seconds (from its clip start).
        conversations: already loaded conversations (``paths`` is then ignored).
    Returns:
        The :class:`Report`.
    Raises:
        SuiteError: invalid conversation files.
    """
    from agent.graph import build_graph
    from tqdm import tqdm

    if conversations is None:
        conversations = load_conversations(paths, fast_only=fast_only)
    elif fast_only:
        conversations = [c for c in conversations if c.fast]
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    traces_dir = report_dir / "traces"
    if (traces_dir / _TRACES_MARKER).is_file():
        shutil.rmtree(traces_dir)  # the previous run's traces (the marker says the harness made the folder)
    elif traces_dir.exists():
        traces_dir = report_dir / f"traces-{run_id}"  # someone else's folder: leave it alone
    traces_dir.mkdir(parents=True)
    (traces_dir / _TRACES_MARKER).write_text("traces of one `sense eval` run; replaced by the next run\n")
    graph = build_graph(runtime)
    results: list[ConversationResult] = []
    started = time.perf_counter()
    bar = tqdm(total=sum(len(c.turns) for c in conversations), unit="turn", disable=not progress,
               desc="eval", dynamic_ncols=True)
    try:
        with tempfile.TemporaryDirectory(prefix="run-", dir=report_dir) as tmp:
            work = Path(tmp)
            for conv in conversations:
                bar.set_postfix_str(conv.id)
                user = _fresh_user(conv, run_id)
                for device in (conv.profile.owns if conv.profile else []):
                    runtime.prefs.own_device(user, device)
                config = {"configurable": {"thread_id": f"eval-{conv.id}-{run_id}"}}
                turns: list[TurnResult] = []
                try:
                    input_path = _prepare_input(conv, work, max_audio_s)
                    input_audio = _read_audio(input_path)
                except Exception as exc:  # noqa: BLE001 - score the conversation as failed, keep going
                    error = f"{type(exc).__name__}: {exc}"
                    for i, turn in enumerate(conv.turns):
                        turns.append(TurnResult(i + 1, turn.say, None, "", 0.0, [Check("input audio", "readable", error, False)],
                                                "(no plan)", None, None, None, {}, {}, None, error))
                        bar.update(1)
                    results.append(ConversationResult(conv.id, conv.category, conv.source, conv.audio, conv.fast, turns))
                    continue
                previous: dict[str, Any] = {}
                for i, turn in enumerate(conv.turns):
                    turns.append(_run_turn(graph, config, conv, i, turn, input_path=input_path, input_audio=input_audio,
                                           work=work, user=user, previous=previous, traces_dir=traces_dir))
                    bar.update(1)
                results.append(ConversationResult(conv.id, conv.category, conv.source, conv.audio, conv.fast, turns))
    finally:
        bar.close()
    summary = _summary(results, runtime, min_pass=min_pass, fast_only=fast_only, max_audio_s=max_audio_s,
                       wall_s=time.perf_counter() - started)
    report = Report(results, summary, report_dir)
    write_report(report)
    return report


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _rate(passed: int, total: int) -> float:
    return passed / total if total else 0.0


def _summary(results: list[ConversationResult], runtime, *, min_pass: float, fast_only: bool,
             max_audio_s: float | None, wall_s: float) -> dict:
    turns = [t for c in results for t in c.turns]
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
    seconds = [t.seconds for t in turns if t.error is None or t.seconds > 0]
    understand = [t.timings_s["understand"] for t in turns if "understand" in (t.timings_s or {})]
    processed = [t.seconds for t in turns if t.status == "processed"]
    paths: dict[str, int] = defaultdict(int)
    for t in turns:
        if t.intent_path:
            paths[t.intent_path] += 1
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
        "categories": dict(sorted(cats.items())),
        "latency_s": {
            "turn_p50": _r(_percentile(seconds, 50)), "turn_p95": _r(_percentile(seconds, 95)),
            "turn_max": _r(max(seconds) if seconds else None),
            "processed_turn_p50": _r(_percentile(processed, 50)), "processed_turn_p95": _r(_percentile(processed, 95)),
            "understand_p50": _r(_percentile(understand, 50)), "understand_p95": _r(_percentile(understand, 95)),
        },
        "intent_paths": dict(paths),
        "errors": sum(t.error is not None for t in turns),
        "wall_s": round(wall_s, 1),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": load,  # other work on the machine inflates the latencies
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def write_report(report: Report) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.png`` into ``report.report_dir`` (atomically)."""
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


def render_markdown(report: Report) -> str:
    """The human-readable report: summary, per-category rates, latency, every failed check."""
    s = report.summary
    lines = [
        "# SENSE scripted-conversation evaluation", "",
        f"- planner: {s['llm']}" + (" (fast slice)" if s["fast_only"] else "")
        + (f"; audio capped at {s['max_audio_s']:g} s" if s["max_audio_s"] else ""),
        f"- **turns passed: {s['turns']['passed']}/{s['turns']['total']} ({100 * s['turns']['pass_rate']:.1f} %)** — "
        f"needed {100 * s['min_pass']:.0f} %: **{'PASS' if s['passed'] else 'FAIL'}**",
        f"- conversations passed: {s['conversations']['passed']}/{s['conversations']['total']} "
        f"({100 * s['conversations']['pass_rate']:.1f} %); checks passed: {s['checks']['passed']}/{s['checks']['total']}",
        f"- latency per turn: p50 {_sec(s['latency_s']['turn_p50'])}, p95 {_sec(s['latency_s']['turn_p95'])}, "
        f"max {_sec(s['latency_s']['turn_max'])}; processed turns p50 {_sec(s['latency_s']['processed_turn_p50'])}, "
        f"p95 {_sec(s['latency_s']['processed_turn_p95'])}; understanding p50 {_sec(s['latency_s']['understand_p50'])}, "
        f"p95 {_sec(s['latency_s']['understand_p95'])}",
        f"- intent paths: {', '.join(f'{k} {v}' for k, v in s['intent_paths'].items()) or 'none'}; "
        f"agent errors: {s['errors']}; wall time {s['wall_s']:.0f} s; finished {s['finished_at']} on "
        f"{s['cpu_count']} cores, load average {s['load_average_at_end']} (other work inflates latency)", "",
        "## Per category", "",
        "| category | turns passed | turn pass rate | conversations passed | conversation pass rate |",
        "|---|---|---|---|---|",
    ]
    for name, c in s["categories"].items():
        lines.append(f"| {name} | {c['turns_passed']}/{c['turns']} | {100 * c['turn_pass_rate']:.0f} % | "
                     f"{c['conversations_passed']}/{c['conversations']} | {100 * c['conversation_pass_rate']:.0f} % |")
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
        lines += [f"### {c.id} — turn {t.index}: \"{_md(t.say)}\"", "",
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
        lines.append(f"- reply: {_md(_reply_excerpt(t.reply, 300))}")
        if t.trace:
            lines.append(f"- trace: `{t.trace}`")
        lines += ["", "| check | expected | measured |", "|---|---|---|"]
        for k in t.checks:
            if not k.ok:
                lines.append(f"| ❌ {_md(k.name)} | {_md(k.expected)} | {_md(k.measured)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _sec(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f} s"


def _plot(report: Report, path: Path) -> None:
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


# --------------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------------

def eval_command(paths: list[str | Path] | None = None, llm_url: str | None = None, model: str | None = None,
                 report_dir: str | Path = DEFAULT_REPORT_DIR, min_pass: float = 0.8, fast: bool = False, *,
                 use_llm: bool = True, max_audio_s: float | None = None, progress: bool = True,
                 runtime=None, echo=print) -> int:
    """``sense eval``: run the conversations, write the report, print a summary, return an exit code.

    Args:
        paths: conversation files or folders (None or empty: all of ``eval/conversations``).
        llm_url: OpenAI-compatible server instead of the local model.
        model: planner model name or GGUF path (default: the project's default model).
        report_dir: report folder; its ``prefs.sqlite`` holds the eval users' history (never ``~/.sense``).
        min_pass: turn pass rate needed for exit code 0.
        fast: only the conversations marked ``fast: true``.
        use_llm: False for the rule-based parser only.
        max_audio_s: cap each conversation's audio to this many seconds.
        progress: progress bar on stderr.
        runtime: an already loaded runtime (then ``llm_url``, ``model``, ``use_llm`` are not used).
        echo: where the summary lines go.
    Returns:
        0 when the turn pass rate ≥ ``min_pass``, 1 when below, 2 when the conversation files are
        invalid or the data/model cannot be loaded.
    """
    report_dir = Path(report_dir)
    try:
        conversations = load_conversations(paths, fast_only=fast, check_audio=True)
    except SuiteError as exc:
        echo(f"error: {exc}")
        return EXIT_BAD_SUITE
    except Exception as exc:  # noqa: BLE001 - e.g. DataMissingError: one line, not a traceback
        echo(f"error: {exc}")
        return EXIT_BAD_SUITE
    if not conversations:
        echo("error: no conversations selected" + (" (none is marked fast: true)" if fast else ""))
        return EXIT_BAD_SUITE
    if runtime is None:
        from agent.runtime import Runtime

        report_dir.mkdir(parents=True, exist_ok=True)
        try:
            runtime = Runtime.load(model=model, llm_url=llm_url, use_llm=use_llm,
                                   prefs_path=report_dir / "prefs.sqlite")
        except Exception as exc:  # noqa: BLE001 - DataMissingError, ModelMissingError, LLMError: one line
            echo(f"error: {exc}")
            return EXIT_BAD_SUITE
    report = run_conversations(runtime=runtime, report_dir=report_dir, min_pass=min_pass, fast_only=False,
                               progress=progress, max_audio_s=max_audio_s, conversations=conversations)
    s = report.summary
    echo(f"turns passed {s['turns']['passed']}/{s['turns']['total']} ({100 * s['turns']['pass_rate']:.1f} %), "
         f"conversations {s['conversations']['passed']}/{s['conversations']['total']}; "
         f"latency p50 {_sec(s['latency_s']['turn_p50'])}, p95 {_sec(s['latency_s']['turn_p95'])}")
    for name, c in s["categories"].items():
        echo(f"  {name:<18} {c['turns_passed']:>3}/{c['turns']:<3} {100 * c['turn_pass_rate']:5.1f} %")
    echo(f"report: {report.files['md']} ({'PASS' if s['passed'] else 'FAIL'}: needed {100 * min_pass:.0f} %)")
    return report.exit_code(min_pass)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.harness [FILES...] [--fast] [--no-llm] [--model M] [--llm-url U] [--report-dir D]``."""
    parser = argparse.ArgumentParser(prog="python -m eval.harness", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", help="conversation files or folders (default: eval/conversations)")
    parser.add_argument("--llm-url", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-llm", action="store_true", help="rule-based parser only")
    parser.add_argument("--report-dir", default=str(DEFAULT_REPORT_DIR))
    parser.add_argument("--min-pass", type=float, default=0.8)
    parser.add_argument("--fast", action="store_true", help="only conversations marked fast: true")
    parser.add_argument("--max-audio-s", type=float, default=None, help="cap each conversation's audio (seconds)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temporary audio folder is removed
    return eval_command(args.paths or None, args.llm_url, args.model, args.report_dir, args.min_pass, args.fast,
                        use_llm=not args.no_llm, max_audio_s=args.max_audio_s, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(main())
