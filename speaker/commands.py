"""Room commands a speaker answers by itself (volume, undo, transport, status), before the agent.

Everything else ("less boomy", "make it sound like my AirPods") goes to the conversation engine.
Spoken commands arrive through speech-to-text, which mishears short words ("undo" -> "and do",
"louder" -> "ladder"), so a short utterance that matches no exact pattern is compared with the
command phrases by edit distance (rapidfuzz ``ratio``) and taken when the match is close; the
mishearings measured with Whisper base are listed in :data:`MISHEARD`.

    >>> parse("turn it up all the way").kind
    'volume_max'
    >>> parse("and do").kind
    'undo'
    >>> parse("less boomy") is None
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, process

CommandKind = Literal["undo", "volume_up", "volume_down", "volume_max", "volume_set", "mute", "pause", "play",
                      "stop", "next", "previous", "now_playing", "status", "reset"]
TRANSPORT = frozenset({"pause", "play", "stop", "next", "previous"})
"""Commands that go to MPD when one is configured."""
VOLUME_STEP_DB = 3.0
"""One "louder"/"quieter", dB (about one notch of a hi-fi volume knob)."""
FUZZY_MIN_SCORE = 75.0
"""Least rapidfuzz ratio (0-100, whole strings) for a misheard short utterance to count as a command."""
FUZZY_MAX_WORDS = 3
"""Only utterances of at most this many words are matched by edit distance."""


@dataclass(frozen=True)
class Command:
    """One room command.

    Attributes:
        kind: what to do.
        value: the number for ``volume_set`` (dB, as said: "volume minus 20") or a step count for
            ``volume_up``/``volume_down`` ("much louder" = 2), else None.
        matched: the phrase it matched (for the log), and ``fuzzy`` whether by edit distance.
    """

    kind: CommandKind
    value: float | None = None
    matched: str = ""
    fuzzy: bool = False


_PATTERNS: list[tuple[CommandKind, str]] = [
    ("undo", r"(undo|undo that|go back|take (that|it) back|revert( that)?|put it back)"),
    ("volume_max", r"(turn it|crank it|turn the volume|volume) (all the way )?up (all the way|to (the )?max(imum)?|full)"
                   r"|(turn it|crank it) all the way up|(full|max(imum)?) volume|volume (to )?(max(imum)?|full)"
                   r"|as loud as (it|you) can( go)?|loudest"),
    ("volume_up", r"((much|a lot|way) )?louder( please)?|(turn|crank) (it|the volume|the music) up( a bit)?|volume up"
                  r"|(increase|raise) the volume|turn up the volume|more volume"),
    ("volume_down", r"((much|a lot|way) )?(quieter|softer)( please)?|turn (it|the volume|the music) down( a bit)?"
                    r"|volume down|(decrease|lower|reduce) the volume|turn down the volume|less volume|not so loud"),
    ("mute", r"mute|silence|shut up"),
    ("pause", r"pause( (it|the music|that))?|hold on"),
    ("play", r"(play|resume|continue|unpause)( (it|the music|playing))?"),
    ("stop", r"stop( (it|the music|playing|that))?"),
    ("next", r"(next|skip)( (song|track|one))?|skip (this|it)( (song|track))?|play the next (song|track|one)"),
    ("previous", r"(previous|last)( (song|track|one))?|go back a (song|track)|play the previous (song|track|one)"),
    ("now_playing", r"what('?s| is) (this|playing|this song|the song|on)|what song is this|now playing"),
    ("status", r"what did you (change|do)|what('?s| is) (the )?(setting|settings|status)|status"),
    ("reset", r"reset( (it|the (sound|eq|equali[sz]er)))?|(start|begin) over|flat|back to normal|clear (it|the eq)"),
]
_COMPILED = [(kind, re.compile(rf"^(?:(?:hey|ok|okay|please|sense),? )*(?:{pattern})(?: please)?$"))
             for kind, pattern in _PATTERNS]
_SET_VOLUME = re.compile(r"^(?:set (?:the )?)?volume (?:to )?(minus|plus|-|\+)?\s?(\d{1,2}(?:\.\d)?)(?: ?db| decibels?)?$")
_FUZZY_PHRASES: dict[str, CommandKind] = {
    "undo": "undo", "louder": "volume_up", "quieter": "volume_down", "softer": "volume_down",
    "volume up": "volume_up", "volume down": "volume_down", "pause": "pause", "resume": "play",
    "next song": "next", "next track": "next", "previous song": "previous", "stop": "stop", "mute": "mute",
    "go back": "undo", "what's playing": "now_playing", "reset": "reset", "play": "play",
}


MISHEARD: dict[str, str] = {
    "and do": "undo", "on do": "undo", "undue": "undo", "un do": "undo", "andu": "undo", "in do": "undo",
    "undu": "undo", "and you": "undo", "i do": "undo", "ladder": "louder", "lauder": "louder", "lower": "quieter",
    "pose": "pause", "paws": "pause", "pours": "pause", "paused": "pause", "necks song": "next song",
    "next son": "next song",
}
"""Whisper base's mishearings of short commands (said -> meant), matched before edit distance."""


def normalise(text: str) -> str:
    """Lower case, apostrophes kept, other punctuation and repeated spaces removed."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9'+\-. ]+", " ", text)
    return " ".join(text.replace(" .", " ").strip(" .").split())


def _steps(text: str) -> float:
    return 2.0 if re.search(r"\b(much|a lot|way)\b", text) else 1.0


def _fuzzy(text: str) -> Command | None:
    if not text or len(text.split()) > FUZZY_MAX_WORDS:
        return None
    if text in MISHEARD:
        meant = parse_exact(MISHEARD[text])
        return None if meant is None else Command(meant.kind, meant.value, matched=meant.matched, fuzzy=True)
    best = process.extractOne(text, list(_FUZZY_PHRASES), scorer=fuzz.ratio)
    if best is None or best[1] < FUZZY_MIN_SCORE:
        return None
    return Command(_FUZZY_PHRASES[best[0]], matched=best[0], fuzzy=True)


def parse(text: str) -> Command | None:
    """The room command in ``text``, or None when it is a request for the agent.

    Args:
        text: what was typed or transcribed (any case and punctuation).
    Returns:
        The :class:`Command`, or None.
    """
    said = normalise(text)
    return parse_exact(said) or _fuzzy(said)


def parse_exact(said: str) -> Command | None:
    """The command ``said`` (already :func:`normalise`-d) states exactly, else None (no edit distance)."""
    if not said:
        return None
    m = _SET_VOLUME.match(said)
    if m:
        sign = -1.0 if m[1] in ("minus", "-") else 1.0
        return Command("volume_set", sign * float(m[2]), matched=said)
    for kind, pattern in _COMPILED:
        if pattern.match(said):
            value = _steps(said) if kind in ("volume_up", "volume_down") else None
            return Command(kind, value, matched=said)
    return None


OFF_TOPIC = ("I only change how the music in this room sounds: for example \"less boomy\", \"sound like my AirPods\" "
             "or \"volume down\".")
"""The room's answer to a request with nothing about sound in it (no agent, no LLM)."""
_SOUND_TALK = re.compile(
    r"\b(sound|sounds|sounding|song|songs|track|tracks|music|audio|mix|eq|equali[sz]e\w*|bass|treble|mids?|highs|lows|"
    r"vocals?|voice|voices|singer|singing|guitars?|drums?|kick|snare|piano|instruments?|reverb|echo|room|hall|concert|"
    r"live|stereo|mono|volume|loud|louder|quiet|quieter|soft|softer|tone|tones|frequenc\w*|hz|db|decibels?|"
    r"headphones?|earbuds?|earphones?|buds|speakers?|more|less|too|bit|little|up|down|boost|cut)\b")
_NOT_WORDS = frozenset({"please", "cat", "thank", "thanks", "you", "me", "what", "the", "a"})


def off_topic(text: str, vocab) -> bool:
    """Whether ``text`` has nothing about sound in it, so the room can answer :data:`OFF_TOPIC` at once instead of
    asking the agent's LLM (seconds on a small machine): the rule parser finds no request, and no word is a sound
    word of ``vocab`` (an :class:`agent.rules.Vocabulary`), a device, or general talk about audio, instruments,
    volume or more/less (those go to the agent, which may read more than the rules).

        "what's the weather like tomorrow", "tell me a joke", "purple monkey dishwasher" -> True
        "make it sound like a cathedral", "the guitar is too loud", "warm at least" -> False
    """
    from agent.rules import normalise as rules_normalise
    from agent.rules import parse as rules_parse

    norm = rules_normalise(text)
    if not norm or _SOUND_TALK.search(norm) or rules_parse(text, vocab).action != "off_topic":
        return False
    return not any(vocab.known(w) for w in re.findall(r"[^\W\d_]+", norm) if w not in _NOT_WORDS)
