"""What should apply to the audio now: typed settings, owned by the dialogue manager.

An :class:`~agent.schemas.Intent` is what one request *said*; :class:`Settings` are what the
conversation has arrived at (devices resolved, words matched to the prior with amounts, band edits
capped, per-stem moves). The planner turns settings into tool calls; the preference store keeps
them as a :class:`knowledge.preferences.ResultParams` record.

Units and signs, one convention everywhere:
- ``amount``: the calibrated scale, 0 … :data:`MAX_AMOUNT`: 1 moves the word's main region by
  ``knowledge.words.TARGET_DB`` (3 dB) relative to the 100 Hz–16 kHz mean, 0.5 "a little", 2 "a lot";
- ``gain_db``: dB, + boost, − cut; band edits capped at ±12 dB, stem gains at +12 / −30 dB.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from agent.schemas import Direction, StemName
from knowledge.preferences import ResultParams, StemParams, WordAmount
from knowledge.words import TARGET_DB
from tools.eq import MAX_GAIN_DB, Filter

#: Amount 4 moves a word's region 12 dB, the hearing-safety cap of any filter.
MAX_AMOUNT = MAX_GAIN_DB / TARGET_DB
#: Deepest stem cut short of muting, dB (boosts are capped at +12 dB like every gain).
MAX_STEM_CUT_DB = -30.0
TransferMethod = Literal["dsp", "demt"]


class DeviceRef(BaseModel):
    """A device of the FR store that a request named.

    Attributes:
        name: model name in the store, e.g. "Apple AirPods Max".
        type: "in-ear" | "earbud" | "over-ear" | "speaker" | "unknown".
        query: the person's words for it ("my airpods").
        via: how the name resolved: profile | exact | alias | partial | fuzzy+embedding | answer.
        alternatives: other models the words could mean (named in the reply).
        sources: who measured it (oratory1990, rtings …).
    """

    name: str
    type: str
    query: str
    via: str
    alternatives: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)


class ToneMove(BaseModel):
    """A tone word with its resolved amount ("less harsh" → harsh, less, 0.55).

    Attributes:
        descriptor: the word in the population prior.
        asked: the person's word.
        direction: more | less.
        amount: 0 … MAX_AMOUNT (1 = the default move of the word's region, TARGET_DB).
        amount_source: where the amount came from, in words (history, default, × follow-ups).
        match_score: 0 … 1 confidence of the word match.
        match_via: expert | exact | translation | jargon | rule | spelling | embedding.
        record_id: the preference record the amount came from, or None.
        source: what decided the word's EQ: expert | expert+crowd | crowd.
        why: why that source decided, in words.
        region: the word's main region ("60 Hz–250 Hz").
        offset_db: the person's (or a picked variant's) offset from the population mean, 40 floats in dB on
            Audealize's bands, in the word's own direction at amount 1 (applied × amount, negated for "less");
            empty: none (:mod:`agent.variants`).
        personal: why the offset, in words ("you like more warmth than most: …"), or "".
        variant: the variant this move is ("B: more low mids (+1.3 dB at 250–800 Hz)"), or "".
    """

    descriptor: str
    asked: str
    direction: Direction
    amount: float = Field(ge=0.0, le=MAX_AMOUNT)
    amount_source: str
    match_score: float = 1.0
    match_via: str = "exact"
    record_id: int | None = None
    source: str = "crowd"
    why: str = ""
    region: str = ""
    offset_db: list[float] = Field(default_factory=list)
    personal: str = ""
    variant: str = ""

    def said(self) -> str:
        """``"less harsh"``."""
        return f"{self.direction} {self.descriptor}"

    def combined(self, new: ToneMove) -> ToneMove | None:
        """This move followed by ``new`` for the same word: amounts add (same direction) or subtract
        (opposite), capped at MAX_AMOUNT; None when they cancel out."""
        signed = (self.amount if self.direction == "more" else -self.amount) + \
                 (new.amount if new.direction == "more" else -new.amount)
        if abs(signed) < 1e-6:
            return None
        amount = float(min(abs(signed), MAX_AMOUNT))
        source = f"{self.amount_source}, then {'+' if new.direction == self.direction else '−'}{new.amount:.2f} " \
                 f"(\"{new.said()}\")"
        return new.model_copy(update={"direction": "more" if signed > 0 else "less", "amount": amount,
                                      "amount_source": source})


class BandMove(BaseModel):
    """An explicit EQ move ("cut 250 Hz by 3 dB").

    Attributes:
        label: "250 Hz" or a band word ("treble").
        requested_gain_db: dB as said (not capped).
        gain_db: dB applied, capped at ±MAX_GAIN_DB.
        capped: whether the cap changed it.
        filter: the filter realising it (RBJ peaking or shelf).
    """

    label: str
    requested_gain_db: float
    gain_db: float
    capped: bool
    filter: Filter

    def scaled(self, factor: float) -> BandMove:
        """The move with its gain × ``factor`` (capped)."""
        flt = self.filter.model_copy(update={"gain_db": float(np.clip(self.gain_db * factor, -MAX_GAIN_DB, MAX_GAIN_DB))})
        return self.model_copy(update={"gain_db": flt.gain_db, "filter": flt,
                                       "capped": self.capped or abs(self.gain_db * factor) > MAX_GAIN_DB})


class StemMove(BaseModel):
    """What is done to one stem: a level move, mute or solo, and tone words on that stem only.

    Attributes:
        gain_db: dB, capped to MAX_STEM_CUT_DB … +MAX_GAIN_DB.
        requested_gain_db: dB as said or defaulted, before the cap.
        capped: whether the cap changed it.
        mute: the stem is removed ("karaoke").
        solo: only this stem (and other soloed ones) stays ("a cappella").
        tone: tone words applied to this stem only.
    """

    gain_db: float = 0.0
    requested_gain_db: float = 0.0
    capped: bool = False
    mute: bool = False
    solo: bool = False
    tone: list[ToneMove] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.gain_db or self.mute or self.solo or self.tone)


def cap_stem_gain(gain_db: float) -> tuple[float, bool]:
    """(capped gain, whether it was capped): +MAX_GAIN_DB at most, MAX_STEM_CUT_DB at least."""
    capped = float(np.clip(gain_db, MAX_STEM_CUT_DB, MAX_GAIN_DB))
    return capped, capped != gain_db


def merge_tone(old: list[ToneMove], new: list[ToneMove], *, additive: bool) -> list[ToneMove]:
    """Old words updated by new ones: a new word is appended; the same word again adds to its amount
    (``additive``: "even warmer", "a little less") or replaces it (a fresh request or a correction)."""
    out = list(old)
    for move in new:
        same = next((i for i, m in enumerate(out) if m.descriptor == move.descriptor), None)
        if same is None:
            out.append(move)
        elif additive:
            merged = out[same].combined(move)
            out = [m for i, m in enumerate(out) if i != same] + ([merged] if merged else [])
        else:
            out = [m for i, m in enumerate(out) if i != same] + [move]
    return out


class Settings(BaseModel):
    """What applies to the audio now.

    Attributes:
        request: the request that last changed them.
        target: the device to sound like, or None.
        listening: the device the person listens on, or None (then the target's class target is the reference).
        adjustments: tone words on the whole mix.
        band_edits: explicit EQ moves on the whole mix.
        stems: per-stem moves (a non-empty dict means the mix is separated).
        limits: words the result must not get more of ("warmer but not muddy": muddy).
        transfer_method: "dsp" (measured FR difference as a filter) or "demt" (the learned model).
        notes: what the request said that could not be used, told in the reply.
    """

    request: str = ""
    target: DeviceRef | None = None
    listening: DeviceRef | None = None
    adjustments: list[ToneMove] = Field(default_factory=list)
    band_edits: list[BandMove] = Field(default_factory=list)
    stems: dict[StemName, StemMove] = Field(default_factory=dict)
    limits: list[str] = Field(default_factory=list)
    transfer_method: TransferMethod = "dsp"
    notes: list[str] = Field(default_factory=list)

    def has_changes(self) -> bool:
        """Whether anything is applied (a device, a word, a band edit or a stem move)."""
        return bool(self.target or self.adjustments or self.band_edits
                    or any(not s.is_empty() for s in self.stems.values()))

    def scaled(self, factor: float, why: str) -> Settings:
        """Every word's amount, band edit's gain and stem gain × ``factor`` (capped; mute/solo stay)."""
        def words(moves: list[ToneMove]) -> list[ToneMove]:
            return [m.model_copy(update={"amount": float(np.clip(m.amount * factor, 0.0, MAX_AMOUNT)),
                                         "amount_source": f"{m.amount_source}, then × {factor:g} (\"{why}\")"})
                    for m in moves]

        stems = {}
        for name, st in self.stems.items():
            gain, capped = cap_stem_gain(st.gain_db * factor)
            stems[name] = st.model_copy(update={"gain_db": gain, "capped": st.capped or capped, "tone": words(st.tone)})
        return self.model_copy(update={"adjustments": words(self.adjustments), "stems": stems,
                                       "band_edits": [b.scaled(factor) for b in self.band_edits]})

    def summary(self) -> str:
        """A few words for what applies: ``"Apple AirPods rendering, less harsh, 250 Hz −3 dB"``."""
        parts = []
        if self.target:
            parts.append(f"{self.target.name} rendering" + (" (DeMT)" if self.transfer_method == "demt" else ""))
        parts += [m.said() for m in self.adjustments]
        parts += [f"not {word}" for word in self.limits]
        parts += [f"{b.label} {b.gain_db:+g} dB" for b in self.band_edits]
        for name, st in self.stems.items():
            if st.mute:
                parts.append(f"{name} muted")
            elif st.solo:
                parts.append(f"only the {name}")
            elif st.gain_db:
                parts.append(f"{name} {st.gain_db:+.0f} dB")
            parts += [f"{name} {m.said()}" for m in st.tone]
        return ", ".join(parts) or "nothing"

    def record(self) -> ResultParams:
        """What the preference store keeps of these settings."""
        def words(moves: list[ToneMove]) -> list[WordAmount]:
            return [WordAmount(descriptor=m.descriptor, direction=m.direction, amount=m.amount,
                               offset_db=m.offset_db or None) for m in moves]

        return ResultParams(
            target=self.target.name if self.target else None,
            listening=self.listening.name if self.listening else None,
            adjustments=words(self.adjustments),
            band_edits=[{"label": b.label, "gain_db": b.gain_db} for b in self.band_edits],
            stems={name: StemParams(gain_db=st.gain_db, mute=st.mute, solo=st.solo, adjustments=words(st.tone))
                   for name, st in self.stems.items()})
