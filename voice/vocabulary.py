"""Misheard requests matched against what SENSE understands, by how they *sound*.

Whisper base mishears short commands ("undo that" -> "and do that", "less boomy" -> "less booby",
"make it less muddy" -> "make it last muddy"). A transcript that neither the room's commands nor the
agent's closed vocabulary can read is compared with every phrase SENSE knows — the room commands
and, for every sound word of the expert vocabulary and the crowd prior, "less W", "more W", "it's too W",
"make it W-er" …, and "make it sound like D" for every device — after both are turned into phonemes by
espeak-ng (``espeak-ng -q -x``). The closest phrase by edit distance on the phonemes (rapidfuzz
``ratio``) replaces the transcript when it scores at least :data:`MIN_SCORE`; otherwise the transcript
goes to the agent as heard (which answers what it cannot do).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from tools.errors import SenseError

MIN_SCORE = 80.0
"""Least phoneme similarity (rapidfuzz ratio, 0-100) to take a phrase for a misheard transcript."""
ROOM_PHRASES = (
    "undo", "undo that", "go back", "louder", "quieter", "softer", "turn it up", "turn it down", "volume up",
    "volume down", "turn it up all the way", "maximum volume", "mute", "pause", "pause the music", "resume", "play",
    "play the music", "stop", "stop the music", "next song", "skip this track", "previous song", "what's playing",
    "what song is this", "what did you change", "reset", "reset the EQ", "back to normal", "start over",
    "louder vocals", "quieter vocals", "turn up the vocals", "turn down the drums", "a bit more", "a bit less",
)
TONE_TEMPLATES = ("{w}", "less {w}", "more {w}", "too {w}", "it's too {w}", "it sounds {w}", "make it less {w}",
                  "make it more {w}", "make it {w}", "less {w} please", "more {w} please", "too much {w}",
                  "turn up the {w}", "turn down the {w}")
COMPARATIVE_TEMPLATES = ("{c}", "make it {c}", "a bit {c}", "{c} please")
DEVICE_TEMPLATES = ("make it sound like {d}", "make it sound like my {d}", "make it sound like the {d}", "sound like {d}")


def phonemes(lines: list[str]) -> list[str]:
    """espeak-ng's phoneme mnemonics of each line (one espeak-ng run for all of them).

    Raises:
        SenseError: espeak-ng is not installed.
    """
    if shutil.which("espeak-ng") is None:
        raise SenseError("espeak-ng is not installed (Debian: apt-get install espeak-ng); run `make setup`")
    clean = [re.sub(r"[^a-z0-9' ]+", " ", line.lower()).strip() or "x" for line in lines]
    out = subprocess.run(["espeak-ng", "-q", "-x", "--stdin"], input="".join(f"{c}.\n" for c in clean),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    out = [o.strip() for o in out if o.strip()]
    if len(out) != len(clean):  # espeak-ng split or joined a line: one run per line instead
        out = [subprocess.run(["espeak-ng", "-q", "-x", c], capture_output=True, text=True, check=True).stdout.strip()
               for c in clean]
    return [o.replace("'", "").replace(",", "") for o in out]


@dataclass(frozen=True)
class Match:
    """The phrase a transcript was taken for: ``phrase``, its phoneme ``score`` (0-100)."""

    phrase: str
    score: float


class SoundsLike:
    """Phrases SENSE understands, matched by sound.

    Args:
        phrases: the phrases (see :func:`known_phrases`).
    """

    def __init__(self, phrases: list[str]) -> None:
        self.phrases = sorted(set(phrases))
        self._phonemes = phonemes(self.phrases)

    def match(self, text: str) -> Match | None:
        """The closest phrase to ``text`` by sound, or None below :data:`MIN_SCORE`."""
        if not text.strip():
            return None
        best = process.extractOne(phonemes([text])[0], self._phonemes, scorer=fuzz.ratio)
        if best is None or best[1] < MIN_SCORE:
            return None
        return Match(self.phrases[best[2]], float(best[1]))


def known_phrases(words: list[str], comparatives: list[str], devices: list[str]) -> list[str]:
    """Every phrase :class:`SoundsLike` compares with: room commands, tone templates over ``words`` and
    ``comparatives``, and device templates over ``devices``."""
    phrases = list(ROOM_PHRASES)
    phrases += [t.format(w=w) for w in words for t in TONE_TEMPLATES]
    phrases += [t.format(c=c) for c in comparatives for t in COMPARATIVE_TEMPLATES]
    phrases += [t.format(d=d) for d in device_names(devices) for t in DEVICE_TEMPLATES]
    return phrases


def device_names(devices: list[str]) -> list[str]:
    """The device names and how people shorten them: without a trailing generation ("Bose QuietComfort 35 II"
    -> "Bose QuietComfort 35", "Apple AirPods Pro (2nd generation)" -> "Apple AirPods Pro") and without the
    brand ("AirPods Pro")."""
    names = set(devices)
    for d in devices:
        short = re.sub(r"\s*(\([^)]*\)|\b(II|III|IV|Mk ?\d|2nd gen\w*))\s*$", "", d).strip()
        names.update({short, short.split(" ", 1)[1]} if " " in short else {short})
    return sorted(n for n in names if len(n) > 3)


COMPARATIVES = ("warmer", "brighter", "darker", "punchier", "clearer", "softer", "fuller", "thinner", "richer",
                "smoother", "deeper", "heavier", "crisper", "airier", "less harsh", "less muddy", "less boomy")
BAND_WORDS = ("bass", "treble", "highs", "mids", "low end", "vocals")


def room_sounds_like(rt) -> SoundsLike:
    """:class:`SoundsLike` over the room commands, the expert vocabulary's English words and forms (with
    :data:`BAND_WORDS`), :data:`COMPARATIVES` and the FR store's devices of ``rt`` (an agent runtime)."""
    words = {*BAND_WORDS}
    for term in rt.words.vocabulary.terms():
        words.update(w for w in (term.term, *term.forms) if len(w.split()) <= 2)
    return SoundsLike(known_phrases(sorted(words), list(COMPARATIVES), rt.store.devices()))
