"""Plan: what was said and retrieved → typed settings pieces → concrete, typed tool calls.

Deterministic. Amounts come from the person's own rated history when there is a similar
request, else from what the track already has in the word's region against a reference of real
music (:func:`content_amount`), else the default audible move; what a word means comes from the expert vocabulary beside
the word→EQ population prior (:mod:`knowledge.words`); the LLM never picks a number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from agent import plan as p
from agent.runtime import Runtime
from agent.schemas import Adjustment, Amount, BandEdit, StemEdit
from agent.settings import MAX_AMOUNT, BandMove, Settings, StemMove, ToneMove, cap_stem_gain
from agent.variants import offset_filters
from knowledge import content
from knowledge.fr_store import FR_GRID_HZ
from knowledge.expert import Region
from knowledge.words import CALIBRATION_RATE, TARGET_DB, region_level_db
from tools.eq import MAX_GAIN_DB, Filter, frequency_response_db
from tools.errors import SenseError, one_line

AMOUNT_FACTORS: dict[str | None, float] = {None: 1.0, "normal": 1.0, "a little": 0.5, "a lot": 2.0}
#: "a bit more" / "too much": every amount and gain × this.
FOLLOW_UP_FACTORS = {"more": 1.5, "less": 0.6}
TRANSFER_SMOOTHING_OCTAVES = 1 / 6
TRANSFER_MAX_BOOST_DB = 6.0
CEILING_DBTP = -1.0
#: How a band word becomes a filter: (type, frequency_hz, q).
BAND_FILTERS = {
    "sub": ("low_shelf", 60.0, 0.7071),
    "bass": ("low_shelf", 150.0, 0.7071),
    "low mids": ("peaking", 300.0, 1.0),
    "mids": ("peaking", 1000.0, 0.8),
    "presence": ("peaking", 3500.0, 1.0),
    "treble": ("high_shelf", 6000.0, 0.7071),
    "air": ("high_shelf", 12000.0, 0.7071),
}
#: A named frequency gets a peaking filter about one octave wide.
NAMED_FREQUENCY_Q = 1.41
#: Default stem level moves, dB, by operation and amount word.
STEM_GAINS_DB = {"louder": {None: 4.0, "normal": 4.0, "a little": 2.0, "a lot": 8.0},
                 "quieter": {None: -6.0, "normal": -6.0, "a little": -3.0, "a lot": -12.0}}


#: Content-aware amounts (no liked amount in the history; :func:`content_amount`): "less" moves the word's region
#: hypot(MIN_CONTENT_MOVE_DB, REMOVE_FRACTION × excess) dB, the excess being how far the region sits above the
#: reference of real music (:mod:`knowledge.content`; 0 when at or below it): most of a large excess goes, a
#: track at or below the reference gets the small, audible MIN_CONTENT_MOVE_DB ...
REMOVE_FRACTION = 0.8
#: ... "more" adds TARGET_DB minus this fraction of the excess (a region already far above the reference gets
#: less, one below it more) ...
ADD_EXCESS_FRACTION = 0.5
#: ... each at least MIN_CONTENT_MOVE_DB ("less") or MIN_CONTENT_ADD_DB ("more": asking for more of what a track
#: already has still gets an audible step) and at most MAX_CONTENT_MOVE_DB (before "a lot"), dB.
MIN_CONTENT_MOVE_DB = 1.5
MIN_CONTENT_ADD_DB = 2.5
MAX_CONTENT_MOVE_DB = 2.0 * TARGET_DB
#: "a little" never shrinks a content-aware move below this, dB (a request stays audible; eval.words passes ≥ 1 dB).
MIN_AUDIBLE_DB = 1.3


@dataclass(frozen=True)
class ContentAmount:
    """A tone word's amount from what the track already has (see :func:`content_amount`).

    Attributes:
        amount: the calibrated amount (1 = TARGET_DB), or None when nothing was measured.
        excess_db: the track's level in the word's main region minus the reference's, dB (None: not measured).
        region: the region measured ("150–400 Hz").
        tracks: how many real tracks the reference has (0: not measured).
        note: what was measured and how it became the amount, or why nothing was, in words.
    """

    amount: float | None
    excess_db: float | None
    region: str
    tracks: int
    note: str


def content_amount(region: Region, direction: str, input_path: str | os.PathLike | None) -> ContentAmount:
    """The amount of a "more"/"less" move of ``region`` on the track at ``input_path``, from the region's
    excess over the reference of real music (:func:`knowledge.content.region_excess_db`).

    With ``x = region.sign × excess_db`` (how much of what the word means the track already has, dB),
    "less" moves the region ``hypot(MIN_CONTENT_MOVE_DB, REMOVE_FRACTION × max(x, 0))`` dB and "more"
    ``TARGET_DB − ADD_EXCESS_FRACTION × x`` dB, clipped to MIN_CONTENT_MOVE_DB (MIN_CONTENT_ADD_DB for "more")
    … MAX_CONTENT_MOVE_DB;
    amount = move / TARGET_DB. The track's
    measurement is cached per path and modification time (:func:`knowledge.content.measure_file`).
    Returns ``amount=None`` with the reason in ``note`` when there is no audio or it cannot be measured.
    """
    if not input_path:
        return ContentAmount(None, None, region.label(), 0, "no audio to measure yet")
    try:
        ref = content.reference()
        excess = content.region_excess_db(content.measure_file(input_path), region, ref)
    except (SenseError, OSError) as exc:
        return ContentAmount(None, None, region.label(), 0, f"the track could not be measured ({one_line(exc)})")
    has = region.sign * excess
    if direction == "less":
        move = float(np.hypot(MIN_CONTENT_MOVE_DB, REMOVE_FRACTION * max(has, 0.0)))
        how = "remove most of the excess" if REMOVE_FRACTION * has > MIN_CONTENT_MOVE_DB else "a small, audible move"
    else:
        move = TARGET_DB - ADD_EXCESS_FRACTION * has
        how = "add less than the default" if has > 0 else "add more than the default"
    low = MIN_CONTENT_MOVE_DB if direction == "less" else MIN_CONTENT_ADD_DB
    if not low <= move <= MAX_CONTENT_MOVE_DB:
        move = float(np.clip(move, low, MAX_CONTENT_MOVE_DB))
        how = "a small, audible move" if move == low else f"at most {MAX_CONTENT_MOVE_DB:g} dB"
    where = "above" if excess >= 0 else "below"
    note = (f"measured: {region.label()} is {abs(excess):.1f} dB {where} the reference of {len(ref.tracks)} real "
            f"tracks → {how}: {move:.1f} dB, amount {move / TARGET_DB:.2f}")
    return ContentAmount(move / TARGET_DB, excess, region.label(), len(ref.tracks), note)


def tone_move(rt: Runtime, user: str, request: str, adj: Adjustment,
              input_path: str | os.PathLike | None = None, applied: dict[str, str] | None = None) -> ToneMove:
    """Resolve one tone word (expert vocabulary beside the crowd prior, :mod:`knowledge.words`) and pick
    its amount on the calibrated scale.

    The amount is the person's liked amount for that word from a similar rated request; else, with the
    track at ``input_path``, the content-aware amount (:func:`content_amount`: what the word's region
    already has over the reference of real music); else the default move (1: the word's region moves
    TARGET_DB). × 0.5 for "a little" (a first content-aware move stays ≥ MIN_AUDIBLE_DB), × 2 for "a lot";
    clipped to 0 … MAX_AMOUNT. ``applied`` maps the words already applied in the conversation to their
    direction: a word asked for again ("a little less bright" after "a lot brighter") is measured in the
    applied direction, so its step is on the same scale as the move it adjusts. ``adj.direction`` must be
    "more" or "less" (a "not" word is a limit, see :func:`limit_calls`).
    """
    meaning = rt.words.lookup(adj.descriptor)
    history = rt.prefs.history_amount(user, meaning.word, adj.direction, request)
    again = (applied or {}).get(meaning.word)
    measured = content_amount(meaning.main, again or adj.direction, input_path)
    factor = AMOUNT_FACTORS[adj.amount]
    if history is not None:
        base, record = history
        source, record_id = f"your earlier rated request \"{record.request}\" (amount {base:.2f})", record.id
        if measured.amount is not None:
            source += (f"; your liked amount wins over the track's content ({measured.region} "
                       f"{measured.excess_db:+.1f} dB against the reference would give {measured.amount:.2f})")
        amount = base * factor
    elif measured.amount is not None:
        base, record_id, source = measured.amount, None, measured.note
        amount = base * factor if again else max(base * factor, min(base, MIN_AUDIBLE_DB / TARGET_DB))
        if again and again != adj.direction:
            source += f" (measured for the applied \"{again} {meaning.word}\" this adjusts)"
    else:
        base, record_id = 1.0, None
        source = f"the default move ({TARGET_DB:g} dB); {measured.note}"
        amount = base * factor
    if factor != 1.0:
        source += f", × {factor:g} for \"{adj.amount}\""
    if amount > base * factor:
        source += f", kept at {MIN_AUDIBLE_DB:g} dB to stay audible"
    return ToneMove(descriptor=meaning.word, asked=adj.descriptor, direction=adj.direction,
                    amount=float(np.clip(amount, 0.0, MAX_AMOUNT)), amount_source=source,
                    match_score=round(float(meaning.score), 3), match_via=meaning.via, record_id=record_id,
                    source=meaning.source, why=meaning.why, region=meaning.main.label())


def band_move(edit: BandEdit) -> BandMove | None:
    """An explicit dB move → a filter, gain capped at ±12 dB for hearing safety.

    A named frequency becomes a peaking filter (Q 1.41, about one octave); a band word the filter
    in :data:`BAND_FILTERS` (e.g. "bass" → low shelf at 150 Hz). None when the edit names neither.
    """
    if edit.frequency_hz is not None:
        kind, freq, q = "peaking", float(edit.frequency_hz), NAMED_FREQUENCY_Q
        label = f"{freq:g} Hz"
    elif edit.band is not None:
        kind, freq, q = BAND_FILTERS[edit.band]
        label = edit.band
    else:
        return None
    flt = Filter(type=kind, frequency_hz=freq, gain_db=edit.gain_db, q=q)
    return BandMove(label=label, requested_gain_db=float(edit.gain_db), gain_db=flt.gain_db,
                    capped=abs(edit.gain_db) > MAX_GAIN_DB, filter=flt)


def stem_level(edit: StemEdit) -> StemMove:
    """A stem's level move, mute or solo as a :class:`StemMove` (tone words are added by the caller)."""
    if edit.operation in ("mute", "solo"):
        return StemMove(mute=edit.operation == "mute", solo=edit.operation == "solo")
    requested = edit.gain_db if edit.gain_db is not None else STEM_GAINS_DB[edit.operation][edit.amount]
    requested = abs(requested) if edit.operation == "louder" else -abs(requested)
    gain, capped = cap_stem_gain(requested)
    return StemMove(gain_db=gain, requested_gain_db=requested, capped=capped)


def amount_factor(amount: Amount | None) -> float:
    return AMOUNT_FACTORS[amount]


# ------------------------------------------------------------------------------------- plan

def descriptor_filters(rt: Runtime, descriptor: str, direction: str, amount: float,
                       avoid: tuple[Region, ...] = ()) -> list[Filter]:
    """A word's filters: its meaning (:meth:`knowledge.words.WordEQ.lookup`) realised so its main region
    moves TARGET_DB × amount dB (:meth:`knowledge.words.WordEQ.filters`), each gain capped at ±12 dB, kept
    out of the ``avoid`` regions (the "not" words')."""
    return rt.words.filters(rt.words.lookup(descriptor), direction, amount, avoid)


def _move_filters(rt: Runtime, move: ToneMove, avoid: tuple[Region, ...] = ()) -> list[Filter]:
    """A tone move's filters: the word's (:func:`descriptor_filters`), then the person's or picked variant's offset
    (:func:`agent.variants.offset_filters`, × amount, negated for "less")."""
    filters = descriptor_filters(rt, move.descriptor, move.direction, move.amount, avoid)
    if move.offset_db:
        filters += offset_filters(move.offset_db, (1.0 if move.direction == "more" else -1.0) * move.amount)
    return filters


def _kept_out(rt: Runtime, settings: Settings, descriptor: str) -> tuple[tuple[Region, ...], str | None]:
    """The "not" words' main regions that overlap the word's (to keep out of), and their label for the trace."""
    main = rt.words.lookup(descriptor).main
    limits = [(w, rt.words.lookup(w).main) for w in settings.limits]
    overlap = [(w, r) for w, r in limits if r.low_hz < main.high_hz and r.high_hz > main.low_hz]
    return tuple(r for _, r in overlap), ", ".join(f"{r.label()} ({w})" for w, r in overlap) or None


#: A "not" word's region may rise this much (dB, relative to the 100 Hz–16 kHz mean) before it is taken back.
LIMIT_TOLERANCE_DB = 0.3


def limit_calls(rt: Runtime, settings: Settings, calls: list[p.ToolCall]) -> list[p.ToolCall]:
    """For each "not" word ("warmer but not muddy"): when the words' EQ so far moves its main region toward
    it by more than LIMIT_TOLERANCE_DB, one more EQ takes that region back to level."""
    extra: list[p.ToolCall] = []
    for word in settings.limits:
        meaning = rt.words.lookup(word)
        filters = [f for c in [*calls, *extra] if c.tool == "equalize" for f in c.args.filters]
        level = region_level_db(frequency_response_db(filters, FR_GRID_HZ, CALIBRATION_RATE), meaning.main)
        toward = level * meaning.main.sign
        if toward > LIMIT_TOLERANCE_DB:
            amount = round(toward / TARGET_DB, 3)
            extra.append(p.EqualizeCall(args=p.EqualizeArgs(
                descriptor=meaning.word, direction="less", amount=amount, limit=True,
                filters=rt.words.filters(meaning, "less", amount))))
    return extra


def _stem_calls(rt: Runtime, stems: dict[str, StemMove]) -> list[p.ToolCall]:
    """Separation, each stem's EQ/gain/mute/solo, then the remix."""
    calls: list[p.ToolCall] = [p.SeparateCall()]
    for stem, st in stems.items():
        for move in st.tone:
            calls.append(p.StemEqCall(args=p.StemEqArgs(
                stem=stem, descriptor=move.descriptor, direction=move.direction, amount=round(move.amount, 3),
                filters=_move_filters(rt, move))))
        if st.mute:
            calls.append(p.StemMuteCall(args=p.StemArgs(stem=stem)))
        elif st.gain_db:
            calls.append(p.StemGainCall(args=p.StemGainArgs(stem=stem, gain_db=round(st.gain_db, 2),
                                                            requested_gain_db=st.requested_gain_db, capped=st.capped)))
        if st.solo:
            calls.append(p.StemSoloCall(args=p.StemArgs(stem=stem)))
    calls.append(p.RemixCall())
    return calls


def _transfer_call(rt: Runtime, settings: Settings) -> p.TransferCall:
    target, listening = settings.target, settings.listening
    if listening is not None:
        reference, kind = listening.name, "device"
    else:
        reference, kind = rt.store.target_for(target.name).device, "target"
    return p.TransferCall(args=p.TransferArgs(
        method=settings.transfer_method, target=target.name, reference=reference, reference_kind=kind,
        smoothing_octaves=round(TRANSFER_SMOOTHING_OCTAVES, 4), max_boost_db=TRANSFER_MAX_BOOST_DB))


STEM_TOOLS = frozenset({"separate", "stem_eq", "stem_gain", "stem_mute", "stem_solo", "remix"})
"""Plan steps that need the track separated into stems (see :mod:`tools.separate`)."""


def needs_stems(plan: list[p.ToolCall]) -> bool:
    """Whether ``plan`` separates the input into stems (a per-stem request)."""
    return any(call.tool in STEM_TOOLS for call in plan)


def build_plan(rt: Runtime, settings: Settings) -> list[p.ToolCall]:
    """Concrete tool calls: separation and per-stem moves with the remix (when a stem is moved), device
    transfer, one EQ per word, one EQ for explicit band edits, then loudness matching and the
    true-peak limiter."""
    stems = {name: st for name, st in settings.stems.items() if not st.is_empty()}
    calls: list[p.ToolCall] = _stem_calls(rt, stems) if stems else []
    if settings.target is not None:
        calls.append(_transfer_call(rt, settings))
    for move in settings.adjustments:
        avoid, kept_out = _kept_out(rt, settings, move.descriptor)
        calls.append(p.EqualizeCall(args=p.EqualizeArgs(
            descriptor=move.descriptor, direction=move.direction, amount=round(move.amount, 3), source=move.source,
            kept_out=kept_out, filters=_move_filters(rt, move, avoid))))
    calls += limit_calls(rt, settings, calls)
    if settings.band_edits:
        calls.append(p.EqualizeCall(args=p.EqualizeArgs(
            band_edits=[p.BandEditArgs(label=b.label, requested_gain_db=b.requested_gain_db, gain_db=b.gain_db,
                                       capped=b.capped) for b in settings.band_edits],
            filters=[b.filter for b in settings.band_edits])))
    calls.append(p.FinalizeCall(args=p.FinalizeArgs(ceiling_dbtp=CEILING_DBTP)))
    return calls


def plan_filters(plan: list[p.ToolCall]) -> list[Filter]:
    """Every parametric filter of the whole-mix EQ calls, in plan order (for EQ exports)."""
    return [f for call in plan if call.tool == "equalize" for f in call.args.filters]
