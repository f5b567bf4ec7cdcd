"""Reading a question: which read-only tools (:mod:`agent.answers`) answer it.

The closed vocabulary reads the common shapes first ("do the AirPods Max have more bass than the
QC45?", "which Sony models do you know?", "how loud is this?", "what would 'warmer' do?", "what did you
change?"); anything else goes to the LLM, which writes a :class:`~agent.answers.QuestionPlan` (a JSON
schema over the tool choice, validated by pydantic); invalid output gets one repair attempt, then
the question is refused with a clear answer. A request that *renders* something ("how would this
sound on my AirPods?") is no question: it is processed.
"""

from __future__ import annotations

import json
import re

import numpy as np

from pydantic import ValidationError
from rapidfuzz import fuzz

from agent import answers as a
from agent.llm import LLMBackend, LLMError
from agent.rules import normalise
from agent.schemas import llm_json_schema
from knowledge.device_aliases import device_aliases
from knowledge.device_aliases import normalise as device_words
from knowledge.expert import ExpertVocabulary

#: How many tool calls one question may make.
STEP_LIMIT = 3
REFUSAL = ("I can answer questions about devices (\"do the AirPods Max have more bass than the QC45?\", \"which Sony "
           "models do you know?\"), this track (\"how loud is this?\", \"is it clipping?\"), sound words (\"what would "
           "warmer do?\") and the last result (\"what did you change?\"). Could you ask it one of those ways?")
_QUESTION = re.compile(r"\?\s*$|^(?:do|does|did|is|are|was|were|which|what|what's|whats|how|why|can you tell|tell me|"
                       r"list|describe|compare|explain|show me)\b")
#: "how would this sound on …", "what would it sound like on …": render the device (a request, not a question).
_RENDERS = re.compile(r"\b(?:this|it|the (?:track|song|mix|music)|my (?:track|song|music))\s+(?:would|will)\s+"
                      r"(?:sound|be)\b|\bsound like (?:it'?s |it is )?(?:on|through)\b|\b(?:make|play|render)\b")
_MORE_THAN = re.compile(r"(?:do|does|is|are)\s+(?:the\s+)?(.+?)\s+(?:have|has|got|sound)\s+(more|less)\s+(.+?)\s+than\s+"
                        r"(?:the\s+|my\s+)?(.+?)\s*\??$")
_ER_THAN = re.compile(r"(?:is|are|do|does|would|will)\s+(?:the\s+)?(.+?)\s+(?:sound\s+)?(\w+er)\s+(?:to\s+me\s+|for\s+me\s+)?"
                      r"than\s+(?:the\s+|my\s+)?(.+?)\s*\??$")
#: A statement about a device, then a question about "they"/"it": "people say the Sony WH-1000XM4 are bass-heavy.
#: Are they?", "my Shure SE112 sound dull to me. How do they measure?"
_SAID_THEN_ASKED = re.compile(r"(?:the|my|these|those)\s+(.+?)\s+(?:are|is|sound|sounds|seem|seems|feel|feels)\s+"
                              r"(?:too\s+|very\s+|so\s+|really\s+|a\s+bit\s+|kind\s+of\s+)?([\w-]+)[^.!?]*[.!]\s*"
                              r"(?:are|is|do|does|how\s+do|how\s+does|what\s+do)\s+(?:they|it|them)\b[^.!?]*\?\s*$")
_TRACK_WORDS = re.compile(r"(?:\w+\s+)?(?:mix|track|song|music|audio|recording|master|vocals?|voice|sound|bass|drums|"
                          r"guitars?|piano|low end|highs|top end|result|output)")
#: "which is closer to neutral, the WF-1000XM5 or the WF-1000XM4?", "which one sounds warmer, A or B?"
_WHICH_IS = re.compile(r"which\s+(?:one\s+)?(?:is|are|sounds?)\s+(?P<what>closer to neutral|more neutral|flatter|more [\w-]+|"
                       r"[\w-]+er)\s*,?\s+(?:the\s+)?(?P<a>.+?)\s+or\s+(?:the\s+)?(?P<b>.+?)\s*\??$")
#: "do you have the Sony WH-1000XM5 in your database?": answered by describing it (or saying it is unknown).
_DO_YOU_HAVE = re.compile(r"^do\s+you\s+(?:have|know|support)\s+(?!any\s|other\s|some\s)(?:measurements?\s+(?:of|for)\s+|data\s+(?:on|for)\s+)?"
                          r"(?:the\s+)?(?P<device>.+?)(?:\s+in\s+your\s+\w+|\s+measured)?\s*\??$")
#: "is the IE 900 V-shaped?", "are my XM4 too bassy?", "how bright are the AirPods Max?": a device and one word.
_IS_WORD = re.compile(r"^(?:is|are)\s+(?:the\s+|my\s+|these\s+|those\s+)?(?P<device>.+?)\s+(?:too\s+|very\s+|really\s+|"
                      r"quite\s+|a\s+bit\s+|kind\s+of\s+)?(?P<word>[\w-]+)\s*\??$|"
                      r"^how\s+(?P<word2>[\w-]+)\s+(?:is|are)\s+(?:the\s+|my\s+|these\s+|those\s+)?(?P<device2>.+?)\s*\??$|"
                      r"^(?:do|does)\s+(?:the\s+|my\s+|these\s+|those\s+)?(?P<device3>.+?)\s+sound\s+(?:too\s+|very\s+|really\s+|"
                      r"a\s+bit\s+|kind\s+of\s+)?(?P<word3>[\w-]+)\s*\??$")
_DIFFER = re.compile(r"how\s+(?:do|does)\s+(?:the\s+)?(.+?)\s+and\s+(?:the\s+|my\s+)?(.+?)\s+(?:differ|compare)\b")
_WHICH_HAS = re.compile(r"which\s+(?:one\s+)?(?:has|have|is)\s+(?:the\s+)?(more|less|most|least)\s+(.+?),?\s+(?:the\s+)?"
                        r"(.+?)\s+or\s+(?:the\s+)?(.+?)\s*\??$")
_VS = re.compile(r"^compare\s+(?:the\s+)?(.+?)\s+(?:and|with|to|vs\.?)\s+(?:the\s+)?(.+?)\s*\??$|^(.+?)\s+vs\.?\s+(.+?)\s*\??$")
_DESCRIBE = re.compile(r"(?:what|how)\s+(?:do|does|is|are)\s+(?:the\s+)?(.+?)(?:'s|’s)?\s+(?:sound\s+like|sound|like)\s*\??$|"
                       r"^describe\s+(?:the\s+)?(.+?)\s*\??$|^what\s+(?:is|are)\s+(?:the\s+)?(.+?)(?:'s|’s)\s+sound(?:\s+like)?\s*\??$")
_LIST = re.compile(r"(?:which|what|how\s+many)\s+(?:([\w-]+)\s+)?(?:models|headphones|earbuds|earphones|iems|in-ears|devices|"
                   r"ones)\s+(?:do you|have you|can you|are there|are in|you know|you have|you've got)|"
                   r"^list\s+(?:the\s+|all\s+)?(?:([\w-]+)\s+)?(?:models|headphones|earbuds|earphones|devices)|"
                   r"^do\s+you\s+(?:have|know)\s+(?:any|other|some)\s+(?:([\w-]+)\s+)?(?:models|headphones|earbuds|"
                   r"earphones|iems|in-ears|devices)\b")
_RANK = re.compile(r"which\s+(?:one\s+|pair\s+)?(?:of\s+my\s+(?:headphones|earbuds|earphones|devices|ones|pairs)|of\s+mine)\s+"
                   r"(?:is|has|have|are)\s+(?:the\s+)?"
                   r"(closest to neutral|most neutral|flattest|most|least)\s*(\w[\w ]*?)?\s*\??$")
_LOUD = re.compile(r"\bhow loud\b|\bloudness\b|\blufs\b|\bclipping\b|\bclip\b|\btrue peak\b|\bpeak level\b|\banaly[sz]e\b|"
                   r"\bdynamic range\b|\bloudness range\b|\bhow dynamic\b|\bdynamics\b|\btoo (?:loud|quiet)\b|\bloud enough\b|\bmastered\b|\bhow quiet\b")
_WHY_SOUNDS = re.compile(r"why\s+(?:does|is)\s+(?:it|this(?:\s+\w+)?|the\s+\w+|my\s+\w+)\s+(?:sound\s+)?(?:so\s+|too\s+)?([\w ]+?)\s*\??$")
_WOULD_WORD = re.compile(r"what\s+(?:would|does|will|could)\s+['\"“]?(?:(?:more|less|a\s+bit|a\s+little)\s+)*([\w ]+?)['\"”]?\s+"
                         r"(?:do|change|affect|boost|cut|touch)\b|"
                         r"what\s+does\s+['\"“]?([\w ]+?)['\"”]?\s+mean\b")
_DIFFERENCE = re.compile(r"difference\s+between\s+(?:the\s+)?['\"“]?(.+?)['\"”]?\s+and\s+(?:the\s+)?['\"“]?(.+?)['\"”]?\s*\??$")
_IF_ASKED = re.compile(r"if\s+i\s+(?:asked|ask|said|say|wanted|want)\s+(?:you\s+)?(?:for\s+)?(?:it\s+)?(?:a\s+bit\s+)?"
                       r"(?:more\s+|less\s+)?['\"“]?([\w -]+?)['\"”]?\s*,?\s+(?:what|which|how|where)\b")
_CHANGED = re.compile(r"what\s+(?:exactly\s+)?(?:did|have)\s+you\s+(?:just\s+)?(?:change|do|done|changed)|"
                      r"what\s+(?:exactly\s+|just\s+)?changed|"
                      r"why\s+did\s+you\s+(?:cut|boost|lower|raise|change)|"
                      r"how\s+much\s+did\s+you\s+(?:boost|cut|change|raise|lower|turn|move|add|take)|what\s+did\s+that\s+do|"
                      r"why\s+(?:that|this|those|these)\s+(?:frequenc\w*|range|region|band|cut|boost|amount|much|filter|setting)")
_FREQ = re.compile(r"(\d+(?:\.\d+)?)\s*(k)?(?:hz)?\b")
_TYPES = {"over-ear": "over-ear", "over ear": "over-ear", "in-ear": "in-ear", "in ear": "in-ear", "earbud": "earbud",
          "earbuds": "earbud", "in-ears": "in-ear", "iems": "in-ear", "iem": "in-ear", "over-ears": "over-ear"}


_DOMAIN = re.compile(r"\b(?:headphones?|earbuds?|earphones?|iems?|in-ears?|cans|buds|pairs?|models?|devices?|database|data|"
                     r"measure\w*|track|song|mix|music|audio|sounds?|sounding|loud\w*|lufs|clip\w*|peaks?|eq|equali[sz]\w*|"
                     r"frequenc\w*|hz|khz|db|bass|treble|mids?|highs|lows|vocals?|drums|stems?|tone|spectrum|change[ds]?|"
                     r"cut|boost\w*)\b")


def about_sound(request: str, brands: set[str] | frozenset[str] = frozenset()) -> bool:
    """Whether a request is about sound, devices or the audio: a domain word, a brand of the store
    (``brands``, lower case) or a sound word of the expert vocabulary. "what's the weather?" is not."""
    text = normalise(request)
    words = set(re.findall(r"[\w-]+", text))
    return bool(_DOMAIN.search(text) or words & set(brands) or any(_is_word(w) for w in words if len(w) > 3))


def is_question(request: str) -> bool:
    """Whether a turn asks something rather than asking for a change (a render question is a change)."""
    text = normalise(request)
    return bool(_QUESTION.search(text)) and not _RENDERS.search(text)


def _is_word(phrase: str) -> bool:
    """Whether a phrase is a sound word of the expert vocabulary (else, in a comparison, a device)."""
    return ExpertVocabulary.load().lookup(phrase.strip(" '\"“”")) is not None


def _devices_question(text: str) -> a.QuestionCall | None:
    m = _SAID_THEN_ASKED.search(text)
    if m and not _TRACK_WORDS.fullmatch(m.group(1)):
        return a.DescribeDevice(device=m.group(1), word=m.group(2) if _is_word(m.group(2)) else None)
    m = _MORE_THAN.search(text)
    if m:
        first, second = (m.group(1), m.group(4))
        return a.CompareDevices(a=first, b=second, band=m.group(3)) if m.group(2) == "more" else \
            a.CompareDevices(a=second, b=first, band=m.group(3))
    m = _ER_THAN.search(text)
    if m and m.group(2) not in ("better", "louder", "quieter"):
        return a.CompareDevices(a=m.group(1), b=m.group(3), band=m.group(2))
    m = _WHICH_IS.search(text)
    if m:
        what = m.group("what")
        band = "neutral" if "neutral" in what or "flat" in what else re.sub(r"^more\s+", "", what)
        return a.CompareDevices(a=m.group("a"), b=m.group("b"), band=band)
    m = _WHICH_HAS.search(text)
    if m:
        return a.CompareDevices(a=m.group(3), b=m.group(4), band=m.group(2))
    m = _DIFFER.search(text) or _DIFFERENCE.search(text)
    if m and not (_is_word(m.group(1)) and _is_word(m.group(2))):
        return a.CompareDevices(a=m.group(1), b=m.group(2))
    m = _VS.search(text)
    if m and not _CHANGED.search(text):
        first, second = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return a.CompareDevices(a=first, b=second)
    m = _IS_WORD.search(text)
    device, word = (m.group("device") or m.group("device2") or m.group("device3"),
                    m.group("word") or m.group("word2") or m.group("word3")) if m else ("", "")
    if m and _device_like(device) and (word in a.SHAPE_ASKED or _is_word(word)):
        return a.DescribeDevice(device=device, word=word)
    if m and _THE_TRACK.fullmatch(device) and _is_word(word):  # "is it muddy?", "is this track too bright?"
        return a.AnalyzeTrack(word=word)
    m = _DO_YOU_HAVE.search(text)
    if m and _device_like(m.group("device")):
        return a.DescribeDevice(device=m.group("device"))
    return None


_THE_TRACK = re.compile(r"it|this|that|(?:(?:this|the|my)\s+)?(?:mix|track|song|music|recording|master)")


def _device_like(phrase: str) -> bool:
    """Whether a phrase may name a device: not the track ("the mix", "this song") nor a pronoun ("it", "this")."""
    return phrase not in ("it", "this", "that", "they", "them", "everything") and not _TRACK_WORDS.fullmatch(phrase)


def _other_question(text: str) -> a.QuestionCall | None:
    if _CHANGED.search(text):
        f = _FREQ.search(text) if re.search(r"\bwhy\b", text) else None
        if f:
            return a.ExplainLast(frequency_hz=float(f.group(1)) * (1000 if f.group(2) else 1))
        band = next((b for w, b in a.BAND_WORDS.items() if re.search(rf"\b{w}\b", text)), None)  # "… to the bass?"
        return a.ExplainLast(frequency_hz=round(float(np.sqrt(np.prod(a.BANDS_HZ[band]))), 1) if band else None)
    m = _DIFFERENCE.search(text)
    if m:
        return a.PreviewWord(word=m.group(1), other=m.group(2))
    m = _IF_ASKED.search(text)
    if m:
        return a.PreviewWord(word=m.group(1))
    m = _WOULD_WORD.search(text)
    if m:
        return a.PreviewWord(word=m.group(1) or m.group(2))
    m = _WHY_SOUNDS.search(text)
    if m:
        return a.AnalyzeTrack(word=m.group(1))
    if _LOUD.search(text):
        asked = [f for f, pattern in _FOCUS.items() if re.search(pattern, text)]
        return a.AnalyzeTrack(focus=asked[0] if len(asked) == 1 else "all")
    m = _WHICH_GROUP.search(text)
    if m and not re.fullmatch(r"of|my|your|these|those|the|one|ones|pair|it", m.group("group")):
        how, what = m.group("how") or "most", m.group("what") or m.group("est") or "neutral"
        group = m.group("group").replace(" ", "-")
        kind = next((t for w, t in _TYPES.items() if w.replace(" ", "-") in (group, m.group("kind"))), None)
        return a.RankDevices(by="neutral" if m.group("neutral") else what, owned=False, most=how == "most",
                             brand=None if group in (*_TYPES, "over-ear", "in-ear", "headphones", "iems") else group,
                             type=kind)
    m = _RANK.search(text)
    if m:
        how = m.group(1)
        by = "neutral" if "neutral" in how or "flat" in how else (m.group(2) or "bass")
        return a.RankDevices(by=by, owned=True, most=how != "least")
    m = _LIST.search(text)
    if m:
        word = m.group(1) or m.group(2) or m.group(3)
        kind = next((t for w, t in _TYPES.items() if w in text), None)
        return a.ListDevices(brand=None if word in (None, "the", "all", "other", "my") or word in _TYPES else word,
                             type=kind, owned=bool(re.search(r"\bmy\b", text)))
    m = _DESCRIBE.search(text)
    if m:
        return a.DescribeDevice(device=_NOT_NAME.sub("", next(g for g in m.groups() if g)))
    return None


#: Words after a model's name that are not part of it ("the QC45 frequency response look like").
_NOT_NAME = re.compile(r"\s+(?:frequency\s+response|fr|response|curve|measurements?|graph|sound|tuning)?\s*(?:look|looks)?$")
#: "which of the Sennheiser models is brightest?", "which over-ear headphones have the most bass?": a ranking
#: within a brand or a type.
_WHICH_GROUP = re.compile(r"^which\s+(?:of\s+the\s+|one\s+of\s+the\s+)?(?P<group>[\w&-]+|over ear|in ear)\s+(?P<kind>models?|headphones|"
                          r"earbuds|earphones|iems|in-ears|ones|pairs?|cans)?\s*(?:do you know\s+|you know\s+)?(?:is|are|has|have|"
                          r"sounds?)\s+(?:the\s+)?(?:(?P<neutral>closest to neutral|most neutral|flattest)|(?P<how>most|least)\s+"
                          r"(?P<what>[\w -]+?)|(?P<est>\w+?)i?est)\s*\??$")
_FOCUS = {"clipping": r"\bclip", "peak": r"\bpeak", "loudness": r"\b(?:loud|lufs\b|dynamic)"}


_OF_THE_TWO = re.compile(r"which\s+(?:one\s+)?(?:of\s+(?:the|those|these)\s+(?:two|2)|of\s+(?:them|those|the\s+pair))\s+"
                         r"(?:has|have|is|sounds?)\s+(?:the\s+)?(?:more|most)\s+(.+?)\s*\??$|"
                         r"which\s+(?:one\s+)?(?:of\s+(?:the|those|these)\s+(?:two|2)|of\s+(?:them|those))\s+(?:is|sounds?)\s+(\w+er)\b")


#: "which of those has the most bass?", "which of them is brightest?" after an answer that named several models.
_OF_THOSE = re.compile(r"which\s+(?:one\s+)?of\s+(?:the|those|these|them)(?:\s+(?:two|2|ones|three|four))?\s+(?:has|have|is|are|"
                       r"sounds?)\s+(?:the\s+)?(?P<how>more|most|less|least)\s+(?P<what>[\w -]+?)\s*\??$|"
                       r"which\s+(?:one\s+)?of\s+(?:the|those|these|them)(?:\s+(?:two|2|ones))?\s+(?:is|are|sounds?)\s+(?:the\s+)?"
                       r"(?P<est>\w+?)(?:i?est)\s*\??$")
#: "what about treble?", "and the mids?" after an answer about one or two models: the same models, that band.
_WHAT_ABOUT = re.compile(r"^(?:and\s+|ok\s+|so\s+)?(?:(?:what|how)\s+about\s+)?(?:the\s+)?(?P<what>[\w -]+?)\s*\?$")


def _about_the_last_answer(text: str, answered: list[str] | tuple[str, ...]) -> a.QuestionCall | None:
    """A question about the models the last answer named: of several, which has the most/least of something;
    "what about treble?" on the same one or two."""
    m = _OF_THOSE.search(text) if len(answered) > 2 else None
    if m:
        how, what = (m.group("how"), m.group("what")) if m.group("how") else ("most", m.group("est"))
        by = "neutral" if "neutral" in what or "flat" in what else what
        return a.RankDevices(by=by, owned=False, most=how in ("more", "most"), among=list(answered))
    m = _WHAT_ABOUT.search(text) if answered and text.split()[0] in ("what", "how", "and", "ok", "so") else None
    if m and (m.group("what") in a.BAND_WORDS or _is_word(m.group("what")) or m.group("what") in a.NEUTRAL_WORDS):
        if len(answered) >= 2:
            return a.CompareDevices(a=answered[0], b=answered[1], band=m.group("what"))
        return a.DescribeDevice(device=answered[0], word=m.group("what"))
    return None


def rule_calls(request: str, answered: list[str] | tuple[str, ...] = ()) -> list[a.QuestionCall] | None:
    """The tools the closed vocabulary reads in a question, or None (the LLM should read it).

    ``answered``: the models the last answer named; "which of the two has more treble?" compares them.
    """
    text = normalise(request)
    m = _OF_THE_TWO.search(text) if len(answered) == 2 else None
    if m:
        return [a.CompareDevices(a=answered[0], b=answered[1], band=m.group(1) or m.group(2))]
    call = _about_the_last_answer(text, answered) or _devices_question(text) or _other_question(text)
    return [call] if call is not None else None


_SYSTEM = ("You choose read-only tools that answer a question to an audio assistant, as JSON {\"calls\": [...]} with "
           "1 to 3 calls. Tools: compare_devices(a, b, band) — how two headphones differ (band: bass, treble, mids … "
           "or a sound word such as bright or warm, if asked, else null); describe_device(device, word) — what a "
           "headphone sounds like (word: a sound word asked about, as in 'are they harsh?', else null); "
           "list_devices(brand, type, owned) — which models are known (type: in-ear, earbud, over-ear or null; owned "
           "true for 'my'); rank_devices(by, owned, most) — which device has the most/least of a band or sound word, "
           "or by 'neutral'; analyze_track(word) — loudness, peaks, clipping, balance of the current track (word: a "
           "sound word asked about, else null); preview_word(word, other) — what a tone word would do (other: a "
           "second word to contrast, else null); explain_last(frequency_hz) — what the last result changed "
           "(frequency_hz if a frequency is asked about, else null). Copy device names and words as the person "
           "wrote them.")
_EXAMPLES = [
    ("is the Sony WH-1000XM5 bassier than the Bose QC45?",
     {"calls": [{"tool": "compare_devices", "a": "Sony WH-1000XM5", "b": "Bose QC45", "band": "bass"}]}),
    ("how do the AirPods Pro 2 sound?", {"calls": [{"tool": "describe_device", "device": "AirPods Pro 2", "word": None}]}),
    ("my Koss Porta Pro sound thin to me. How do they measure?",
     {"calls": [{"tool": "describe_device", "device": "Koss Porta Pro", "word": "thin"}]}),
    ("how does the track measure, is it too loud?", {"calls": [{"tool": "analyze_track", "word": None, "focus": "all"}]}),
    ("why does this sound so harsh?", {"calls": [{"tool": "analyze_track", "word": "harsh", "focus": "all"}]}),
    ("what Sennheiser headphones do you have data for?",
     {"calls": [{"tool": "list_devices", "brand": "Sennheiser", "type": None, "owned": False}]}),
    ("tell me what you did to the 250 Hz region",
     {"calls": [{"tool": "explain_last", "frequency_hz": 250}]}),
]


def _schema() -> dict:
    return llm_json_schema(a.QuestionPlan)


def _messages(request: str, answered: list[str] | tuple[str, ...] = ()) -> list[dict]:
    messages = [{"role": "system", "content": _SYSTEM}]
    for text, plan in _EXAMPLES:
        reply = json.dumps(plan, separators=(",", ":"))  # compact, as the decoder writes replies
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
    said = f"(My last answer was about: {', '.join(answered[:3])}.) {request}" if answered else request
    return [*messages, {"role": "user", "content": said}]


#: Words of a model name that do not tell it from others ("pro", "max"): they ground no device.
_GENERIC = frozenset("the headphones headphone earbuds earphones pro max plus mini gen generation 2nd 1st 3rd true "
                     "wireless in ear over on".split())


def device_grounded(name: str, request: str, answered: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether the request (or the last answer, for "them", "those") names the device ``name``: the name or
    one of its aliases ("qc 45") is in the request, spaces aside, or the name without its brand scores ≥ 70
    partial ratio, or one of its distinctive words is a word of the request, or it is a model the last
    answer named."""
    said = device_words(request)
    flat = said.replace(" ", "")
    if any(f.replace(" ", "") in flat for f in (device_words(name), *device_aliases(name))):
        return True
    own = device_words(name).split()
    model = own[1:] if len(own) > 1 else own  # the brand alone does not name a model ("Sennheiser HDX 250")
    if len(" ".join(model)) >= 4 and fuzz.partial_ratio(" ".join(model), said) >= 70:
        return True
    if any(fuzz.WRatio(name, n) >= 85 for n in answered):
        return True
    words = set(said.split()) | {w[:-1] for w in said.split() if w.endswith("s")}  # "the 700s", "xm4s"
    return bool((set(model) - _GENERIC) & words)


def _grounded_calls(calls: list[a.QuestionCall], request: str, answered: list[str] | tuple[str, ...],
                    notes: list[str]) -> list[a.QuestionCall]:
    """Drop devices the question never names (the LLM invents a second model to compare with): a
    comparison with one such side becomes a description of the other ("how bassy are the XM5?"), a
    description of one is dropped."""
    kept = []
    for call in calls:
        names = [getattr(call, k) for k in ("a", "b", "device") if hasattr(call, k)]
        unnamed = [n for n in names if not device_grounded(n, request, answered)]
        if unnamed:
            notes.append(f"dropped {', '.join(map(repr, unnamed))} from {call.tool}: not in the question")
        if isinstance(call, a.CompareDevices) and len(unnamed) == 1:
            other = call.b if unnamed[0] == call.a else call.a
            call = a.DescribeDevice(device=other, word=call.band)
        elif unnamed:
            continue
        call = _words_grounded(call, request, notes)
        if call is not None:
            kept.append(call)
    return kept


def _said(word: str, request: str) -> bool:
    """Whether ``word`` is in the request, spacing aside: as written, by its first 4 letters ("boominess" for
    "boomy"), as another name of the same band ("low end" for "bass") or, for "neutral", as "flat"."""
    flat = lambda x: re.sub(r"[\s\-_'\"“”]", "", x.lower())  # noqa: E731
    w, said = flat(word), flat(request)
    if not w:
        return False
    if w in said or (len(w) >= 5 and w[:4] in said):
        return True
    band = a.BAND_WORDS.get(word.lower().strip())
    if band is not None:
        return any(flat(k) in said for k, v in a.BAND_WORDS.items() if v == band)
    return word.lower().strip() in a.NEUTRAL_WORDS and ("neutral" in said or "flat" in said)


_OWNED = re.compile(r"\b(?:my|mine|i own|i have|i've got|i got)\b")
_TYPE_SAID = re.compile(r"\b(?:in-ears?|in ears?|iems?|earbuds?|buds|over-ears?|over ears?|earphones)\b")


def _words_grounded(call: a.QuestionCall, request: str, notes: list[str]) -> a.QuestionCall | None:
    """Drop the words, frequencies and flags of a call that the question does not say (the LLM invents a
    second word to contrast, a frequency, "owned"); a word preview of a word never said is dropped."""
    text, updates = normalise(request), {}
    for key in ("word", "other", "band", "by"):
        value = getattr(call, key, None)
        if value and not _said(value, text):
            updates[key] = None
    other = getattr(call, "other", None)
    if other and "other" not in updates and not (_is_word(other) or other.lower() in a.BAND_WORDS):
        updates["other"] = None  # "what's presence in EQ terms?": "EQ" is no second word to contrast
    if getattr(call, "frequency_hz", None) is not None and not re.search(r"\d", text):
        updates["frequency_hz"] = None
    if getattr(call, "owned", False) and not _OWNED.search(text):
        updates["owned"] = False
    if getattr(call, "type", None) and not _TYPE_SAID.search(text):
        updates["type"] = None
    if getattr(call, "brand", None) and not _said(call.brand, text):
        updates["brand"] = None
    if not updates:
        return call
    notes.append(f"{call.tool}: dropped {', '.join(f'{k}={getattr(call, k)!r}' for k in updates)}: not in the question")
    if updates.get("word", 1) is None and isinstance(call, a.PreviewWord) or "by" in updates:
        return None
    return call.model_copy(update=updates)


_UNAVAILABLE = "LLM unavailable for the tool choice: "


def fallback_line(notes: list[str]) -> str | None:
    """The reply's sentence when :func:`llm_calls` could not use the LLM (server or model failed), else None."""
    why = next((n.removeprefix(_UNAVAILABLE) for n in notes if n.startswith(_UNAVAILABLE)), None)
    return None if why is None else (f"The planner was unavailable ({' '.join(why.split())}); I can only answer the "
                                     "questions the rule parser reads.")


def llm_calls(request: str, llm: LLMBackend, notes: list[str], raw: list[str],
              answered: list[str] | tuple[str, ...] = ()) -> list[a.QuestionCall] | None:
    """The LLM's tool choice for a question (told which models the last answer named, for "the two", "them"):
    validated, one repair attempt; None when it fails twice or the LLM is down."""
    messages = _messages(request, answered)
    for attempt in ("llm", "llm-repair"):
        try:
            reply = llm.complete_json(messages, _schema(), max_tokens=160)
        except LLMError as exc:
            notes.append(f"{_UNAVAILABLE}{exc}")
            return None
        raw.append(reply)
        try:
            calls = a.QuestionPlan.model_validate_json(reply).calls[:STEP_LIMIT]
            return _grounded_calls(calls, request, answered, notes)
        except ValidationError as exc:
            error = exc.errors()[0]
            notes.append(f"invalid tool call ({attempt}): {error['msg']} at {'.'.join(map(str, error['loc']))}")
            messages = [*messages, {"role": "assistant", "content": reply[:400]},
                        {"role": "user", "content": f"That is not a valid tool call ({error['msg']} at "
                                                    f"{'.'.join(map(str, error['loc']))}). Answer the same question "
                                                    f"again: {request!r}. Reply with JSON {{\"calls\": [...]}} "
                                                    "using only the tools and arguments listed."}]
    return None


_MINE = r"(?:headphones|earbuds|earphones|iems|devices|pairs|ones|cans|buds)"
_END = r"(?=\s*(?:,|\.|!|\?|$|\s+and\b|\s+please\b))"
#: "whichever of my headphones has the most bass", "the pair I own with the least bass", "the one of mine that is
#: closest to neutral": (most|least|closest to) + what.
_WHICHEVER = re.compile(rf"(?:the\s+)?(?:(?:one|pair)\s+of\s+my\s+\w+|(?:one|pair)\s+of\s+mine|whichever\s+of\s+my\s+{_MINE}|"
                        rf"(?:one|pair|{_MINE})\s+i\s+(?:own|have))\s+(?:that\s+)?(?:has|have|is|with)\s+(?:the\s+)?"
                        rf"(?P<how>most|least|closest to)\s+(?P<what>[\w ]+?){_END}")
#: "the brightest of my earphones", "my most neutral pair": a superlative.
_SUPERLATIVE = re.compile(rf"(?:the\s+)?(?P<how>most|least)?\s*(?P<what>\w+?)(?:iest|est)?\s+(?:one\s+|pair\s+)?of\s+my\s+"
                          rf"{_MINE}{_END}|\bmy\s+(?P<how2>most|least)\s+(?P<what2>\w+)\s+(?:pair|one|{_MINE}){_END}")


def _superlative(m: re.Match) -> tuple[str, str] | None:
    """(most|least, word) of a superlative phrase, or None when the word is not a sound word or band."""
    how, word = (m.group("how") or m.group("how2") or "most"), (m.group("what") or m.group("what2"))
    if word in ("flat", "neutral", "flatt"):
        return how, "neutral"
    whole = m.group(0)
    for stem in (word, word + "y", word + "e"):  # bassi(est) → bassy, brigh(test)…
        if stem in a.BAND_WORDS or ExpertVocabulary.load().lookup(stem) is not None:
            return how, stem
    return (how, "neutral") if "neutral" in whole else None


def _ranked_by(text: str) -> tuple[re.Match, str, bool] | None:
    """The multi-step phrase in a request: its match, what to rank by and whether the most of it is meant."""
    m = _WHICHEVER.search(text)
    if m is not None:
        how, what = m.group("how"), m.group("what").strip()
        return m, ("neutral" if how == "closest to" or "neutral" in what else what), how != "least"
    for m in _SUPERLATIVE.finditer(text):
        found = _superlative(m)
        if found is not None:
            return m, found[1], found[0] != "least"
    return None


def whichever(request: str, ctx: a.AskContext) -> tuple[str, a.Answer] | None:
    """A multi-step request ("make it sound like whichever of my headphones has the most bass"): rank the
    person's devices, then the request with the winner named in place; None when there is no such phrase."""
    text = normalise(request)
    found = _ranked_by(text)
    if found is None:
        return None
    m, by, most = found
    answer = a.run(a.RankDevices(by=by, owned=True, most=most), ctx)
    best = answer.facts.get("best")
    if best is None:
        return None if "not_answerable" not in answer.facts else ("", answer)
    return text[: m.start()] + best + text[m.end():], answer


#: "use that one", "go with those", "let's hear them": the model the last answer named first.
_USE_THAT = re.compile(r"^(?:(?:ok(?:ay)?|yes|yeah|great|nice|cool|then|so|alright)[,!.]?\s+)*(?:use|try|take|pick|choose|"
                       r"go with|let'?s (?:hear|use|try|go with)|i'?ll take|play it (?:on|through|with))\s+(?:that|this|those|"
                       r"these|them|it)(?:\s+(?:one|ones|pair|headphones|earbuds))?(?:\s+(?:please|then|instead))*[.!]?$")
#: "fix it", "do that", "go ahead": what the last answer proposed ("less bright").
_DO_IT = re.compile(r"^(?:(?:ok(?:ay)?|yes|yeah|sure|great|then|so|alright|please)[,!.]?\s+)*(?:fix it|fix that|do it|do that|"
                    r"go ahead|apply (?:it|that)|make it so|change it|please do|yes please|yes|sure|please)(?:\s+(?:please|then|for me))*[.!]?$")


def follow_answer(request: str, answered: list[str] | tuple[str, ...], suggested: str | None) -> str:
    """A turn that acts on the last answer, spelled out: "use that one" → "make it sound like the <model the
    answer named first>", "then fix it" → the request it proposed ("less bright"); else the request as is."""
    text = normalise(request).strip()
    if answered and _USE_THAT.match(text):
        return f"make it sound like the {answered[0]}"
    if suggested and _DO_IT.match(text):
        return suggested
    return request
