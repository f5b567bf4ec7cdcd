"""Rule-based request parser: the fallback when the LLM's output is invalid twice, or no LLM runs.

It recognises the common shapes of requests ("sound like it's on my X", "less harsh",
"warmer", "cut the bass a lot", "undo", "a bit more") with regular expressions. It is less
flexible than the LLM but never invents anything.
"""

from __future__ import annotations

import re

from collections.abc import Callable
from dataclasses import dataclass

from agent.schemas import Adjustment, BandEdit, Intent, StemEdit


@dataclass(frozen=True)
class Vocabulary:
    """What the closed vocabulary knows (built from the loaded prior and FR store by the engine).

    Attributes:
        word_key: the prior's word for a tone word it knows exactly (by itself, jargon, a translation or
            a suffix rule), else None.
        plausible: whether the prior knows a word at least by a confident embedding match.
        device_known: whether a device name resolves (or is ambiguous between stored models).
        phrases: tone words of several tokens ("low mids", "top end"), read as one word.
    """

    word_key: Callable[[str], str | None]
    plausible: Callable[[str], bool] = lambda word: True
    device_known: Callable[[str], bool] = lambda name: False
    phrases: tuple[str, ...] = ()

    def known(self, word: str) -> bool:
        return self.word_key(word) is not None

_AUDIO_WORDS = re.compile(
    r"\b(sound|sounds|song|track|music|audio|mix|eq|equali[sz]e|bass|treble|mids?|vocals?|"
    r"headphones?|earbuds?|earphones?|speakers?|airpods?|buds|louder|quieter|volume|tone)\b"
)
_FOLLOW_UPS = [
    (re.compile(r"^(?:(?:perfect|great|nice|good|cool|awesome|excellent|lovely|thanks|thank you|cheers|ok(?:ay)?|yes|"
                r"love it|that'?s (?:it|good|great|better|perfect|nice)|sounds (?:good|great|better)|much better|"
                r"keep (?:it|this|that))[\s,.!]*)+$"), "accept"),
    (re.compile(r"^(reset|start over|back to (the )?original|original)\b"), "reset"),
    (re.compile(r"^(undo|go back|revert|take that back|back)\b"), "undo"),
    (re.compile(r"^(redo|undo the undo|put it back|bring it back)\b"), "redo"),
    (re.compile(r"\b(compare (it |this )?(with|to|against) (the )?(original|unprocessed|before)|compare\s*[.!?]*$|"
                r"^compare (it|this|them)\b|a/b|before and after|hear the original|play the original)\b"), "compare"),
    (re.compile(r"^(that'?s |it'?s )?(way |a bit |a little )?too much\b(?!\s+(?:of\s+)?(?:the\s+)?(?!now\b|please\b|again\b)[a-z])"
                r"|^(a (bit|little|touch|tad) )?less\b[\s.!]*$"), "less"),
    (re.compile(r"^(a (bit|little|touch|tad) |even |much |some )?more\b[\s.!]*(please)?[\s.!]*$|^not enough\b|^again\b"), "more"),
]
_LITTLE = r"(a (?:bit|little|touch|tad)|slightly|somewhat|a little bit|etwas|ein bisschen|un poco|un peu)"
_LOT = r"(a lot|much|way|a ton|heaps|loads)"  # "really muddy" describes the problem, not how much to change
_DB = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*(?:db|decibels?)\b")
_HZ = re.compile(r"\b(\d+(?:\.\d+)?)\s*(k)?(?:hz\b|(?<=k)\b)")
_CUT_VERBS = re.compile(r"\b(cut|reduce|lower|drop|remove|take|down|minus|less)\b")
_BAND_WORDS = [("low mids", "low mids"), ("low-mids", "low mids"), ("sub", "sub"), ("bass", "bass"), ("lows", "bass"),
               ("mids", "mids"), ("midrange", "mids"), ("presence", "presence"), ("treble", "treble"),
               ("highs", "treble"), ("air", "air")]
_MORE = (r"(?:more|boost|add|increase|raise|bring up|bring out|turn up|crank up|extra|pump up|fatten up|fatten|lift|enhance|"
         r"emphasi[sz]e|open up|más|mehr|plus|più)")
_LESS = (r"(?:less|reduce|cut|lower|tame|remove|decrease|fewer|turn down|not so|not as|too much(?: of)?|too|clean up|clean out|"
         r"pull back|pull down|scoop out|scoop|dial back|dial down|rein in|roll off|take out|take down|get rid of|"
         r"menos|weniger|moins|meno)")
#: One word, letters of any language; several words of a phrase are joined by "-" first ("low-mids").
_W = r"([^\W\d_][^\W\d_']*(?:-[^\W\d_]+)*)"
#: Band words of several tokens, read as one word even without a vocabulary.
_PHRASES = ("bottom end", "low end", "low mids", "upper mids", "lower mids", "top end", "high end", "sub bass")
#: "warmer but not muddy", "brighter without getting harsh": the word limits the others ("not").
_NOT = re.compile(r"(?:\b(?:but|and|yet)\s+|,\s*|^)not\s+(?:too\s+|overly\s+|so\s+much\s+)?" + _W
                  + r"|\bwithout\s+(?:getting\s+|making\s+it\s+|it\s+getting\s+|becoming\s+|being\s+)?(?:too\s+)?"
                  + _W)
#: "it sounds tinny", "the low end is really muddy": a complaint, so less of the word (known words only).
_COMPLAINT = re.compile(r"\b(?:sounds?|sounding|is|are|it'?s|that'?s|feels?|seems?|gets?|getting|got)\s+"
                        r"(?:(?:a bit|a little|really|very|quite|too|so|kind of|somewhat|way|rather|pretty|super|"
                        r"overly|slightly|still)\s+)*([a-z]+)")
#: "make it energetic", "give it some sparkle": a wish, so more of the word (known words only).
_WISH = re.compile(r"\b(?:make|makes|making|get)\s+(?:it|this|that|them|everything|the \w+)\s+(?:(?:a bit|a little|more|"
                   r"slightly|even|really|very|much|a touch|a tad|somewhat|way|sound|feel)\s+)*([a-z]+)|"
                   r"\bgive\s+(?:it|this|that|them|me)\s+(?:some|a bit of|a little|more|a touch of|extra)?\s*([a-z]+)")
#: Words a loose pattern must not read as tone words (the prior knows some of them: "sound", "good", "loud").
_NOT_TONE = frozenset("sound sounds like good nice great bad better worse fine ok okay same different original right "
                      "wrong perfect weird strange off done loud louder quiet quieter it this that".split())
_STOP = {"it", "this", "that", "the", "a", "an", "please", "sound", "and", "but", "like", "on", "my", "of", "top",
         "them", "me", "up", "out", "down", "back", "by", "to", "for", "at", "with", "all", "about"}
_DEVICE = re.compile(
    r"(?:sound(?:s)? like (?:it'?s |it is |)(?:on|through|in|played on)|like (?:it'?s |)(?:on|through)|"
    r"(?:coming |playing )?out of|(?:what|how) about(?! \w+ing\b)|and like|try(?= (?:the|my|a|an|on) )|"
    r"as if (?:it were |it's |)(?:on|through)|sound(?:s)? like(?! it\b)|on|through|using|with)\s+(?:my |the |a |an |some |a pair of )?"
    r"([a-z0-9][\w\-() .+]*?)(?=\s*(?:,|;|\.|!|\?|$|\s+but\b|\s+and\b|\s+with\b|\s+please\b|\s+instead\b|\s+too\b|"
    r"\s+headphones?\b|\s+earbuds?\b))"
)
_LISTENING = re.compile(r"(?:(?:i'?m listening|i listen|listening) (?:on|with|through)|i'?m wearing|i am wearing|"
                        r"i'?m on|i am on|"
                        r"i'?m using|i am using|i have|i've got|i own|wearing) (?:my |the |a |an )?([\w\-() .+]+?)"
                        r"(?=\s*(?:,|\.|;|$|\s+-\s|\s+but\b|\s+and\b|\s+make\b|\s+so\b|\s+let\b|\s+on\b|\s+right now\b))")
#: "compare with the first gen airpods pro": a device to render, not the original.
_COMPARE_DEVICE = re.compile(r"\bcompare (?:it |this )?(?:with|to|against) (?!(?:the |my )?(?:original|unprocessed|before|what)\b)"
                             r"(?:the |my |a |an )?"
                             r"([a-z0-9][\w\-() .+]*?)\s*[.!?]*$")
#: A clause that protects a part instead of changing it ("keep the vocals as they are", "keep it warm").
_PROTECT = re.compile(r"\b(keep|leave|don'?t (touch|change)|do not (touch|change)|untouched|as (it|they) (is|are)|alone)\b")
_COMMON_COMPARATIVES = {"wärmer": "warm", "heller": "bright", "dunkler": "dark", "klarer": "clear", "weicher": "soft",
                        "warmer": "warm", "brighter": "bright", "darker": "dark", "punchier": "punchy", "muddier": "muddy",
                        "harsher": "harsh", "airier": "airy", "boomier": "boomy", "crisper": "crisp", "clearer": "clear",
                        "softer": "soft", "fuller": "full", "thinner": "thin", "richer": "rich", "smoother": "smooth",
                        "deeper": "deep", "heavier": "heavy", "lighter": "light", "sharper": "sharp", "mellower": "mellow"}


#: Words that name a stem, checked in this order (so "bass guitar" is bass, not other).
_STEM_CUES = [
    ("bass", r"bass ?guitars?|bass ?lines?|bass parts?|bass stem|bass track|bass player|bassist"),
    ("vocals", r"vocals?|voices?|singers?|singing|lead vocals?|vox|(?<=bring )(?:her|him)|(?<=turn )(?:her|him)|"
               r"(?:her|his) voice"),
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


def named_part(text: str, stem: str) -> str:
    """The words that name ``stem`` in the text ("strings" for other, "singer" for vocals), else the stem's name."""
    for name, cue in _STEM_CUES:
        m = re.search(rf"\b(?:{cue})\b", normalise(text)) if name == stem else None
        if m:
            return m.group(0)
    return stem


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
            rest.append(without)  # "the vocals sound veiled": its tone words are still read
            continue
        if gain is not None:
            gain = -abs(gain) if op == "quieter" else abs(gain)
        for s in [*waiting, stem]:
            edits.append(StemEdit(stem=s, operation=op, amount=amount_word(clause), gain_db=gain))
        waiting = []
    return edits, " , ".join(rest)


def amount_of(request: str, word: str) -> str | None:
    """The amount word ("a little", "a lot") of the clause that says ``word``, else None."""
    text = normalise(request)
    for clause in re.split(r",|;|\band\b|\bbut\b|\bthen\b", text):
        if says(clause, word):
            return amount_word(clause)
    return None


def amount_word(text: str) -> str | None:
    """"a little" or "a lot" when the text says so (slightly, a bit, much, way …), else None."""
    text = text.lower()
    if re.search(_LITTLE, text):
        return "a little"
    if re.search(_LOT, text):
        return "a lot"
    return None


def normalise(request: str) -> str:
    """Lower case, straight apostrophes, single spaces."""
    return " ".join(request.lower().replace("’", "'").split())


def joined(text: str, vocab: Vocabulary | None = None) -> str:
    """The text with tone words of several tokens joined by "-" ("clean up the low mids" → "… low-mids")."""
    for phrase in sorted({*_PHRASES, *(vocab.phrases if vocab else ())}, key=len, reverse=True):
        if " " in phrase and phrase in text:
            text = re.sub(rf"\b{re.escape(phrase)}\b", phrase.replace(" ", "-"), text)
    return text


def _devices(text: str) -> tuple[str | None, str | None, str]:
    """(target device, listening device, the text without the listening clause)."""
    listening = _LISTENING.search(text)
    listening_device = listening.group(1).strip() if listening else None
    scan = _LISTENING.sub(" ", text)
    compare = _COMPARE_DEVICE.search(scan)
    device_match = compare or _DEVICE.search(scan)
    target_device = device_match.group(1).strip() if device_match else None
    if target_device and (target_device in _STOP or len(target_device) < 3
                          or re.match(rf"{_LESS}|{_MORE}|{_LITTLE}|{_LOT}", target_device)):
        target_device = None
    return target_device, listening_device, scan


def unprotected(text: str) -> str:
    """The text without clauses that keep something as it is ("keep it warm", "leave the vocals alone")."""
    return " , ".join(c for c in re.split(r",|;|\bbut\b|\band\b", text) if not _PROTECT.search(c))


def _clause_at(text: str, position: int) -> str:
    """The clause (between , ; and but then) of ``text`` that holds ``position``."""
    start = max((m.end() for m in re.finditer(r",|;|\band\b|\bbut\b|\bthen\b", text[:position])), default=0)
    end = re.search(r",|;|\band\b|\bbut\b|\bthen\b", text[position:])
    return text[start: position + end.start() if end else len(text)]


def _adjustments(scan: str, target_device: str | None, vocab: Vocabulary | None = None) -> list[Adjustment]:
    """Tone words with their direction: after less/more verbs, comparatives ("warmer", "too bright"), and,
    with a vocabulary (the prior's exact words), complaints ("it sounds tinny": less) and wishes
    ("make it energetic": more). The amount word ("a little", "a lot") is read from the word's own clause."""
    adjustments: list[Adjustment] = []
    seen: set[str] = set()

    def add(word: str, direction: str, position: int) -> None:
        word = word.strip()
        key = word if "-" in word else word[:4]  # "warm" and "warmer" are one word
        if word and word not in _STOP and key not in seen and (target_device is None or word not in target_device):
            seen.add(key)
            adjustments.append(Adjustment(descriptor=word.replace("-", " "), direction=direction,
                                          amount=amount_word(_clause_at(scan, position))))

    for m in _NOT.finditer(scan):
        add(next(g for g in m.groups() if g), "not", m.start())
    for m in re.finditer(rf"\b{_LESS}\s+(?:the\s+|some\s+|of\s+the\s+)?{_W}", scan):
        add(m.group(1), "less", m.start())
    for m in re.finditer(rf"\b{_MORE}\s+(?:the\s+|some\s+)?{_W}", scan):
        add(m.group(1), "more", m.start())
    for word, base in _COMMON_COMPARATIVES.items():
        m = re.search(rf"(?<!\w){word}(?!\w)", scan)
        if m:
            add(base, "less" if re.search(rf"\b(less|not so|too)\s+{word}", scan) else "more", m.start())
    if vocab is not None:
        for pattern, direction in ((_COMPLAINT, "less"), (_WISH, "more")):
            for m in pattern.finditer(scan):
                word = next(g for g in m.groups() if g)
                if word not in _NOT_TONE and vocab.known(word):
                    add(word, direction, m.start())
    return adjustments


def parse(request: str, vocab: Vocabulary | None = None) -> Intent:
    """Parse a request into an :class:`Intent` without an LLM.

    Args:
        request: the person's words.
        vocab: the closed vocabulary; with it, complaints ("it sounds tinny") and wishes ("make it
            energetic") are read too, and in a request with no sound word a device the store does not
            know ("on the French revolution") or a word the prior does not know ("extra cheese") is
            no request at all.
    Returns:
        The intent; ``action == "off_topic"`` when nothing about sound is recognised.
    """
    text = joined(normalise(request), vocab)
    if not _COMPARE_DEVICE.search(text):
        for pattern, kind in _FOLLOW_UPS:
            if pattern.search(text):
                return Intent(action="follow_up", follow_up=kind)
    target_device, listening_device, scan = _devices(text)
    sound_words = _AUDIO_WORDS.search(text)
    if target_device and vocab is not None and not sound_words and not vocab.device_known(target_device):
        target_device = None
    stem_edits, scan = _stem_edits(unprotected(scan))
    band_edits, scan = _band_edits(scan)
    adjustments = _adjustments(scan, target_device, vocab)
    if vocab is not None and not sound_words:  # "a pizza with extra cheese" is no tone request
        adjustments = [a for a in adjustments if vocab.plausible(a.descriptor)]
    if not adjustments and not band_edits and not stem_edits and target_device is None and not _AUDIO_WORDS.search(text):
        return Intent(action="off_topic")
    return Intent(action="process", target_device=target_device, listening_device=listening_device,
                  adjustments=adjustments[:6], band_edits=band_edits[:6], stem_edits=stem_edits[:4])


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


def says(clause: str, word: str) -> bool:
    """Whether a clause says ``word`` in some form ("punchier" for punchy, "muddiness" for mud)."""
    stem = word.lower()[:4] if len(word) >= 4 else word.lower()
    return any(token.startswith(stem) for token in re.findall(r"[a-z]+", clause))


def stem_of_word(request: str, word: str, tone_stems: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The stem a tone word is about: the stem named in the clause that says the word.

    "make the vocals warmer and the whole thing less harsh": warm → vocals, harsh → None (the mix).
    When no clause says the word (a translation), the one stem the intent marks for tone, if any.
    """
    clauses = re.split(r",|;|\band\b|\bbut\b|\bthen\b", normalise(request))
    saying = [c for c in clauses if says(c, word)]
    if saying:
        for clause in saying:
            stem, _ = _stem_of(clause)
            if stem is not None:
                return stem
        return None
    return next(iter(tone_stems)) if len(tone_stems) == 1 else None


COMMON_COMPARATIVES = _COMMON_COMPARATIVES
#: Words that carry no meaning of their own in a request (articles, pronouns, politeness, verbs that
#: only introduce a move, amount words the parser reads itself).
FILLER = frozenset("""
a an the it it's its this that these those my me i i'm im you your please pls now then just also too so ok okay
and but with by of to on in at for from as is be are was sound sounds sounding make makes made give get let hear
can could would will do does try set put bit little lot lots touch tad tiny slightly somewhat much way very really
more less even again still further quite pretty rather some any bring turn take up down out back
cut reduce lower drop remove boost add increase raise decrease tame pump crank extra not too
like if were though sounded playing played through via using over version one thing
around about roughly approximately by db dB hz khz k decibel decibels what how
es bitte etwas mach machen noch ein bisschen mehr weniger hazlo haz por favor un poco más mas menos muy lo la el
plus moins s'il vous plaît plait rends rendre le son un peu più meno per favore rendi il suono po' po un' della del
lift tame clean pull scoop fatten dial rein roll enhance emphasize emphasise open mix whole overall track song
""".split())
#: Words that name a stem or a whole-part move ("karaoke"), for the fast path's coverage check.
STEM_WORDS = frozenset(
    "vocals vocal voice voices singer singers singing vox lead drums drum kit percussion guitar guitars piano pianos "
    "keys keyboard keyboards synth synths strings accompaniment bass line lines part parts stem track player bassist "
    "karaoke instrumental minus sing-along singalong cappella acapella".split())
#: Words of a stem's level move (mute, solo, louder, quieter …).
STEM_MOVE_WORDS = frozenset(
    "mute remove no without rid kill strip lose drop solo only just isolate isolated itself themselves own louder "
    "loud up boost raise increase forward front pump quiet soft low buried quieter softer down lower reduce "
    "decrease back overpowering".split())
#: Band words of explicit dB moves.
BAND_WORDS = frozenset("low mids low-mids sub bass lows mids midrange presence treble highs air".split())
#: Words of follow-up phrases.
FOLLOW_UP_WORDS = frozenset(
    "undo redo reset start over original back go revert take compare a/b before after hear play enough again "
    "that's thats much more less too not unprocessed perfect great nice good cool awesome excellent lovely thanks "
    "thank cheers love better keep yes twice steps step two three".split())


def is_plain_follow_up(text: str) -> bool:
    """Whether a follow-up request says nothing beyond the follow-up ("undo that", "way too much now")."""
    return all(t in FOLLOW_UP_WORDS or t in FILLER for t in re.findall(r"[^\W\d_][\w'/\-]*", normalise(text)))


_VOLUME = re.compile(r"\b(louder|quieter|softer|volume|turn it (up|down)|crank it|too (loud|quiet|soft))\b")


def mentions_volume(text: str) -> bool:
    """Whether a request is about the overall level ("louder", "turn it up", "volume")."""
    return _VOLUME.search(normalise(text)) is not None
