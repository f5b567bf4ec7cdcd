"""Understand: text → :class:`Intent`. Fast path (the rule parser, when it explains every word), else
the LLM with one repair attempt, grounded in the request's words, else the rule-based parser.

The result says which path produced it (``fast``, ``llm``, ``llm-repair``, ``rules``) so the
trace can show it. Whatever the LLM says, every edit must be grounded in words of the request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError
from rapidfuzz import fuzz

from agent import fastpath, rules
from agent.llm import LLMBackend, LLMError
from agent.prompts import build_messages
from agent.rules import Vocabulary
from agent.schemas import Intent, intent_json_schema

#: The LLM's reply is JSON of a handful of keys; a longer one is rambling (and would crowd the context).
MAX_REPLY_TOKENS = 160


@dataclass
class Understanding:
    """An extracted intent and how it was obtained.

    Attributes:
        intent: the validated intent.
        path: ``fast`` | ``llm`` | ``llm-repair`` | ``rules`` | ``answer`` (a reply to a pending question).
        raw: the LLM's raw replies, in order (empty when no LLM ran).
        notes: why a fallback ran, or what was dropped as ungrounded.
        seconds: wall time of the whole step.
        fallback: one sentence for the reply when the LLM was asked but the rules read the request (the
            server or model failed, or its replies were invalid twice); None otherwise.
    """

    intent: Intent
    path: str
    raw: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fallback: str | None = None


_UNAVAILABLE = "LLM unavailable: "


def fallback_note(why: str) -> str:
    """The reply's sentence when the planner could not be used (one line): ``"The planner was unavailable
    (WHY); I read your request with the rule-based parser."``"""
    return f"The planner was unavailable ({' '.join(why.split())}); I read your request with the rule-based parser."


_LISTENING_WORDS = re.compile(r"\b(listen\w*|hear\w*|wearing|wear|using|use|have|own|through my|on my)\b")
#: Function words of the other languages people use with SENSE: their tone words are translations.
_NOT_ENGLISH = re.compile(r"[äöüßáéíóúñ¿¡]|\b(bitte|mach|weniger|mehr|etwas|klingen|wie|und|noch|que|más|menos|"
                          r"por favor|hazlo|suene|como|los|las|plus|moins|rends|le son)\b")


def _devices_grounded(intent: Intent, text: str, ruled: Intent, notes: list[str]) -> Intent:
    """Swap target and listening device when the rules read the LLM's target as listened on; move a
    listening device to the target when the request never says it is listened on; drop devices the
    request does not contain."""
    target, listening = intent.target_device, intent.listening_device
    if target and ruled.listening_device and fuzz.WRatio(target.lower(), ruled.listening_device) >= 85 \
            and (not listening or fuzz.WRatio(listening.lower(), ruled.listening_device) < 85):
        notes.append("target and listening device swapped: the request says it is listened on " + repr(target))
        intent = intent.model_copy(update={"target_device": listening or ruled.target_device, "listening_device": target})
    elif listening and not _LISTENING_WORDS.search(text):
        notes.append(f"listening_device={listening!r} moved: the request does not say it is listened on")
        intent = intent.model_copy(update={"listening_device": None, "target_device": target or listening})
    updates = {}
    for key in ("target_device", "listening_device"):
        value = getattr(intent, key)
        if value and value.strip().lower() in ("null", "none", ""):
            updates[key] = None
        elif value and fuzz.partial_ratio(value.lower(), text) < 70:
            notes.append(f"dropped {key}={value!r}: not in the request")
            updates[key] = None
    return intent.model_copy(update=updates) if updates else intent


def _stems_grounded(intent: Intent, text: str, ruled: Intent, notes: list[str]) -> Intent:
    """Stem words are a closed vocabulary: a stem edit needs its stem named outside a clause that keeps
    it as it is ("keep the voice as it is" moves nothing); where the rules read a move, theirs wins."""
    if not intent.stem_edits and not ruled.stem_edits:
        return intent
    said = rules.unprotected(text)
    kept = [e for e in intent.stem_edits if rules.names_stem(said, e.stem)]
    if len(kept) < len(intent.stem_edits):
        notes.append("dropped stem edits whose stem the request does not name (or keeps as it is): "
                     + ", ".join(e.stem for e in intent.stem_edits if e not in kept))
    amount = rules.amount_word(text)  # a small LLM copies "a little" from an example
    by_stem = {e.stem: e.model_copy(update={"gain_db": None, "amount": e.amount if amount else None}) for e in kept}
    by_stem.update({e.stem: e for e in ruled.stem_edits})
    not_tone = set(by_stem) | {"vocal", "drum", "singer", "voice", "guitar", "guitars", "loud", "louder",
                               "quiet", "quieter", "volume", "level"}
    return intent.model_copy(update={"stem_edits": list(by_stem.values()),
                                     "adjustments": [a for a in intent.adjustments if a.descriptor.lower() not in not_tone]})


def _said(descriptor: str, text: str, vocab: Vocabulary | None) -> bool:
    """Whether the request says a tone word: in some form, or a word the prior maps to the same entry."""
    if rules.says(rules.unprotected(text), descriptor):
        return True
    if vocab is None:
        return fuzz.partial_ratio(descriptor.lower(), text) >= 80
    key = vocab.word_key(descriptor)
    return key is not None and any(vocab.word_key(t) == key for t in re.findall(r"[a-z]+", rules.unprotected(text)))


def _words_grounded(intent: Intent, text: str, ruled: Intent, vocab: Vocabulary | None, notes: list[str]) -> Intent:
    """Numbers come from the text (band edits from the rules' regular expressions; none without a dB
    value); tone words must be said (in English requests: other languages are translated), and beside a
    dB move only words the prior knows are kept (the number is the instruction, "the kick" is no word)."""
    updates: dict = {}
    edits = ruled.band_edits if rules.has_db_value(text) else []
    if [e.model_dump() for e in edits] != [e.model_dump() for e in intent.band_edits]:
        notes.append("band edits read from the request's numbers" if edits else
                     "dropped band edits: the request names no dB value")
        updates["band_edits"] = edits
    covered = {e.band for e in edits if e.band}
    english = not _NOT_ENGLISH.search(text)
    words = [a for a in intent.adjustments if not any(ch.isdigit() for ch in a.descriptor)
             and a.descriptor.lower() not in covered and (not english or _said(a.descriptor, text, vocab))
             and not (edits and vocab is not None and not vocab.plausible(a.descriptor))]  # "the kick …, 4 dB out" 
    if len(words) < len(intent.adjustments):
        notes.append("dropped tone words the request does not say: "
                     + ", ".join(a.descriptor for a in intent.adjustments if a not in words))
        updates["adjustments"] = words
    if english:  # "a little" / "a lot" as the word's own clause says it (a small LLM drops or copies them)
        said = [a.model_copy(update={"amount": rules.amount_of(text, a.descriptor)}) for a in updates.get("adjustments", words)]
        if said != updates.get("adjustments", words):
            notes.append("amounts read from each word's clause")
            updates["adjustments"] = said
    if vocab is not None:
        updates["adjustments"] = _with_ruled_words(updates.get("adjustments", words), ruled, vocab, notes)
    return intent.model_copy(update=updates) if updates else intent


def _with_ruled_words(words: list, ruled: Intent, vocab: Vocabulary, notes: list[str]) -> list:
    """The closed vocabulary's reading completes the LLM's: a word the rules read that the LLM left out ("the
    low end is really muddy", "clean up the low mids" given as a 0 dB band edit) is added, and where the rules
    read a word's direction from its verb ("lift the mids": more; "but not muddy": not) theirs wins."""
    key = lambda word: vocab.word_key(word) or word.lower()  # noqa: E731
    ruled_by_key = {key(a.descriptor): a for a in ruled.adjustments if vocab.known(a.descriptor)}
    out = []
    for a in words:  # the closed vocabulary's verbs decide the direction ("lift the mids", "but not muddy")
        said = ruled_by_key.get(key(a.descriptor))
        out.append(a.model_copy(update={"direction": said.direction}) if said is not None else a)
    have = {key(a.descriptor) for a in out}
    missing = [a for k, a in ruled_by_key.items() if k not in have]
    if missing:
        notes.append("added the tone words the closed vocabulary reads: " + ", ".join(a.descriptor for a in missing))
    return (out + missing)[:6]


def grounded(intent: Intent, request: str, notes: list[str], vocab: Vocabulary | None = None,
             ruled: Intent | None = None) -> Intent:
    """Keep the LLM to what the request says (devices, stems, numbers, tone words); see the helpers.

    ``ruled`` is the rule parser's reading of the request (parsed here when not given)."""
    text = rules.normalise(request)
    ruled = ruled or _rules(request, vocab)
    if intent.action == "follow_up" and intent.follow_up == "compare" and ruled.action == "process" and ruled.target_device:
        notes.append("\"compare with\" a device: render that device")
        intent = ruled
    if intent.action == "off_topic" and vocab is not None and ruled.action == "process" and (
            (ruled.target_device and vocab.device_known(ruled.target_device))
            or any(vocab.known(a.descriptor) for a in ruled.adjustments)):
        notes.append("the LLM read it as off-topic, but it names a device or a sound word: the rules' reading")
        intent = ruled
    intent = _devices_grounded(intent, text, ruled, notes)
    intent = _stems_grounded(intent, text, ruled, notes)
    return _words_grounded(intent, text, ruled, vocab, notes) if intent.action == "process" else intent


def _rules(request: str, vocab: Vocabulary | None) -> Intent:
    """The rule-based parser's reading, with the closed vocabulary when there is one."""
    return rules.parse(request, vocab)


def _changes_nothing(intent: Intent) -> bool:
    return intent.action == "process" and not (intent.target_device or intent.listening_device or intent.adjustments
                                               or intent.band_edits or intent.stem_edits)


def _ask_llm(request: str, llm: LLMBackend, vocab: Vocabulary | None, ruled: Intent, raw: list[str],
             notes: list[str]) -> tuple[Intent, str] | None:
    """The LLM's grounded intent and its path (llm | llm-repair), or None when it failed twice or is down."""
    schema = intent_json_schema()
    messages = build_messages(request)
    for path in ("llm", "llm-repair"):
        try:
            reply = llm.complete_json(messages, schema, max_tokens=MAX_REPLY_TOKENS)
        except LLMError as exc:
            notes.append(f"{_UNAVAILABLE}{exc}")
            return None
        raw.append(reply)
        try:
            return grounded(Intent.model_validate_json(reply), request, notes, vocab, ruled), path
        except ValidationError as exc:
            error = exc.errors()[0]
            notes.append(f"invalid LLM output ({path}): {error['msg']} at {'.'.join(map(str, error['loc']))}")
            messages = [*messages, {"role": "assistant", "content": reply[:400]},
                        {"role": "user", "content": f"That JSON is invalid ({error['msg']}). Reply again with JSON only, "
                                                    f"with the keys {', '.join(schema['properties'])}."}]
    return None


def warm_up(llm: LLMBackend | None) -> float:
    """Ask the planner one request ("warmer") so that the first real one does not wait for it.

    A fresh process's first planner request takes ~2.5 s longer than the next ones (the prompt prefix's
    KV state is read from disk, llama.cpp allocates its buffers); a service that answers people (``sense
    voice``) pays that at start instead.

    Returns:
        Seconds it took (0.0 without an LLM); an unreachable backend is not an error here.
    """
    if llm is None:
        return 0.0
    start = time.perf_counter()
    try:
        llm.complete_json(build_messages("warmer"), intent_json_schema(), max_tokens=MAX_REPLY_TOKENS)
    except LLMError:
        pass  # the first real request reports it
    return time.perf_counter() - start


def understand(request: str, llm: LLMBackend | None, vocab: Vocabulary | None = None) -> Understanding:
    """Extract the intent of ``request``.

    Args:
        request: the person's words (any language the LLM reads).
        llm: the planner backend, or None to use the rule-based parser only.
        vocab: the closed vocabulary for the fast path and for grounding tone words (None: no fast path).
    Returns:
        An :class:`Understanding`; never raises for bad LLM output (falls back to rules).
    """
    start = time.perf_counter()
    raw: list[str] = []
    notes: list[str] = []

    def done(intent: Intent, path: str) -> Understanding:
        return Understanding(intent, path, raw, notes, time.perf_counter() - start)

    ruled = _rules(request, vocab)  # read once: the fast path, the grounding and the fallback all use it
    if vocab is not None and fastpath.is_confident(request, ruled, vocab):
        notes.append("every word is in the rule parser's closed vocabulary: no LLM needed")
        return done(ruled, "fast")
    if llm is None:
        notes.append("no LLM configured")
        return done(ruled, "rules")
    answer = _ask_llm(request, llm, vocab, ruled, raw, notes)
    if answer is None:
        why = next((n.removeprefix(_UNAVAILABLE) for n in reversed(notes) if n.startswith(_UNAVAILABLE)),
                   "its replies were not a valid intent, twice")
        found = done(ruled, "rules")
        found.fallback = fallback_note(why)
        return found
    intent, path = answer
    if _changes_nothing(intent):
        notes.append("the LLM's intent changes nothing: re-read with the rule-based parser")
        return done(ruled, "rules")
    return done(intent, path)
