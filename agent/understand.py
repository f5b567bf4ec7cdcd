"""Understand: text → :class:`Intent` with the LLM, one repair attempt, then the rule-based parser.

The result says which path produced it (``llm``, ``llm-repair`` or ``rules``) so the trace can
show it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from pydantic import ValidationError
from rapidfuzz import fuzz

from agent import rules
from agent.llm import LLMBackend, LLMError
from agent.prompts import build_messages
from agent.schemas import Intent, intent_json_schema


@dataclass
class Understanding:
    """An extracted intent and how it was obtained.

    Attributes:
        intent: the validated intent.
        path: ``llm`` | ``llm-repair`` | ``rules``.
        raw: the LLM's raw replies, in order (empty for rules only).
        notes: why a fallback ran, or what was dropped as ungrounded.
        seconds: wall time of the whole step.
    """

    intent: Intent
    path: str
    raw: list[str]
    notes: list[str]
    seconds: float


_LISTENING_WORDS = re.compile(r"\b(listen\w*|hear\w*|wearing|wear|using|use|have|own|through my|on my)\b")


def _grounded(intent: Intent, request: str, notes: list[str]) -> Intent:
    """Keep the LLM to what the request says.

    Device names the request does not contain are dropped (a small LLM sometimes copies an
    example). Numbers are read from the text, not from the LLM: when the request holds a dB
    value, the band edits come from the rule parser's regular expressions, and "adjustments"
    that are really numbers ("8 kHz"), not in the text, or the band an edit already sets, are dropped.
    Stem edits must name a stem the request names; the rule parser's reading of a stem wins, and
    stem or level words ("drums", "loud") are not tone adjustments. Target and listening device are
    swapped when the rule parser reads the LLM's target as what the person listens on; a listening
    device in a request that says nothing about listening becomes the target (or is dropped).
    """
    text = request.lower()
    updates: dict = {}
    ruled = rules.parse(request)
    target, listening = intent.target_device, intent.listening_device
    if target and listening and ruled.listening_device \
            and fuzz.WRatio(target.lower(), ruled.listening_device) >= 85 > fuzz.WRatio(listening.lower(), ruled.listening_device):
        notes.append("target and listening device swapped: the request says it is listened on " + repr(target))
        intent = intent.model_copy(update={"target_device": listening, "listening_device": target})
    elif listening and not _LISTENING_WORDS.search(text):
        notes.append(f"listening_device={listening!r} moved: the request does not say it is listened on")
        intent = intent.model_copy(update={"listening_device": None, "target_device": target or listening})
    for key in ("target_device", "listening_device"):
        value = getattr(intent, key)
        if value and value.strip().lower() in ("null", "none", ""):
            updates[key] = None
        elif value and fuzz.partial_ratio(value.lower(), text) < 70:
            notes.append(f"dropped {key}={value!r}: not in the request")
            updates[key] = None
    said = ruled.stem_edits
    if intent.stem_edits or said:
        kept = [e for e in intent.stem_edits if rules.names_stem(text, e.stem)]
        if len(kept) < len(intent.stem_edits):
            notes.append("dropped stem edits whose stem the request does not name: "
                         + ", ".join(e.stem for e in intent.stem_edits if e not in kept))
        amount = rules.amount_word(text)  # a small LLM copies "a little" from an example
        by_stem = {e.stem: e.model_copy(update={"gain_db": None, "amount": e.amount if amount else None}) for e in kept}
        # stem words are a closed vocabulary: where the rules read a stem move, theirs wins (and its dB number)
        by_stem.update({e.stem: e for e in said})
        if [e.model_dump() for e in by_stem.values()] != [e.model_dump() for e in intent.stem_edits]:
            notes.append("stem edits checked against the request's stem words")
        updates["stem_edits"] = list(by_stem.values())
        not_tone = set(by_stem) | {"vocal", "drum", "singer", "voice", "guitar", "guitars", "loud", "louder",
                                   "quiet", "quieter", "volume", "level"}
        updates["adjustments"] = [a for a in intent.adjustments if a.descriptor.lower() not in not_tone]
    if intent.action == "process" and rules.has_db_value(text):
        edits = rules.parse(request).band_edits
        if [e.model_dump() for e in edits] != [e.model_dump() for e in intent.band_edits]:
            notes.append("band edits read from the request's numbers")
        updates["band_edits"] = edits
        covered = {e.band for e in edits if e.band}
        updates["adjustments"] = [  # drop words that are really numbers, not said, or covered by an edit
            a for a in updates.get("adjustments", intent.adjustments)
            if not any(ch.isdigit() for ch in a.descriptor) and a.descriptor.lower() not in covered
            and fuzz.partial_ratio(a.descriptor.lower(), text) >= 80]
    return intent.model_copy(update=updates) if updates else intent


def understand(request: str, llm: LLMBackend | None) -> Understanding:
    """Extract the intent of ``request``.

    Args:
        request: the person's words (any language the LLM reads).
        llm: the planner backend, or None to use the rule-based parser only.
    Returns:
        An :class:`Understanding`; never raises for bad LLM output (falls back to rules).
    """
    start = time.perf_counter()
    raw: list[str] = []
    notes: list[str] = []
    if llm is None:
        notes.append("no LLM configured")
        return Understanding(rules.parse(request), "rules", raw, notes, time.perf_counter() - start)
    schema = intent_json_schema()
    messages = build_messages(request)
    for path in ("llm", "llm-repair"):
        try:
            reply = llm.complete_json(messages, schema)
        except LLMError as exc:
            notes.append(f"LLM unavailable: {exc}")
            break
        raw.append(reply)
        try:
            intent = _grounded(Intent.model_validate_json(reply), request, notes)
            empty = intent.action == "process" and not (intent.target_device or intent.listening_device
                                                        or intent.adjustments or intent.band_edits or intent.stem_edits)
            if empty:
                notes.append("the LLM's intent changes nothing: re-read with the rule-based parser")
                return Understanding(rules.parse(request), "rules", raw, notes, time.perf_counter() - start)
            return Understanding(intent, path, raw, notes, time.perf_counter() - start)
        except ValidationError as exc:
            error = exc.errors()[0]
            notes.append(f"invalid LLM output ({path}): {error['msg']} at {'.'.join(map(str, error['loc']))}")
            messages = messages + [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": f"That JSON is invalid ({error['msg']}). Reply again with JSON only, "
                                            f"with the keys {', '.join(schema['properties'])}."},
            ]
    return Understanding(rules.parse(request), "rules", raw, notes, time.perf_counter() - start)
