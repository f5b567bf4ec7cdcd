"""Typed data that flows through the agent: what the LLM extracts and what the plan holds.

The LLM fills :class:`Intent` only (JSON-schema constrained); it never chooses numbers it cannot
know. Numbers are computed from knowledge (user history, then the population prior) into
:class:`ToolCall` arguments.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Direction = Literal["more", "less"]
#: A tone word's direction as said: more, less, or "not" ("warmer but not muddy": the word limits the others).
WordDirection = Literal["more", "less", "not"]
Amount = Literal["a little", "normal", "a lot"]
FollowUp = Literal["none", "more", "less", "undo", "redo", "reset", "compare", "accept"]
BandName = Literal["sub", "bass", "low mids", "mids", "presence", "treble", "air"]
StemName = Literal["vocals", "drums", "bass", "other"]
StemOperation = Literal["louder", "quieter", "mute", "solo", "tone"]


class Adjustment(BaseModel):
    """One change of tone the person asked for, e.g. "less harsh" or "more bass"."""

    descriptor: str = Field(description="the sound word, e.g. harsh, warm, bright, bass, muddy")
    direction: WordDirection = Field(description="more or less of that quality; not = must not get more of it")
    amount: Amount | None = Field(default=None, description="how much, only if the person said so")


class BandEdit(BaseModel):
    """An explicit EQ move the person named in numbers or band words ("cut 250 Hz by 3 dB")."""

    frequency_hz: float | None = Field(default=None, description="centre frequency in Hz if named, e.g. 250")
    band: BandName | None = Field(default=None, description="band word if no frequency was named")
    gain_db: float = Field(description="dB, negative for a cut, as the person said it (not capped here)")


class StemEdit(BaseModel):
    """Something done to one stem of the mix: "quieter drums", "karaoke" (mute vocals), "make the
    vocals less harsh" (``tone``: this request's adjustments apply to that stem only)."""

    stem: StemName = Field(description="vocals, drums, bass (the bass instrument) or other (guitars, keys, ...)")
    operation: StemOperation = Field(description="louder, quieter, mute, solo, or tone (the adjustments apply to it)")
    amount: Amount | None = Field(default=None, description="how much, only if the person said so")
    gain_db: float | None = Field(default=None, description="dB, only if the person gave a number")


class Intent(BaseModel):
    """What a request means, as extracted by the planner LLM (or the rule-based parser).

    Attributes:
        action: ``process`` (change the audio), ``follow_up`` (more/less/undo/reset of the last
            result), ``question`` (asks about devices, the track, words or the last result: answered
            with read-only tools, nothing changes), ``off_topic`` (not about sound).
        target_device: the device the person wants it to sound like, as they named it.
        listening_device: the device they listen on, if they said so.
        adjustments: tonal changes.
        band_edits: explicit EQ moves in numbers ("cut 250 Hz by 3 dB", "bass +4 dB").
        stem_edits: moves on one stem of the mix (needs source separation).
        follow_up: for ``action == "follow_up"``: more, less, undo, redo, reset, compare (with the
            original) or accept ("perfect, thanks": nothing changes).
    """

    action: Literal["process", "follow_up", "question", "off_topic"]
    target_device: str | None = Field(default=None, description="device to sound like, as named")
    listening_device: str | None = Field(default=None, description="device the person listens on, if said")
    adjustments: list[Adjustment] = Field(default_factory=list, max_length=6)
    band_edits: list[BandEdit] = Field(default_factory=list, max_length=6)
    stem_edits: list[StemEdit] = Field(default_factory=list, max_length=4)
    follow_up: FollowUp = "none"


class ToolCall(BaseModel):
    """One step of a plan: a tool name and its concrete arguments (JSON-serialisable)."""

    tool: Literal["separate", "stem_eq", "stem_gain", "stem_mute", "stem_solo", "remix",
                  "device_transfer", "equalize", "finalize"]
    args: dict[str, Any]


def llm_json_schema(model: type[BaseModel]) -> dict:
    """The JSON schema of ``model`` for the LLM's ``response_format``.

    Every property is made required so the constrained decoder writes each key once, in the
    declared order: llama.cpp's grammar puts required keys before optional ones, so a defaulted
    ``tool`` discriminator would otherwise have to come last and the model, which writes ``tool``
    first, was steered to the variants without required keys (a small model also drops or invents
    keys when they are optional).
    """
    schema = model.model_json_schema()
    for obj in [schema, *schema.get("$defs", {}).values()]:
        if "properties" in obj:
            obj["required"] = list(obj["properties"])
        obj.pop("description", None)
    return schema


def intent_json_schema() -> dict:
    """The JSON schema of :class:`Intent`, passed to the LLM as ``response_format``."""
    return llm_json_schema(Intent)
