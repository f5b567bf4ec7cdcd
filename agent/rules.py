"""Rule-based request parser: the fallback when the LLM's output is invalid twice, or no LLM runs.

It recognises the common shapes of requests ("sound like it's on my X", "less harsh",
"warmer", "cut the bass a lot", "undo", "a bit more") with regular expressions. It is less
flexible than the LLM but never invents anything.
"""

from __future__ import annotations

import re

from agent.schemas import Adjustment, BandEdit, Intent, StemEdit

_AUDIO_WORDS = re.compile(
    r"\b(sound|sounds|song|track|music|audio|mix|eq|equali[sz]e|bass|treble|mids?|vocals?|"
    r"headphones?|earbuds?|earphones?|speakers?|airpods?|buds|louder|quieter|volume|tone)\b"
)
_FOLLOW_UPS = [
    (re.compile(r"^(reset|start over|back to (the )?original|original)\b"), "reset"),
    (re.compile(r"^(undo|go back|revert|take that back|back)\b"), "undo"),
    (re.compile(r"\b(compare|a/b|before and after|hear the original|play the original)\b"), "compare"),
    (re.compile(r"^(that'?s |it'?s )?(way |a bit |a little )?too much\b|^(a (bit|little|touch|tad) )?less\b[\s.!]*$"), "less"),
    (re.compile(r"^(a (bit|little|touch|tad) |even |much |some )?more\b[\s.!]*(please)?[\s.!]*$|^not enough\b|^again\b"), "more"),
]
_LITTLE = r"(a (?:bit|little|touch|tad)|slightly|somewhat|a little bit)"
_LOT = r"(a lot|much|way|really|very|a ton|heaps)"
_DB = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*db\b")
_HZ = re.compile(r"\b(\d+(?:\.\d+)?)\s*(k)?(?:hz\b|(?<=k)\b)")
_CUT_VERBS = re.compile(r"\b(cut|reduce|lower|drop|remove|take|down|minus|less)\b")
_BAND_WORDS = [("low mids", "low mids"), ("low-mids", "low mids"), ("sub", "sub"), ("bass", "bass"), ("lows", "bass"),
               ("mids", "mids"), ("midrange", "mids"), ("presence", "presence"), ("treble", "treble"),
               ("highs", "treble"), ("air", "air")]
_MORE = r"(?:more|boost|add|increase|raise|bring up|extra|pump up)"
_LESS = r"(?:less|reduce|cut|lower|tame|remove|decrease|fewer|turn down|not so|too)"
_STOP = {"it", "this", "that", "the", "a", "an", "please", "sound", "and", "but", "like", "on", "my", "of"}
_DEVICE = re.compile(
    r"(?:sound(?:s)? like (?:it'?s |it is |)(?:on|through|in|played on)|like (?:it'?s |)(?:on|through)|"
    r"as if (?:it were |it's |)(?:on|through)|sound(?:s)? like(?! it\b)|on|through|using|with)\s+(?:my |the |a |an |some |a pair of )?"
    r"([a-z0-9][\w\-() .+]*?)(?=\s*(?:,|;|\.|!|\?|$|\s+but\b|\s+and\b|\s+with\b|\s+please\b|\s+headphones?\b|\s+earbuds?\b))"
)
_LISTENING = re.compile(r"(?:i'?m listening|i listen|listening) (?:on|with|through) (?:my |the |a )?([\w\-() .+]+?)(?=\s*(?:,|\.|;|$|\s+-\s|\s+but\b|\s+and\b|\s+make\b|\s+so\b))")
_COMMON_COMPARATIVES = {"warmer": "warm", "brighter": "bright", "darker": "dark", "punchier": "punchy", "muddier": "muddy",
                        "harsher": "harsh", "airier": "airy", "boomier": "boomy", "crisper": "crisp", "clearer": "clear",
                        "softer": "soft", "fuller": "full", "thinner": "thin", "richer": "rich", "smoother": "smooth",
                        "deeper": "deep", "heavier": "heavy", "lighter": "light", "sharper": "sharp", "mellower": "mellow"}


#: Words that name a stem, checked in this order (so "bass guitar" is bass, not other).
_STEM_CUES = [
    ("bass", r"bass ?guitars?|bass ?lines?|bass parts?|bass stem|bass track|bass player|bassist"),
    ("vocals", r"vocals?|voices?|singers?|singing|lead vocals?|vox"),
    ("drums", r"drums?|drum kit|percussion"),
    ("other", r"guitars?|pianos?|keys|keyboards?|synths?|strings|accompaniment"),
]
_KARAOKE = re.compile(r"\b(karaoke|instrumental|minus one|sing-?along)\b")
_A_CAPPELLA = re.compile(r"\b(a ?cap+el+a|acapella)\b")
_STEM_MUTE = re.compile(r"\b(mute|remove|no|without|get rid of|kill|take out|cut out|strip|lose|drop)\b")
_STEM_SOLO = re.compile(r"\b(solo|only|just|isolate|isolated|by (it|them)sel(f|ves)|on (its|their) own)\b")
_STEM_LOUDER = re.compile(r"\b(louder|up|boost|raise|more|increase|forward|front|pump|too (quiet|soft|low)|buried)\b")
_STEM_QUIETER = re.compile(r"\b(quieter|softer|down|lower|reduce|less|decrease|back|tame|too (loud|much|high)|overpowering)\b")
_LEVEL_WORDS = {"loud", "louder", "quiet", "quieter", "soft", "softer", "up", "down", "volume", "level", "much", "low", "high"}


_NEURAL = re.compile(r"\b(neural|learned model|demt|deep learning|machine learning|ai model)\b")
_NOT_NEURAL = re.compile(r"\b(dsp|without the (neural |learned |ai )?model|no (neural|ai)|plain eq|the filter)\b")


def transfer_method(text: str) -> str | None:
    """``demt`` when the request asks for the neural/learned model, ``dsp`` when it asks for the plain
    filter, None when it does not say."""
    text = text.lower()
    if _NOT_NEURAL.search(text):
        return "dsp"
    return "demt" if _NEURAL.search(text) else None


def names_stem(text: str, stem: str) -> bool:
    """Whether the text names ``stem`` (its words, or "karaoke"/"a cappella" for vocals)."""
    text = text.lower()
    if stem == "vocals" and (_KARAOKE.search(text) or _A_CAPPELLA.search(text)):
        return True
    return any(re.search(rf"\b(?:{cue})\b", text) for name, cue in _STEM_CUES if name == stem)


def _stem_of(clause: str) -> tuple[str | None, str]:
    """The stem a clause names and the clause without that word."""
    for stem, cue in _STEM_CUES:
        m = re.search(rf"\b(?:the\s+)?(?:{cue})\b", clause)
        if m:
            return stem, (clause[: m.start()] + " " + clause[m.end():]).strip()
    return None, clause


def _is_tone(rest: str) -> bool:
    """Whether a stem clause (without its stem word) asks for a change of tone ("less harsh", "brighter")."""
    if any(re.search(rf"\b{word}\b", rest) for word in _COMMON_COMPARATIVES):
        return True
    return any(m.group(1) not in _LEVEL_WORDS and m.group(1) not in _STOP
               for m in re.finditer(rf"\b(?:{_LESS}|{_MORE})\s+(?:the\s+|some\s+)?([a-z]+)", rest))


def _stem_edits(text: str) -> tuple[list[StemEdit], str]:
    """Moves on stems ("quieter drums", "karaoke", "make the vocals less harsh"); returns them and the
    text without the level clauses (tone clauses stay, so their words are read as adjustments)."""
    edits: list[StemEdit] = []
    if _KARAOKE.search(text):
        edits.append(StemEdit(stem="vocals", operation="mute"))
    elif _A_CAPPELLA.search(text):
        edits.append(StemEdit(stem="vocals", operation="solo"))
    rest, waiting = [], []
    for clause in re.split(r",|;|\band\b|\bbut\b|\bthen\b", text):
        stem, without = _stem_of(clause)
        if stem is None or any(e.stem == stem for e in edits):
            rest.append(clause)
            continue
        db = _DB.search(clause)
        gain = float(db.group(1)) if db else None
        if _STEM_MUTE.search(without):
            op = "mute"
        elif _STEM_SOLO.search(without):
            op = "solo"
        elif _is_tone(without):
            edits.append(StemEdit(stem=stem, operation="tone", amount=amount_word(clause)))
            rest.append(without)
            continue
        elif _STEM_QUIETER.search(without) or (gain is not None and (gain < 0 or _CUT_VERBS.search(without))):
            op = "quieter"
        elif _STEM_LOUDER.search(without) or gain is not None:
            op = "louder"
        else:
            waiting.append(stem)  # "the drums and the bass guitar quieter": takes the next clause's move
            continue
        if gain is not None:
            gain = -abs(gain) if op == "quieter" else abs(gain)
        for s in [*waiting, stem]:
            edits.append(StemEdit(stem=s, operation=op, amount=amount_word(clause), gain_db=gain))
        waiting = []
    return edits, " , ".join(rest)


def amount_word(text: str) -> str | None:
    """"a little" or "a lot" when the text says so (slightly, a bit, much, way …), else None."""
    text = text.lower()
    if re.search(_LITTLE, text):
        return "a little"
    if re.search(_LOT, text):
        return "a lot"
    return None


def parse(request: str) -> Intent:
    """Parse a request into an :class:`Intent` without an LLM.

    Args:
        request: the person's words.
    Returns:
        The intent; ``action == "off_topic"`` when nothing about sound is recognised.
    """
    text = " ".join(request.lower().replace("’", "'").split())
    for pattern, kind in _FOLLOW_UPS:
        if pattern.search(text):
            return Intent(action="follow_up", follow_up=kind)

    listening = _LISTENING.search(text)
    listening_device = listening.group(1).strip() if listening else None
    scan = _LISTENING.sub(" ", text)
    device_match = _DEVICE.search(scan)
    target_device = device_match.group(1).strip() if device_match else None
    if target_device and (target_device in _STOP or len(target_device) < 3
                          or re.match(rf"{_LESS}|{_MORE}|{_LITTLE}|{_LOT}", target_device)):
        target_device = None

    stem_edits, scan = _stem_edits(scan)
    band_edits, scan = _band_edits(scan)
    adjustments: list[Adjustment] = []
    seen: set[str] = set()
    amount = amount_word(text)

    def add(word: str, direction: str) -> None:
        word = word.strip()
        if word and word not in _STOP and word not in seen and (target_device is None or word not in target_device):
            seen.add(word)
            adjustments.append(Adjustment(descriptor=word, direction=direction, amount=amount))

    for m in re.finditer(rf"\b{_LESS}\s+(?:the\s+|some\s+|of\s+the\s+)?([a-z]+)", scan):
        add(m.group(1), "less")
    for m in re.finditer(rf"\b{_MORE}\s+(?:the\s+|some\s+)?([a-z]+)", scan):
        add(m.group(1), "more")
    for word, base in _COMMON_COMPARATIVES.items():
        if re.search(rf"\b{word}\b", scan):
            add(base, "less" if re.search(rf"\b(less|not so|too)\s+{word}", scan) else "more")

    if not adjustments and not band_edits and not stem_edits and target_device is None and not _AUDIO_WORDS.search(text):
        return Intent(action="off_topic")
    return Intent(action="process", target_device=target_device, listening_device=listening_device,
                  adjustments=adjustments, band_edits=band_edits, stem_edits=stem_edits)


def has_db_value(text: str) -> bool:
    """Whether the text names a level in dB ("3 dB", "+40db")."""
    return _DB.search(text.lower()) is not None


def _band_edits(text: str) -> tuple[list[BandEdit], str]:
    """Explicit dB moves, one per clause ("cut 250 Hz by 3 dB", "+4 dB of bass"); returns them and
    the text without those clauses (so "cut the bass by 3 dB" is not read as a descriptor too)."""
    edits, rest = [], []
    for clause in re.split(r",|;|\band\b|\bbut\b|\bthen\b", text):
        db = _DB.search(clause)
        if not db:
            rest.append(clause)
            continue
        gain = float(db.group(1))
        if not db.group(1).startswith(("+", "-")) and _CUT_VERBS.search(clause):
            gain = -abs(gain)
        hz = _HZ.search(_DB.sub(" ", clause))
        if hz:
            edits.append(BandEdit(frequency_hz=float(hz.group(1)) * (1000 if hz.group(2) else 1), gain_db=gain))
            continue
        band = next((name for word, name in _BAND_WORDS if re.search(rf"\b{word}\b", clause)), None)
        if band:
            edits.append(BandEdit(band=band, gain_db=gain))
        else:
            rest.append(clause)
    return edits, " , ".join(rest)
