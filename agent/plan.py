"""A plan: typed tool calls, one argument model per tool, as a discriminated union on ``tool``.

A call dumps to ``{"tool": name, "args": {...}}`` (the trace keeps that shape). Units are in the
field names or documented per field; gains are signed dB (+ boost, − cut) everywhere.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agent.schemas import Direction, StemName
from tools.eq import Filter


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeparateArgs(_Args):
    """Split the mix into vocals, drums, bass and other (auto: HTDemucs weights if present, else the Spleeter
    hybrid, else classical; see tools.separate.choose_method)."""

    method: Literal["auto", "demucs", "spleeter", "classical"] = "auto"


class StemEqArgs(_Args):
    """A tone word's EQ on one stem: its filters moving the word's region TARGET_DB × amount dB."""

    stem: StemName
    descriptor: str
    direction: Direction
    amount: float
    filters: list[Filter]


class StemGainArgs(_Args):
    """A stem's level move, dB (capped to −30 … +12 dB; ``requested_gain_db`` as said)."""

    stem: StemName
    gain_db: float
    requested_gain_db: float
    capped: bool


class StemArgs(_Args):
    """Mute or solo one stem."""

    stem: StemName


class RemixArgs(_Args):
    """Sum the stems again (they sum to the mix when nothing is changed)."""

    stems: str = "vocals + drums + bass + other"


class TransferArgs(_Args):
    """Render ``target``'s frequency response relative to ``reference`` (a listening device or a target curve).

    ``method`` dsp: the smoothed FR difference (1/6 octave, boosts soft-limited to ``max_boost_db``) as one
    minimum-phase FIR; demt: the learned model conditioned on the target's response.
    """

    method: Literal["dsp", "demt"] = "dsp"
    target: str
    reference: str
    reference_kind: Literal["device", "target"]
    smoothing_octaves: float
    max_boost_db: float


class BandEditArgs(_Args):
    """One explicit move in an ``equalize`` call: label, dB as said, dB applied (±12 dB cap), capped."""

    label: str
    requested_gain_db: float
    gain_db: float
    capped: bool


class EqualizeArgs(_Args):
    """Whole-mix EQ: either one tone word (``descriptor``, ``direction``, ``amount`` on the calibrated scale,
    ``source``: expert | expert+crowd | crowd; ``kept_out``: the "not" words' regions it stays out of;
    ``limit``: the EQ that keeps a "not" word's region level) or
    the person's explicit moves (``band_edits``); ``filters`` realise it (gains capped ±12 dB)."""

    descriptor: str | None = None
    direction: Direction | None = None
    amount: float | None = None
    source: str | None = None
    limit: bool | None = None
    kept_out: str | None = None
    band_edits: list[BandEditArgs] | None = None
    filters: list[Filter]

    @property
    def is_word(self) -> bool:
        return self.descriptor is not None


class FinalizeArgs(_Args):
    """Loudness matched to the input (ITU-R BS.1770), then a true-peak limiter at ``ceiling_dbtp`` (dBTP)."""

    loudness: Literal["match input"] = "match input"
    ceiling_dbtp: float = -1.0


class _Call(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict:
        """``{"tool": ..., "args": {...}}``, JSON-ready (unset optional arguments left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class SeparateCall(_Call):
    tool: Literal["separate"] = "separate"
    args: SeparateArgs = Field(default_factory=SeparateArgs)


class StemEqCall(_Call):
    tool: Literal["stem_eq"] = "stem_eq"
    args: StemEqArgs


class StemGainCall(_Call):
    tool: Literal["stem_gain"] = "stem_gain"
    args: StemGainArgs


class StemMuteCall(_Call):
    tool: Literal["stem_mute"] = "stem_mute"
    args: StemArgs


class StemSoloCall(_Call):
    tool: Literal["stem_solo"] = "stem_solo"
    args: StemArgs


class RemixCall(_Call):
    tool: Literal["remix"] = "remix"
    args: RemixArgs = Field(default_factory=RemixArgs)


class TransferCall(_Call):
    tool: Literal["device_transfer"] = "device_transfer"
    args: TransferArgs


class EqualizeCall(_Call):
    tool: Literal["equalize"] = "equalize"
    args: EqualizeArgs


class FinalizeCall(_Call):
    tool: Literal["finalize"] = "finalize"
    args: FinalizeArgs = Field(default_factory=FinalizeArgs)


ToolCall = Annotated[
    Union[SeparateCall, StemEqCall, StemGainCall, StemMuteCall, StemSoloCall, RemixCall, TransferCall,
          EqualizeCall, FinalizeCall],
    Field(discriminator="tool"),
]
ToolName = Literal["separate", "stem_eq", "stem_gain", "stem_mute", "stem_solo", "remix", "device_transfer",
                   "equalize", "finalize"]
PLAN = TypeAdapter(list[ToolCall])


def dump_plan(plan: list[ToolCall]) -> list[dict]:
    """The plan as JSON-ready dicts (the trace's ``plan``)."""
    return [call.dump() for call in plan]


def load_plan(data: list[dict]) -> list[ToolCall]:
    """Validate dicts (a trace's ``plan``) back into typed calls."""
    return PLAN.validate_python(data)


def tool_names() -> tuple[str, ...]:
    """Every tool a plan can hold."""
    return ToolName.__args__
