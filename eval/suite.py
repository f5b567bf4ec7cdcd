"""The scripted-conversation suite: the YAML schema and its loader.

:func:`load_conversations` reads and validates conversation files into :class:`Conversation`
objects; every schema problem is a :class:`SuiteError` whose message names the file and field.
What the expectations mean when a turn is scored is :mod:`eval.scoring`'s job.

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
            facts:                                # numbers the reply must get right (see "facts" below)
              - {kind: device_difference, a: Apple AirPods Max, b: Bose QuietComfort 45, band: bass}

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
  24-bit file, so :data:`eval.scoring.TRUE_PEAK_TOLERANCE_DB` is allowed on top).

``facts`` (for answers to questions: the NUMBERS in the reply). Each entry names a fact the harness
computes itself from the data, never from what the agent reports, and passes when the reply holds a
number within the tolerance of the truth. Signs are ignored ("+3.1 dB", "-3.1 dB", "−3.1 dB" and
"3.1 dB lower" all state 3.1); a number glued to letters (the 4 of "XM4") is not a number. Devices
are exact model names of the FR store (``FRStore.load().devices()``); bands are those of ``audio``.

- ``{kind: device_difference, a: NAME, b: NAME, band: BAND}`` — mean over the band of
  (FR(a) − target(a)) minus the same for b, dB (FR and class target of
  :class:`knowledge.fr_store.FRStore`, on ``FR_GRID_HZ``, grid points with lo ≤ f < hi); ±0.3 dB;
- ``{kind: device_deviation, device: NAME, band: BAND}`` — mean over the band of FR − target; ±0.3 dB;
- ``{kind: lufs}`` — integrated loudness (:func:`tools.loudness.integrated_lufs`) of the turn's
  input clip; ±0.3;
- ``{kind: true_peak}`` — true peak (:func:`tools.loudness.true_peak_dbtp`) of the input clip; ±0.3;
- ``{kind: device_count, brand: BRAND | null, type: in-ear | earbud | over-ear | null}`` — how many
  models of the store have a name starting with the brand (case-insensitive) and that type; the
  reply must hold that integer exactly (digits, or a number word up to twenty);
- ``{kind: word_region, word: WORD}`` — the tone word's main region
  (:meth:`knowledge.words.WordEQ.lookup` ``.main``); the reply must hold it as the project writes it,
  :meth:`knowledge.expert.Region.label`: ``"100 Hz–400 Hz"``, ``"2 kHz–5 kHz"`` (en dash).

The tolerances are :data:`eval.scoring.FACT_TOLERANCE`. A fact that cannot be computed (an unknown
model, a turn without input audio) fails its check and says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tools.analysis import BANDS_HZ
from tools.errors import SenseError

CONVERSATIONS_DIR = Path(__file__).resolve().parent / "conversations"

Status = Literal["processed", "question", "answer"]
#: A closed range ``(min, max)`` in the unit of its field (dB, LU, Hz …).
Range = tuple[float, float]


class SuiteError(SenseError, ValueError):
    """A conversation file is missing, not YAML, or does not follow the schema (message names file and field)."""


def _known_tools() -> tuple[str, ...]:
    """The tool names the agent's plans can hold (:func:`agent.plan.tool_names`)."""
    from agent.plan import tool_names

    return tool_names()


def check_range(value: Any, what: str) -> Range:
    """``value`` as a ``(min, max)`` range of floats.

    Args:
        value: what the YAML gave: a list or tuple of two numbers (booleans are not numbers).
        what: the field's name for the message.
    Returns:
        ``(min, max)`` as floats, min <= max.
    Raises:
        ValueError: not two numbers, or min > max.
    """
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{what} must be [min, max] (two numbers), got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"{what}: min {lo:g} > max {hi:g}")
    return lo, hi


def hz_band(key: str) -> Range:
    """A ``bands_hz`` key such as ``"200-315"`` as ``(low_hz, high_hz)``.

    Raises:
        ValueError: not ``low-high`` with low < high.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*", str(key))
    if not m or float(m.group(1)) >= float(m.group(2)):
        raise ValueError(f"bands_hz key must look like \"200-315\" (low-high Hz, low < high), got {key!r}")
    return float(m.group(1)), float(m.group(2))


def _band_ranges(data: dict, where: str) -> dict[str, Range]:
    out = {}
    for key, value in data.items():
        if key not in BANDS_HZ:
            raise ValueError(f"{where}: unknown band {key!r}; bands are {', '.join(BANDS_HZ)} (or use bands_hz)")
        out[key] = check_range(value, f"{where}.{key}")
    return out


def _split_bands(data: Any, not_a_mapping: str, keep: tuple[str, ...] = (),
                 ranges: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of a band-change mapping: named bands and ``bands_hz`` apart, other fields kept.

    Shared by :class:`BandChanges` and :class:`AudioExpect` (their ``mode="before"`` validators).

    Args:
        data: the YAML mapping: band name → [min, max] dB, ``bands_hz: {"200-315": [min, max]}``,
            plus the fields named in ``keep``.
        not_a_mapping: the error message when ``data`` is not a mapping (``", got …"`` is added).
        keep: fields passed through as they are (pydantic validates them).
        ranges: fields of ``keep`` that must be [min, max]; checked before the bands.
    Returns:
        ``{**kept, "bands": {name: (min, max)}, "bands_hz": {"lo-hi": [min, max]}}``.
    Raises:
        ValueError: not a mapping, an unknown band, a bad ``bands_hz`` key or a bad range.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{not_a_mapping}, got {data!r}")
    data = dict(data)
    kept = {k: data.pop(k) for k in keep if k in data}
    for name in ranges:
        if name in kept:
            kept[name] = check_range(kept[name], name)
    hz = data.pop("bands_hz", None) or {}
    if not isinstance(hz, dict):
        raise ValueError("bands_hz must be a mapping like {\"200-315\": [-4, -1]}")
    for k, v in hz.items():
        hz_band(k)
        check_range(v, f"bands_hz.{k}")
    return {**kept, "bands": _band_ranges(data, "band"), "bands_hz": hz}


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
        return None if v is None else check_range(v, info.field_name)


class _BandRanges(_Strict):
    """Band changes in dB: ``bands`` (names of ``BANDS_HZ``) and ``bands_hz`` (``"lo-hi"`` keys)."""

    bands: dict[str, Range] = Field(default_factory=dict)
    bands_hz: dict[str, Range] = Field(default_factory=dict)


class BandChanges(_BandRanges):
    """Band changes in dB: named bands of ``BANDS_HZ`` plus ``bands_hz`` ranges."""

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data):
        return _split_bands(data, "expected a mapping of band → [min, max]")


class AudioExpect(_BandRanges):
    """Measured checks on a processed turn's output (see module doc)."""

    vs_previous: BandChanges | None = None
    lufs_change: Range | None = None
    true_peak_dbtp_max: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data):
        return _split_bands(data, "audio must be a mapping", keep=("vs_previous", "lufs_change", "true_peak_dbtp_max"),
                            ranges=("lufs_change",))

    def empty(self) -> bool:
        """True when no audio check is given."""
        return not (self.bands or self.bands_hz or self.vs_previous or self.lufs_change
                    or self.true_peak_dbtp_max is not None)


class _Fact(_Strict):
    """One number (or region) the reply must get right; the harness computes the truth (see module doc)."""


class _BandFact(_Fact):
    """A fact about one band of :data:`tools.analysis.BANDS_HZ`."""

    band: str

    @field_validator("band")
    @classmethod
    def _band(cls, v):
        if v not in BANDS_HZ:
            raise ValueError(f"unknown band {v!r}; bands are {', '.join(BANDS_HZ)}")
        return v


class DeviceDifferenceFact(_BandFact):
    """``a``'s deviation from its target minus ``b``'s, mean over ``band``, dB."""

    kind: Literal["device_difference"]
    a: str = Field(min_length=1)
    b: str = Field(min_length=1)


class DeviceDeviationFact(_BandFact):
    """``device``'s deviation from its class target, mean over ``band``, dB."""

    kind: Literal["device_deviation"]
    device: str = Field(min_length=1)


class LufsFact(_Fact):
    """Integrated loudness of the turn's input clip, LUFS."""

    kind: Literal["lufs"]


class TruePeakFact(_Fact):
    """True peak of the turn's input clip, dBTP."""

    kind: Literal["true_peak"]


class DeviceCountFact(_Fact):
    """How many stored models have this brand (name prefix) and type; both optional."""

    kind: Literal["device_count"]
    brand: str | None = None
    type: Literal["in-ear", "earbud", "over-ear"] | None = None


class WordRegionFact(_Fact):
    """A tone word's main frequency region, as :meth:`knowledge.expert.Region.label` writes it."""

    kind: Literal["word_region"]
    word: str = Field(min_length=1)


#: One ``facts`` entry, told apart by ``kind``.
Fact = Annotated[Union[DeviceDifferenceFact, DeviceDeviationFact, LufsFact, TruePeakFact, DeviceCountFact,
                       WordRegionFact], Field(discriminator="kind")]
FACT_KINDS = ("device_difference", "device_deviation", "lufs", "true_peak", "device_count", "word_region")


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
            check_range(value, where)
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"{where}: empty list")
            if all(isinstance(v, str) for v in value):
                continue
            check_range(value, where)
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
    facts: list[Fact] = Field(default_factory=list)

    @field_validator("facts", mode="before")
    @classmethod
    def _facts(cls, v):
        if not isinstance(v, list):
            raise ValueError(f"facts must be a list of {{kind: ..., ...}} mappings, got {v!r}")
        for i, item in enumerate(v):
            if not isinstance(item, dict) or "kind" not in item:
                raise ValueError(f"facts[{i}] must be a mapping with a kind ({', '.join(FACT_KINDS)}), got {item!r}")
            if item["kind"] not in FACT_KINDS:
                raise ValueError(f"facts[{i}]: unknown kind {item['kind']!r}; kinds are {', '.join(FACT_KINDS)}")
        return v

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
                and not self.reply_contains_any and not self.reply_not_contains and not self.facts):
            raise ValueError("expect has no checks")
        return self


class Turn(_Strict):
    """One request of a conversation and what a person expects from it."""

    say: str = Field(min_length=1)
    expect: Expect


class Conversation(_Strict):
    """One scripted conversation: its audio, user and turns (fields: see the module doc)."""

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
    conversations: list[Conversation] = []
    seen: dict[str, Path] = {}
    for path in _conversation_files(paths):
        for conv in _read_file(path):
            if conv.id in seen:
                raise SuiteError(f"{path}: conversation id {conv.id!r} repeats (first in {seen[conv.id]})")
            seen[conv.id] = path
            conversations.append(conv)
    if check_audio:
        music = music_dir()
        for conv in conversations:
            if not (music / conv.audio).is_file():
                raise SuiteError(f"{conv.source}: conversation {conv.id}.audio: no file {music / conv.audio}")
    if fast_only:
        conversations = [c for c in conversations if c.fast]
    return conversations


def _conversation_files(paths: list[str | Path] | None) -> list[Path]:
    """The YAML files named by ``paths`` (folders: their ``*.yaml`` then ``*.yml``, sorted); SuiteError if none."""
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
    return files


def _read_file(path: Path) -> Iterator[Conversation]:
    """The validated conversations of one file, in order; SuiteError naming the file and field."""
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
        yield conv


def music_dir() -> Path:
    """``SENSE_DATA_DIR/music``, where conversations' ``audio`` files live.

    Raises:
        knowledge.config.DataMissingError: no data folder.
    """
    from knowledge.config import data_dir

    return data_dir() / "music"
