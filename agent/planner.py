"""Plan: what was said and retrieved → typed settings pieces → concrete, typed tool calls.

Deterministic. Amounts come from the person's own rated history when there is a similar
request, else the default audible move; what a word means comes from the expert vocabulary beside
the word→EQ population prior (:mod:`knowledge.words`); the LLM never picks a number.
"""

from __future__ import annotations

import numpy as np

from agent import plan as p
from agent.runtime import Runtime
from agent.schemas import Adjustment, Amount, BandEdit, StemEdit
from agent.settings import MAX_AMOUNT, BandMove, Settings, StemMove, ToneMove, cap_stem_gain
from knowledge.fr_store import FR_GRID_HZ
from knowledge.expert import Region
from knowledge.words import CALIBRATION_RATE, TARGET_DB, region_level_db
from tools.eq import MAX_GAIN_DB, Filter, frequency_response_db

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


def tone_move(rt: Runtime, user: str, request: str, adj: Adjustment) -> ToneMove:
    """Resolve one tone word (expert vocabulary beside the crowd prior, :mod:`knowledge.words`) and pick
    its amount on the calibrated scale.

    The amount is the person's liked amount for that word from a similar rated request, else the
    default move (1: the word's region moves TARGET_DB); × 0.5 for "a little", × 2 for "a lot"; clipped
    to 0 … MAX_AMOUNT. ``adj.direction`` must be "more" or "less" (a "not" word is a limit, see
    :func:`limit_calls`).
    """
    meaning = rt.words.lookup(adj.descriptor)
    history = rt.prefs.history_amount(user, meaning.word, adj.direction, request)
    if history is not None:
        base, record = history
        source, record_id = f"your earlier rated request \"{record.request}\" (amount {base:.2f})", record.id
    else:
        base, record_id = 1.0, None
        source = f"the default move ({TARGET_DB:g} dB)"
    factor = AMOUNT_FACTORS[adj.amount]
    if factor != 1.0:
        source += f", × {factor:g} for \"{adj.amount}\""
    return ToneMove(descriptor=meaning.word, asked=adj.descriptor, direction=adj.direction,
                    amount=float(np.clip(base * factor, 0.0, MAX_AMOUNT)), amount_source=source,
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
                filters=descriptor_filters(rt, move.descriptor, move.direction, move.amount))))
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
            kept_out=kept_out, filters=descriptor_filters(rt, move.descriptor, move.direction, move.amount, avoid))))
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
