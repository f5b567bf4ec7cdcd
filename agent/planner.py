"""Plan: turn an intent and what was retrieved into settings and concrete tool calls.

Deterministic. Amounts come from the person's own rated history when there is a similar
request, else from the word→EQ population prior; the LLM never picks a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.runtime import Runtime
from agent.schemas import Adjustment, BandEdit, Intent, StemEdit, ToolCall
from knowledge.descriptors import AUDEALIZE_FREQS_HZ, AUDEALIZE_Q
from tools.eq import MAX_GAIN_DB, Filter

AMOUNT_FACTORS: dict[str | None, float] = {None: 1.0, "normal": 1.0, "a little": 0.5, "a lot": 2.0}
FOLLOW_UP_FACTORS = {"more": 1.5, "less": 0.6}
#: Audealize gains are 5 dB × amount × curve: amount 2.4 reaches the ±12 dB hearing-safety cap.
MAX_AMOUNT = MAX_GAIN_DB / 5.0
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
#: Deepest stem cut short of muting, dB (boosts are capped at +12 dB like every gain).
MAX_STEM_CUT_DB = -30.0


def adjustment_settings(rt: Runtime, user: str, request: str, adjustments: list[Adjustment]) -> list[dict[str, Any]]:
    """Resolve each adjustment's word against the prior and pick its amount.

    Args:
        rt: loaded runtime.
        user: whose history to consult.
        request: the request text (similar past requests are preferred).
        adjustments: from the intent.
    Returns:
        One dict per adjustment: ``descriptor`` (word in the prior), ``asked`` (the person's word),
        ``match_score``, ``direction``, ``amount`` (0 … 2.4, Audealize scale: 1 = curve spanning ±5 dB),
        ``amount_source`` (plain words), ``record_id`` (history record used, or None).
    """
    settings = []
    for adj in adjustments:
        match = rt.prior.lookup(adj.descriptor)
        history = rt.prefs.history_amount(user, match.word, adj.direction, request)
        if history is not None:
            base, record = history
            source = f"your earlier rated request \"{record.request}\" (amount {base:.2f})"
            record_id = record.id
        else:
            base = rt.prior.default_amount(match)
            source = (f"population prior: Audealize word \"{match.word}\" ({match.num} contributors, "
                      f"agreement {match.agreement:.2f})")
            record_id = None
        factor = AMOUNT_FACTORS[adj.amount]
        if factor != 1.0:
            source += f", × {factor:g} for \"{adj.amount}\""
        settings.append({
            "descriptor": match.word,
            "asked": adj.descriptor,
            "match_score": round(float(match.score), 3),
            "match_via": match.via,
            "direction": adj.direction,
            "amount": float(np.clip(base * factor, 0.0, MAX_AMOUNT)),
            "amount_source": source,
            "record_id": record_id,
        })
    return settings


def band_edit_settings(edits: list[BandEdit]) -> list[dict[str, Any]]:
    """Explicit dB moves → filters, with the gain capped at ±12 dB for hearing safety.

    A named frequency becomes a peaking filter (Q 1.41, about one octave); a band word the filter
    in :data:`BAND_FILTERS` (e.g. "bass" → low shelf at 150 Hz).
    Returns:
        One dict per edit: ``label``, ``requested_gain_db``, ``gain_db`` (capped), ``capped`` (bool),
        ``filter`` (a :class:`tools.eq.Filter` as a dict).
    """
    settings = []
    for edit in edits:
        if edit.frequency_hz is not None:
            kind, freq, q = "peaking", float(edit.frequency_hz), NAMED_FREQUENCY_Q
            label = f"{freq:g} Hz"
        elif edit.band is not None:
            kind, freq, q = BAND_FILTERS[edit.band]
            label = edit.band
        else:
            continue
        flt = Filter(type=kind, frequency_hz=freq, gain_db=edit.gain_db, q=q)
        settings.append({"label": label, "requested_gain_db": float(edit.gain_db), "gain_db": flt.gain_db,
                         "capped": abs(edit.gain_db) > MAX_GAIN_DB, "filter": flt.model_dump()})
    return settings


def _stem_gain(gain_db: float) -> tuple[float, bool]:
    """(capped gain, whether it was capped): +12 dB at most, MAX_STEM_CUT_DB at least."""
    capped = float(np.clip(gain_db, MAX_STEM_CUT_DB, MAX_GAIN_DB))
    return capped, capped != gain_db


def stem_settings(edits: list[StemEdit], adjustments: list[dict]) -> dict[str, dict]:
    """Per-stem settings from this request's stem edits.

    Args:
        edits: from the intent.
        adjustments: from :func:`adjustment_settings`; they go to the stems whose operation is ``tone``.
    Returns:
        stem → ``{gain_db, requested_gain_db, capped, mute, solo, adjustments}``; only the keys this
        request sets (a level move sets gain/mute/solo, a tone move sets adjustments).
    """
    stems: dict[str, dict] = {}
    for edit in edits:
        entry = stems.setdefault(edit.stem, {})
        if edit.operation == "tone":
            entry["adjustments"] = adjustments
        elif edit.operation in ("mute", "solo"):
            entry.update({"mute": edit.operation == "mute", "solo": edit.operation == "solo", "gain_db": 0.0,
                          "requested_gain_db": 0.0, "capped": False})
        else:
            requested = edit.gain_db if edit.gain_db is not None else STEM_GAINS_DB[edit.operation][edit.amount]
            requested = abs(requested) if edit.operation == "louder" else -abs(requested)
            gain, capped = _stem_gain(requested)
            entry.update({"gain_db": gain, "requested_gain_db": requested, "capped": capped, "mute": False, "solo": False})
    return stems


def merge_settings(previous: dict | None, intent: Intent, target: dict | None, listening: dict | None,
                   adjustments: list[dict], band_edits: list[dict] = (), stems: dict[str, dict] | None = None) -> dict:
    """New settings = previous ones updated by this request (a new device or word replaces the old).

    Args:
        previous: the conversation's current settings, or None.
        intent: this turn's intent.
        target: resolved target device ``{name, type, sources, via, alternatives}`` or None.
        listening: resolved listening device or None.
        adjustments: from :func:`adjustment_settings`.
        band_edits: from :func:`band_edit_settings` (an edit of the same frequency or band replaces the old one).
        stems: from :func:`stem_settings` (a stem's new level replaces its old one; its words are merged
            like the global ones).
    """
    settings = {"target": None, "listening": None, "adjustments": [], "band_edits": [], "stems": {}} if previous is None else {
        "target": previous["target"], "listening": previous["listening"], "adjustments": list(previous["adjustments"]),
        "band_edits": list(previous.get("band_edits", [])), "stems": dict(previous.get("stems", {}))}
    if target is not None:
        settings["target"] = target
    if listening is not None:
        settings["listening"] = listening
    for adj in adjustments:
        settings["adjustments"] = [a for a in settings["adjustments"] if a["descriptor"] != adj["descriptor"]] + [adj]
    for edit in band_edits:
        settings["band_edits"] = [e for e in settings["band_edits"] if e["label"] != edit["label"]] + [edit]
    for stem, new in (stems or {}).items():
        old = settings["stems"].get(stem, {"gain_db": 0.0, "requested_gain_db": 0.0, "capped": False, "mute": False,
                                           "solo": False, "adjustments": []})
        words = list(old["adjustments"])
        for adj in new.get("adjustments", []):
            words = [a for a in words if a["descriptor"] != adj["descriptor"]] + [adj]
        settings["stems"][stem] = {**old, **{k: v for k, v in new.items() if k != "adjustments"}, "adjustments": words}
    return settings


def has_changes(settings: dict | None) -> bool:
    """Whether settings change anything (a device, a word, a band edit or a stem move)."""
    return settings is not None and bool(settings["target"] or settings["adjustments"] or settings.get("band_edits")
                                         or settings.get("stems"))


def scale_settings(settings: dict, follow_up: str) -> dict:
    """"more" / "less" follow-up: scale every word's amount, every band edit's gain and every stem's
    gain (capped; a mute or solo stays)."""
    factor = FOLLOW_UP_FACTORS[follow_up]
    band_edits = []
    for edit in settings.get("band_edits", []):
        flt = Filter(**{**edit["filter"], "gain_db": edit["gain_db"] * factor})
        band_edits.append({**edit, "gain_db": flt.gain_db, "filter": flt.model_dump(),
                           "capped": edit["capped"] or abs(edit["gain_db"] * factor) > MAX_GAIN_DB})
    def scaled(words: list[dict]) -> list[dict]:
        return [{**a, "amount": float(np.clip(a["amount"] * factor, 0.0, MAX_AMOUNT)),
                 "amount_source": f"{a['amount_source']}, then × {factor:g} (\"{follow_up}\")"} for a in words]

    stems = {}
    for stem, st in settings.get("stems", {}).items():
        gain, capped = _stem_gain(st["gain_db"] * factor)
        stems[stem] = {**st, "gain_db": gain, "capped": st["capped"] or capped, "adjustments": scaled(st["adjustments"])}
    return {**settings, "adjustments": scaled(settings["adjustments"]), "band_edits": band_edits, "stems": stems}


def descriptor_filters(rt: Runtime, descriptor: str, direction: str, amount: float) -> list[Filter]:
    """The Audealize 40-band peaking EQ for a word: gain_i = 5 · (±amount) · curve_i dB, Q 4.31.

    Source: Seetharaman & Pardo, "Audealize" (2016); applied as in audealize_api's equalizer.
    """
    match = rt.prior.lookup(descriptor)
    gains = rt.prior.gains_db(match, amount if direction == "more" else -amount)
    return [Filter(type="peaking", frequency_hz=float(f), gain_db=float(g), q=AUDEALIZE_Q)
            for f, g in zip(AUDEALIZE_FREQS_HZ, gains) if abs(g) >= 0.05]


def _stem_calls(rt: Runtime, stems: dict[str, dict]) -> list[ToolCall]:
    """Separation, each stem's EQ/gain/mute/solo, then the remix."""
    calls = [ToolCall(tool="separate", args={"method": "auto"})]
    for stem, st in stems.items():
        for adj in st["adjustments"]:
            filters = descriptor_filters(rt, adj["descriptor"], adj["direction"], adj["amount"])
            calls.append(ToolCall(tool="stem_eq", args={
                "stem": stem, "descriptor": adj["descriptor"], "direction": adj["direction"],
                "amount": round(adj["amount"], 3), "filters": [f.model_dump() for f in filters]}))
        if st["mute"]:
            calls.append(ToolCall(tool="stem_mute", args={"stem": stem}))
        elif st["gain_db"]:
            calls.append(ToolCall(tool="stem_gain", args={"stem": stem, "gain_db": round(st["gain_db"], 2),
                                                          "requested_gain_db": st["requested_gain_db"],
                                                          "capped": st["capped"]}))
        if st["solo"]:
            calls.append(ToolCall(tool="stem_solo", args={"stem": stem}))
    calls.append(ToolCall(tool="remix", args={"stems": "vocals + drums + bass + other"}))
    return calls


def build_plan(rt: Runtime, settings: dict) -> list[ToolCall]:
    """Concrete tool calls: separation and per-stem moves with the remix (when a stem is named), device
    transfer, one EQ per word, one EQ for explicit band edits, then loudness matching and the
    true-peak limiter."""
    calls: list[ToolCall] = _stem_calls(rt, settings["stems"]) if settings.get("stems") else []
    target, listening = settings["target"], settings["listening"]
    if target is not None:
        if listening is not None:
            reference = {"name": listening["name"], "kind": "device"}
        else:
            reference = {"name": rt.store.target_for(target["name"]).device, "kind": "target"}
        calls.append(ToolCall(tool="device_transfer", args={
            "method": settings.get("transfer_method", "dsp"),
            "target": target["name"],
            "reference": reference["name"],
            "reference_kind": reference["kind"],
            "smoothing_octaves": round(TRANSFER_SMOOTHING_OCTAVES, 4),
            "max_boost_db": TRANSFER_MAX_BOOST_DB,
        }))
    for adj in settings["adjustments"]:
        filters = descriptor_filters(rt, adj["descriptor"], adj["direction"], adj["amount"])
        calls.append(ToolCall(tool="equalize", args={
            "descriptor": adj["descriptor"],
            "direction": adj["direction"],
            "amount": round(adj["amount"], 3),
            "filters": [f.model_dump() for f in filters],
        }))
    if settings.get("band_edits"):
        calls.append(ToolCall(tool="equalize", args={
            "band_edits": [{k: e[k] for k in ("label", "requested_gain_db", "gain_db", "capped")}
                           for e in settings["band_edits"]],
            "filters": [e["filter"] for e in settings["band_edits"]],
        }))
    calls.append(ToolCall(tool="finalize", args={"loudness": "match input", "ceiling_dbtp": CEILING_DBTP}))
    return calls
