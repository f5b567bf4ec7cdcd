"""The dialogue manager: the conversation's state and the rules for reading a turn against it.

State (:class:`Conversation`): the settings that apply now, an undo and a redo stack, a pending
clarifying question with its candidates, the last result. A turn's :class:`~agent.schemas.Intent`
(what was said) is read against it by :func:`read_turn`:

- a reply to a pending question (an ordinal, a type such as "the over-ear ones", a name, "yes",
  "never mind") completes the request that asked it (:func:`reply_to_pending`, run before any LLM);
- follow-ups: "a bit more" / "too much" scale everything; undo / redo / reset; compare;
- the same word again adds to its amount ("even warmer", "a little less harsh"), a new word is
  added, a new device replaces the old; "instead" replaces the words, a correction ("actually …",
  "no, …") starts again from the settings before the last change;
- what cannot be used is noted, not fatal: an unknown listening device only stops a request that
  needs it (a device transfer); a tone change goes ahead and the reply says what was left out.

Device names and words are resolved here (FR store, profile, prior); the result is typed
:class:`~agent.settings.Settings`, or a question / an answer, as a :class:`Decision`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import BaseModel, Field

from agent import planner, rules, variants
from agent.runtime import Runtime
from agent.schemas import Intent, StemName
from agent.settings import DeviceRef, Settings, StemMove, ToneMove, merge_tone
from agent.variants import VariantSet
from knowledge.descriptors import EMBEDDING_CONFIDENT

OFF_TOPIC_REPLY = ("I'm SENSE, an audio assistant: I can make your audio sound like it's on a given headphone or "
                   "earbud, or change its tone (\"less harsh\", \"warmer\", \"more bass\"). I can't help with that one.")
EMPTY_REPLY = ("Tell me how it should sound: a device (\"like it's on my AirPods\") or a tone "
               "(\"less harsh\", \"warmer\", \"more bass\").")
VOLUME_REPLY = ("I keep every result at the loudness of your original, so what you compare is the tone, not the "
                "level: use your player's volume for that. To make one part louder, name it: \"louder vocals\", "
                "\"quieter drums\".")
#: Stems whose tone words are applied on the stem itself. Tone words about the other stems ("punchier
#: drums", "the strings more air") go to the whole mix: the separation cannot isolate those parts well
#: enough for an EQ to stay on them (docs/SEPARATION.md); their level moves stay per stem.
TONE_ON_STEMS: frozenset[str] = frozenset({"vocals"})
_CORRECTION = re.compile(r"^(?:(?:hmm+|oh|um+|well|ok(?:ay)?)[,.!]?\s+)*(?:actually\b|no[,.!]|nope\b|scratch that\b|"
                         r"forget (?:that|it)\b|not that\b|rather\b)")
_INSTEAD = re.compile(r"\binstead\b")
_YES = re.compile(r"^(?:yes|yeah|yep|sure|ok(?:ay)?|do it|go ahead|please do|that one|right|correct)\b")
_CANCEL = re.compile(r"^(?:never ?mind|forget (?:it|that|about it|my \w+)|cancel|skip (?:it|that)|no thanks?|"
                     r"don'?t bother)\b[\s,.;:!-]*")
_ORDINALS = {"first": 0, "1st": 0, "one": 0, "1": 0, "second": 1, "2nd": 1, "two": 1, "2": 1, "third": 2,
             "3rd": 2, "three": 2, "3": 2, "last": -1}
_TYPE_WORDS = {"over-ear": ("over-ear", "over ear", "overear", "headphones", "cans", "big ones", "wh"),
               "in-ear": ("in-ear", "in ear", "earbuds", "buds", "iems", "iem", "wf", "true wireless"),
               "earbud": ("earbud", "earbuds", "buds")}
_REPLY_FILLER = frozenset("the a an ok okay then one ones pair i mean meant it its it's those these that this "
                          "please yes yeah just my version model".split())


class PendingQuestion(BaseModel):
    """A clarifying question waiting for its answer.

    Attributes:
        kind: "device" (which model?) or "word" (is this the word you mean?).
        intent: the request that asked it; the answer completes it.
        request: that request's text.
        role: the device role the question is about (device questions).
        asked: what the person said that needs clearing up ("Sony XM4", "flubby").
        candidates: models (or the suggested word) the question offered, best first.
        types: candidate → device type, for answers like "the over-ear ones".
    """

    kind: Literal["device", "word"]
    intent: Intent
    request: str
    role: Literal["target_device", "listening_device"] | None = None
    asked: str = ""
    candidates: list[str] = Field(default_factory=list)
    types: dict[str, str] = Field(default_factory=dict)


class LastResult(BaseModel):
    """The last processed result: files and loudness (for "compare" and rating), and what it did (for
    "what did you change?"): the lead sentence, the reply's detail lines, each stage's curve in dB at
    the 1/3-octave centres of :data:`THIRD_OCTAVES_HZ`; the variants offered with it (:mod:`agent.variants`)."""

    input: str
    audio: str
    lufs_in: float
    lufs_out: float
    record_id: int | None = None
    summary: str = ""
    steps: list[str] = Field(default_factory=list)
    stages: dict[str, list[float]] = Field(default_factory=dict)
    variants: VariantSet | None = None


#: 1/3-octave centres, 20 Hz–20 kHz (ISO 266), where a last result's stage curves are kept.
THIRD_OCTAVES_HZ = tuple(float(1000 * 2 ** (k / 3)) for k in range(-17, 14))


class Conversation(BaseModel):
    """One conversation's memory (kept by the graph's checkpointer per thread).

    Attributes:
        settings: what applies now (None: the original).
        undo: earlier settings, most recent last (None entries: the original).
        redo: settings undone, most recent last.
        pending: a clarifying question waiting for its answer.
        last: the last processed result.
        answered: the models the last answer pointed at (best first): what "make it sound like those" means.
        suggested: the request the last answer proposed ("less bright"): what "fix it" then does.
        turns: turns so far.
    """

    settings: Settings | None = None
    undo: list[Settings | None] = Field(default_factory=list)
    redo: list[Settings | None] = Field(default_factory=list)
    pending: PendingQuestion | None = None
    last: LastResult | None = None
    answered: list[str] = Field(default_factory=list)
    suggested: str | None = None
    turns: int = 0

    def applied(self, settings: Settings | None) -> Conversation:
        """The conversation after new settings were applied (the old ones go on the undo stack)."""
        return self.model_copy(update={"settings": settings, "undo": [*self.undo, self.settings], "redo": [],
                                       "pending": None, "answered": [], "suggested": None})


@dataclass
class TurnInput:
    """One turn as the dialogue manager sees it."""

    request: str
    user: str = "default"
    listening_device: str | None = None  # the device the person set for every turn (CLI option, web UI)
    has_audio: bool = True
    input_path: str | None = None  # the audio worked on: tone amounts measure it (planner.content_amount)


class VariantPick(BaseModel):
    """A pick between offered variants: the chosen setting over the others (40 floats each, dB, word's "more" space)."""

    word: str
    direction: str
    letter: str
    chosen_db: list[float]
    rejected_db: list[list[float]]
    record_id: int | None = None


@dataclass
class Decision:
    """What a turn means for the conversation.

    Attributes:
        status: "apply" (process the audio with ``conversation.settings``), "answer" or "question".
        conversation: the conversation after this turn.
        reply: the answer or question (None for "apply": the reasoning is the reply).
        notes: how the turn was read, for the trace.
        picked: a variant the turn picked (evidence for the person's model, stored by the dialogue node).
    """

    status: Literal["apply", "answer", "question"]
    conversation: Conversation
    reply: str | None = None
    notes: list[str] = field(default_factory=list)
    picked: VariantPick | None = None


# --------------------------------------------------------------------------------- pending

@dataclass
class PendingReply:
    """How a turn relates to a pending question: ``choice`` (the candidate picked), ``narrow`` (the answer
    fits several candidates: ask again about those), ``cancel`` (with the rest of the request, possibly
    empty), or ``none`` (a new request)."""

    kind: Literal["choice", "narrow", "cancel", "none"]
    choice: str | None = None
    rest: str = ""
    candidates: list[str] = field(default_factory=list)  # "narrow": the candidates the answer still fits


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[\w\-]+", text.lower()) if w not in _REPLY_FILLER]


def _picked(text: str, pending: PendingQuestion) -> list[str]:
    """The candidates an answer names: an ordinal picks one; a type ("the over-ear ones") or words all found
    in candidates' names ("the Max", "the pro ones") pick those that fit — one, several, or none."""
    words = re.findall(r"[\w\-]+", text.lower())
    names = pending.candidates
    for word in words:
        if word in _ORDINALS and (len(words) <= 4 or word in ("first", "second", "third", "last")) and names:
            i = _ORDINALS[word]
            if i < len(names):
                return [names[i]]
    content = _content_words(text)
    by_type = [n for n in names if any(w in text.lower() for w in _TYPE_WORDS.get(pending.types.get(n, ""), ()))]
    if by_type and len(by_type) < len(names) and len(content) <= 3:
        return by_type
    if content and len(content) <= 6:
        return [n for n in names if all(w in n.lower().replace("-", " ").split() or w in n.lower() for w in content)]
    return []


def reply_to_pending(request: str, pending: PendingQuestion | None, rt: Runtime, user: str) -> PendingReply:
    """Read ``request`` as a reply to ``pending``: pick a candidate, confirm a word, cancel, or none.

    A device answer may also be any name that resolves on its own ("ok, AirPods Pro then").
    """
    if pending is None:
        return PendingReply("none")
    text = " ".join(request.lower().replace("’", "'").split())
    cancel = _CANCEL.match(text)
    if cancel:
        return PendingReply("cancel", rest=request.strip()[cancel.end():].strip(" ,.;:!-"))
    if pending.kind == "word":
        return PendingReply("choice", pending.candidates[0]) if _YES.match(text) and pending.candidates else PendingReply("none")
    picked = _picked(text, pending)
    if len(picked) == 1:
        return PendingReply("choice", picked[0])
    if len(picked) > 1:
        return PendingReply("narrow", candidates=picked)
    if len(_content_words(text)) <= 5 and not rules.parse(request).adjustments:
        res = rt.devices.resolve(" ".join(_content_words(text)), owned=rt.prefs.owned_devices(user))
        if res.status == "resolved":
            return PendingReply("choice", res.device)
    return PendingReply("none")


def narrowed(conv: Conversation, candidates: list[str]) -> tuple[Conversation, str]:
    """Ask again about the candidates an answer still fits; (the conversation with that question pending, the question)."""
    pending = conv.pending.model_copy(update={"candidates": candidates})
    names = [f"{n} ({pending.types.get(n, 'unknown')})" for n in candidates]
    question = "Which of these: " + (", ".join(names[:-1]) + " or " + names[-1]) + "?"
    return conv.model_copy(update={"pending": pending}), question


def changes_something(intent: Intent | None) -> bool:
    """Whether an intent asks for any change (a device, a word, a band edit or a stem move, or a follow-up)."""
    return intent is not None and (intent.action == "follow_up" and intent.follow_up != "none" or bool(
        intent.target_device or intent.listening_device or intent.adjustments or intent.band_edits or intent.stem_edits))


def after_cancel(pending: PendingQuestion, rest: Intent | None, rest_text: str, rt: Runtime, user: str) -> Intent:
    """The request after "never mind …": the rest of the turn when it asks for something, else the pending
    request without what the question was about ("forget my headphones, just AirPods Max": a bare device
    name in the rest is the target)."""
    if changes_something(rest):
        return rest
    if pending.kind == "device":
        base = pending.intent.model_copy(update={pending.role: None})
    else:
        base = pending.intent.model_copy(update={"adjustments": [a for a in pending.intent.adjustments
                                                                 if a.descriptor.lower() != pending.asked.lower()]})
    words = " ".join(_content_words(rest_text))
    if words:
        res = rt.devices.resolve(words, owned=rt.prefs.owned_devices(user))
        if res.status == "resolved":
            base = base.model_copy(update={"target_device": res.device})
    return base


def answered_intent(pending: PendingQuestion, choice: str) -> Intent:
    """The pending request completed by the answer."""
    if pending.kind == "word":
        asked = pending.asked.lower()
        adjustments = [a.model_copy(update={"descriptor": choice}) if a.descriptor.lower() == asked else a
                       for a in pending.intent.adjustments]
        return pending.intent.model_copy(update={"adjustments": adjustments})
    return pending.intent.model_copy(update={pending.role: choice})


# ------------------------------------------------------------------------------- follow-ups

def _compare_reply(conv: Conversation, input_path: str | None) -> str:
    """Where the original and the last result are, and that they are loudness-matched for an A/B."""
    last = conv.last
    if last is None:
        return f"Nothing is processed yet; the original is {input_path}." if input_path else "Nothing is processed yet."
    return (f"Original: {last.input}\nLast result: {last.audio}\nThey are loudness-matched "
            f"({last.lufs_in:.1f} and {last.lufs_out:.1f} LUFS), so switching between them compares the "
            "tone, not the level. Say \"undo\" or \"reset\" to go back.")


_STEPS = re.compile(r"\b(twice|two|2|three|3|four|4)\b")
_STEP_COUNT = {"twice": 2, "two": 2, "2": 2, "three": 3, "3": 3, "four": 4, "4": 4}


def _history_move(conv: Conversation, kind: str, request: str = "") -> Decision:
    """undo / redo (n steps: "go back two steps", "undo twice") / reset."""
    if kind == "reset":
        new = conv.applied(None) if conv.settings is not None else conv
        return Decision("answer", new, "Back to the original: nothing is applied now. Tell me what to change.")
    steps = _STEPS.search(request.lower())
    n = _STEP_COUNT[steps.group(1)] if steps else 1
    source = conv.undo if kind == "undo" else conv.redo
    if not source:
        return Decision("answer", conv, f"There is nothing to {kind}.")
    for _ in range(min(n, len(source))):
        conv = _one_step(conv, kind)
    note = f"{kind}: {min(n, len(source))} step(s)" + (f" (only {len(source)} to {kind})" if n > len(source) else "")
    if conv.settings is None:
        return Decision("answer", conv, "Undone: back to the original." if kind == "undo" else "Redone: the original.",
                        notes=[note])
    return Decision("apply", conv, notes=[f"{note}: back to \"{conv.settings.summary()}\""])


def _one_step(conv: Conversation, kind: str) -> Conversation:
    if kind == "undo":
        return conv.model_copy(update={"settings": conv.undo[-1], "undo": conv.undo[:-1],
                                       "redo": [*conv.redo, conv.settings], "pending": None})
    return conv.model_copy(update={"settings": conv.redo[-1], "redo": conv.redo[:-1],
                                   "undo": [*conv.undo, conv.settings], "pending": None})


ACCEPT_REPLY = ("Glad it works. Rate it 👍 (/good in the chat, `sense feedback up`) and your next similar request "
                "starts from it.")


def follow_up(conv: Conversation, intent: Intent, input_path: str | None, request: str = "") -> Decision | None:
    """A follow-up turn (more, less, undo, redo, reset, compare, accept), or None when the intent is not one
    (or has nothing to follow up: "it's too boomy" first thing is a request, re-read by the caller)."""
    kind = intent.follow_up
    if intent.action != "follow_up" or kind == "none":
        return None
    if kind == "accept":
        return Decision("answer", conv, ACCEPT_REPLY if conv.last is not None else "Fine. Tell me what to change.")
    if kind in ("undo", "redo", "reset"):
        return _history_move(conv, kind, request)
    if kind == "compare":
        return Decision("answer", conv, _compare_reply(conv, input_path))
    if conv.settings is None or not conv.settings.has_changes():
        return None
    if not (conv.settings.adjustments or conv.settings.band_edits or conv.settings.stems):
        return Decision("answer", conv, "There is no tone change to make stronger or weaker yet: the device rendering is "
                                        "what it is. Tell me a tone (\"warmer\", \"less harsh\") to adjust.")
    factor = planner.FOLLOW_UP_FACTORS[kind]
    scaled = conv.settings.scaled(factor, kind)
    return Decision("apply", conv.applied(scaled), notes=[f"follow-up \"{kind}\": every amount × {factor:g}"])


def variant_pick(conv: Conversation, request: str) -> Decision | None:
    """"the second one", "variant B", "keep A": the offered variant becomes the settings (the next request starts
    from it) and the pick is evidence for the person's model; None when no variants are offered or none is picked."""
    offered = conv.last.variants if conv.last is not None else None
    index = variants.pick_of(request, 1 + len(offered.options)) if offered is not None else None
    if index is None:
        return None
    settings_db = [offered.applied_db, *[o.setting_db for o in offered.options]]
    letter = variants.LETTERS[index]
    # a forced choice (probes) asked "B or C?": its answer says nothing about A
    rejected = [i for i in range(len(settings_db)) if i != index and not (offered.kind == "probes" and index and i == 0)]
    pick = VariantPick(word=offered.word, direction=offered.direction, letter=letter, chosen_db=settings_db[index],
                       rejected_db=[settings_db[i] for i in rejected], record_id=conv.last.record_id)
    done = conv.model_copy(update={"last": conv.last.model_copy(update={"variants": None})})
    if index == 0:
        others = " and ".join(o.letter for o in offered.options)
        return Decision("answer", done, f"Keeping A, as applied. Noted: you prefer it to {others} for "
                        f"\"{offered.direction} {offered.word}\"; I'll lean that way next time.", picked=pick)
    option = offered.options[index - 1]
    return Decision("apply", done.applied(option.settings.model_copy(update={"request": request})), picked=pick,
                    notes=[f"picked variant {letter} of \"{offered.direction} {offered.word}\": {option.label}"])


def method_switch(conv: Conversation, intent: Intent, request: str) -> Decision | None:
    """"use the neural model" / "back to the DSP filter": same settings, other transfer method."""
    method = rules.transfer_method(request)
    device_named = intent.target_device and not rules.transfer_method(intent.target_device)
    if (method is None or conv.settings is None or conv.settings.target is None or device_named
            or intent.adjustments or intent.band_edits or intent.stem_edits):
        return None
    new = conv.settings.model_copy(update={"transfer_method": method, "request": request})
    return Decision("apply", conv.applied(new), notes=[f"transfer method → {method}"])


# --------------------------------------------------------------------------------- devices

def named_in(question: str, names: list[str]) -> list[str]:
    """The names a question mentions, in the order it mentions them (a name inside a longer one counts once)."""
    found = sorted((question.find(n), -len(n), n) for n in names if n in question)
    out, covered = [], []
    for start, neg_len, name in found:
        if not any(a <= start < b for a, b in covered):
            out.append(name)
            covered.append((start, start - neg_len))
    return out


def as_said(request: str, name: str) -> str:
    """``name`` with the casing the request used ("sennheiser hd 600" → "Sennheiser HD 600")."""
    start = request.lower().find(name.lower())
    return request[start:start + len(name)] if start >= 0 else name


@dataclass
class _Lookup:
    """A device name looked up: the device, or the question to ask (and the models it names, in order)."""

    ref: DeviceRef | None
    question: str | None = None
    candidates: list[str] = field(default_factory=list)
    unknown: bool = False  # no stored model is close (not a tie between several)


def device_ref(rt: Runtime, name: str, user: str) -> _Lookup:
    """Look ``name`` up in the FR store, preferring the user's own devices."""
    res = rt.devices.resolve(name, owned=rt.prefs.owned_devices(user))
    if res.status != "resolved":
        return _Lookup(None, res.question, named_in(res.question or "", rt.store.devices()), res.status == "unknown")
    return _Lookup(DeviceRef(name=res.device, type=rt.store.device_type(res.device), query=name, via=res.via,
                             alternatives=res.alternatives, sources=sorted(rt.store.sources(res.device))))


def _question(conv: Conversation, intent: Intent, request: str, role: str, asked: str, found: _Lookup,
              rt: Runtime) -> Decision:
    pending = PendingQuestion(kind="device", intent=intent, request=request, role=role, asked=asked,
                              candidates=found.candidates, types={n: rt.store.device_type(n) for n in found.candidates})
    return Decision("question", conv.model_copy(update={"pending": pending}), found.question)


@dataclass
class _Devices:
    target: DeviceRef | None = None
    listening: DeviceRef | None = None
    notes: list[str] = field(default_factory=list)


#: Words that point back at the models the last answer named ("make it sound like those").
_POINTING = re.compile(r"(?:(?:on\s+)?(?:the\s+)?(?:those|these|them|they|that|this|it)(?:\s+(?:ones?|pairs?|headphones|"
                       r"earbuds|earphones|two))?|the\s+(?:winner|same\s+ones?|first\s+one|best\s+one))")


#: Words that make a device the one to sound like ("sound like", "as if on", "render", "simulate").
_RENDER = re.compile(r"\b(like|as if|as though|render|simulate|emulate|compare)\b")


def _target(rt: Runtime, conv: Conversation, intent: Intent, turn: TurnInput, out: _Devices) -> Decision | None:
    """The target device, or the question about it. An unknown device named in passing beside a tone change
    ("too boomy on my car speakers") is where the person listens, not a device to render: noted, not asked."""
    name = as_said(turn.request, intent.target_device)
    if conv.answered and _POINTING.fullmatch(name.lower().strip()):
        out.notes.append(f"\"{name}\": the {conv.answered[0]}, from my last answer")
        name = conv.answered[0]
    found = device_ref(rt, name, turn.user)
    out.target = found.ref
    if found.question is None:
        return None
    text = turn.request.lower()
    placed = re.search(rf"\b(?:on|through|in|with|using)\s+(?:my |the |a |an |our )?{re.escape(name.lower())}", text)
    in_passing = found.unknown and placed and (intent.adjustments or intent.band_edits or intent.stem_edits) \
        and not _RENDER.search(text)
    if in_passing:
        out.notes.append(f"I have no measurement of \"{name}\"; a tone change doesn't need one, so I left it out.")
        return None
    return _question(conv, intent, turn.request, "target_device", name, found, rt)


def resolve_devices(rt: Runtime, conv: Conversation, intent: Intent, turn: TurnInput) -> _Devices | Decision:
    """The target and listening devices of this turn, or the question to ask.

    An unknown or ambiguous target is asked about (unless named in passing beside a tone change). An
    unknown listening device is asked about only when a device transfer needs it; for a tone change
    alone it is noted and left out.
    """
    out = _Devices()
    if intent.target_device:
        asked = _target(rt, conv, intent, turn, out)
        if asked is not None:
            return asked
    name = turn.listening_device or (as_said(turn.request, intent.listening_device) if intent.listening_device else None)
    if name:
        found = device_ref(rt, name, turn.user)
        out.listening = found.ref
        transfer = out.target is not None or (conv.settings is not None and conv.settings.target is not None)
        if found.question and transfer:
            return _question(conv, intent, turn.request, "listening_device", name, found, rt)
        if found.question:
            out.notes.append(f"I have no measurement of \"{name}\", what you listen on; a tone change doesn't need "
                             "one, so I left it out.")
    target = out.target or (conv.settings.target if conv.settings else None)
    if target is not None and out.listening is None and (conv.settings is None or conv.settings.listening is None):
        try:
            rt.store.target_for(target.name)
        except (KeyError, ValueError) as exc:
            return Decision("answer", conv, (
                f"I can't render {target.name} without knowing what you listen on: the device store has no "
                f"neutral target for it ({exc}). Name your listening device (--listening-device), or use a "
                "store that has AutoEq's targets/ folder."))
    return out


# ------------------------------------------------------------------------------------ words

@dataclass
class _Tone:
    mix: list[ToneMove] = field(default_factory=list)
    stems: dict[StemName, StemMove] = field(default_factory=dict)
    limits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _word_question(conv: Conversation, intent: Intent, request: str, unsure: ToneMove) -> Decision:
    pending = PendingQuestion(kind="word", intent=intent, request=request, asked=unsure.asked,
                              candidates=[unsure.descriptor])
    return Decision("question", conv.model_copy(update={"pending": pending}), (
        f"I don't know \"{unsure.asked}\" as a sound word; the closest I know is \"{unsure.descriptor}\". Is that what "
        "you mean? Say yes, or describe it another way (warmer, brighter, less harsh …)."))


def tone_and_stems(rt: Runtime, conv: Conversation, intent: Intent, turn: TurnInput) -> _Tone | Decision:
    """Tone words (on the mix or on a stem, by the clause that says them; a "not" word limits the others),
    stem moves, or a question about a word neither the expert vocabulary nor the prior knows."""
    out = _Tone()
    tone_stems = {e.stem for e in intent.stem_edits if e.operation == "tone"}
    applied = {m.descriptor: m.direction for m in conv.settings.adjustments} if conv.settings else {}
    for adj in intent.adjustments:
        if adj.direction == "not":  # "warmer but not muddy": muddy limits the others
            out.limits.append(rt.words.lookup(adj.descriptor).word)
            continue
        stem = rules.stem_of_word(turn.request, adj.descriptor, tone_stems)
        on_mix = stem is None or stem not in TONE_ON_STEMS  # a stem's EQ is not measured on the mix
        move = planner.tone_move(rt, turn.user, turn.request, adj,
                                 turn.input_path if turn.has_audio and on_mix else None, applied)
        if move.match_via == "embedding" and move.match_score < EMBEDDING_CONFIDENT:
            return _word_question(conv, intent, turn.request, move)
        move = variants.personalise(rt, turn.user, move)
        if stem is None:
            out.mix.append(move)
        elif stem in TONE_ON_STEMS:
            out.stems.setdefault(stem, StemMove()).tone.append(move)
        else:
            part = rules.named_part(turn.request, stem)
            out.mix.append(move)
            out.notes.append(f"\"{move.said()}\" about the {part}: applied to the whole mix, since the separation "
                             f"can't isolate the {part} well enough for an EQ to stay on them.")
    for edit in intent.stem_edits:
        if edit.operation != "tone":
            level = planner.stem_level(edit)
            old = out.stems.get(edit.stem, StemMove())
            out.stems[edit.stem] = level.model_copy(update={"tone": old.tone})
    return out


# ----------------------------------------------------------------------------------- merge

def _base(conv: Conversation, request: str) -> tuple[Settings | None, list[str]]:
    """What a new request builds on: the current settings, or for a correction ("actually …",
    "no, …") the settings before the last change."""
    text = " ".join(request.lower().split())
    if _CORRECTION.search(text) and not re.search(r"\b(too|also|as well)\b", text) and conv.undo:
        return conv.undo[-1], ["a correction: built on the settings before the last change"]
    return conv.settings, []


def merge(base: Settings | None, request: str, devices: _Devices, tone: _Tone, band_moves, method) -> Settings:
    """The new settings: ``base`` updated by this request.

    A new device replaces the old; a tone word already applied adds to its amount (or subtracts, the
    other way round) unless the request says "instead" (then this request's words replace the old
    ones); a band edit of the same band or frequency replaces the old one; a stem's new level replaces
    its old one and its words merge like the mix's.
    """
    base = base or Settings()
    replace = bool(_INSTEAD.search(request.lower())) and bool(tone.mix)
    stems = dict(base.stems)
    for name, new in tone.stems.items():
        old = stems.get(name, StemMove())
        level = new if (new.gain_db or new.mute or new.solo) else old
        stems[name] = level.model_copy(update={"tone": merge_tone(old.tone, new.tone, additive=True)})
    labels = {b.label for b in band_moves}
    words = {m.descriptor for m in tone.mix}  # asked for again: no longer a limit
    return Settings(
        request=request, target=devices.target or base.target, listening=devices.listening or base.listening,
        adjustments=merge_tone([] if replace else base.adjustments, tone.mix, additive=True),
        band_edits=[b for b in base.band_edits if b.label not in labels] + list(band_moves),
        stems=stems, limits=list(dict.fromkeys([*(w for w in base.limits if w not in words), *tone.limits])),
        transfer_method=method or base.transfer_method, notes=devices.notes + tone.notes)


_I_HAVE = re.compile(r"\b(i have|i've got|i own|mine are|mine is)\b")


def _owned_means_target(conv: Conversation, intent: Intent, request: str) -> Intent:
    """"my AirPods" rendered, then "actually I have the AirPods Pro 2": the person says which model "my" meant,
    so the device they have is the target (not a listening device)."""
    previous = conv.settings.target if conv.settings else None
    said_my = previous is not None and re.search(rf"\bmy\s+{re.escape(previous.query.lower())}", conv.settings.request.lower())
    if (intent.listening_device and not intent.target_device and said_my and _I_HAVE.search(request.lower())
            and not re.search(r"\blisten", request.lower())):
        return intent.model_copy(update={"target_device": intent.listening_device, "listening_device": None})
    return intent


def new_request(rt: Runtime, conv: Conversation, intent: Intent, turn: TurnInput) -> Decision:
    """A request that changes the sound: resolve it, merge it into the settings, or ask/answer."""
    intent = _owned_means_target(conv, intent, turn.request)
    devices = resolve_devices(rt, conv, intent, turn)
    if isinstance(devices, Decision):
        return devices
    tone = tone_and_stems(rt, conv, intent, turn)
    if isinstance(tone, Decision):
        return tone
    band_moves = [m for m in (planner.band_move(e) for e in intent.band_edits) if m is not None]
    if not (devices.target or devices.listening or tone.mix or tone.stems or tone.limits or band_moves):
        empty = VOLUME_REPLY if rules.mentions_volume(turn.request) else EMPTY_REPLY
        return Decision("answer", conv, " ".join([*devices.notes, empty]))
    base, notes = _base(conv, turn.request)
    settings = merge(base, turn.request, devices, tone, band_moves, rules.transfer_method(turn.request))
    if devices.listening and not (devices.target or tone.mix or tone.stems or tone.limits or band_moves):
        return Decision("answer", conv.applied(settings), f"Noted: you listen on {devices.listening.name}. Devices I "
                        "render are now relative to it; tell me which one, or a tone.")
    if not settings.has_changes():
        return Decision("answer", conv.applied(None) if conv.settings else conv,
                        "That cancels out: nothing is applied now, you hear the original.")
    return Decision("apply", conv.applied(settings), notes=notes)


def read_turn(rt: Runtime, conv: Conversation, intent: Intent, turn: TurnInput, input_path: str | None = None) -> Decision:
    """Read one turn's intent against the conversation.

    Args:
        rt: loaded runtime (devices, prior, preferences).
        conv: the conversation so far.
        intent: what this turn said (already completed by an answer to a pending question).
        turn: the request text, user, listening device, whether there is audio.
        input_path: the audio being worked on (for "compare").
    Returns:
        A :class:`Decision`; its conversation has no pending question unless it asks one.
    """
    turn = replace(turn, input_path=turn.input_path or input_path)
    decision = _read(rt, conv.model_copy(update={"pending": None}), intent, turn, input_path)
    if decision.status == "apply" and not turn.has_audio:  # settings are kept; there is nothing to process yet
        return Decision("answer", decision.conversation, f"Understood ({decision.conversation.settings.summary()}). "
                        "Now give me an audio file to apply it to.", decision.notes)
    return decision


def _read(rt: Runtime, conv: Conversation, intent: Intent, turn: TurnInput, input_path: str | None) -> Decision:
    for rule in (lambda: variant_pick(conv, turn.request), lambda: method_switch(conv, intent, turn.request),
                 lambda: follow_up(conv, intent, input_path, turn.request)):
        decision = rule()
        if decision is not None:
            return decision
    if intent.action == "off_topic":
        return Decision("answer", conv, OFF_TOPIC_REPLY)
    if intent.action == "follow_up":  # nothing to follow up yet: "it's too boomy" first thing is a request
        reread = rules.parse(turn.request)
        if reread.action != "process":
            return Decision("answer", conv, "There is no tone change to make stronger or weaker yet. " + EMPTY_REPLY)
        intent = reread
    return new_request(rt, conv, intent, turn)
