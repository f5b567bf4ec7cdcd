"""The fast path: a request the rule parser reads with full confidence skips the LLM.

Full confidence means every word of the request is accounted for by a closed vocabulary: a
follow-up phrase ("undo", "a bit more"), a tone word the prior knows exactly (or a band word, a
comparative of one), numbers with their unit ("3 dB", "250 Hz"), stem words and their moves, the
device name the rules captured, and a short list of filler and verb words. One unexplained word
("it sounds tinny", "Mach es wärmer", a typo) sends the request to the LLM.
"""

from __future__ import annotations

import re
from agent import rules
from agent.schemas import Intent

_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?(?:k|khz|hz|db)?$")


def _tokens(text: str) -> list[str]:
    return re.findall(r"[+-]?\d+(?:\.\d+)?(?:k|khz|hz|db)?|[^\W\d_][\w'\-]*", text)


def _explained(intent: Intent, vocab: rules.Vocabulary) -> set[str]:
    """Words the parse accounts for: its tone words (if the prior knows them), stem and band words."""
    words: set[str] = set()
    for adj in intent.adjustments:
        if not vocab.known(adj.descriptor):
            return set()
        words |= {adj.descriptor, *adj.descriptor.split(), *(k for k, v in rules.COMMON_COMPARATIVES.items()
                                                             if v == adj.descriptor)}
    for device in (intent.target_device, intent.listening_device):
        words |= set(_tokens(device or ""))
    words |= rules.STEM_WORDS | rules.BAND_WORDS | rules.STEM_MOVE_WORDS
    return words


def is_confident(request: str, intent: Intent, vocab: rules.Vocabulary) -> bool:
    """Whether the rule parser's ``intent`` of ``request`` explains every word of it.

    Args:
        request: the person's words.
        intent: ``rules.parse(request, vocab)``.
        vocab: the closed vocabulary (tone words the prior knows exactly, not by an embedding guess).
    """
    text = rules.normalise(request)
    if intent.action == "off_topic":
        return False
    if intent.action == "follow_up":
        return rules.is_plain_follow_up(text)
    if intent.adjustments and any(not vocab.known(a.descriptor) for a in intent.adjustments):
        return False
    explained = _explained(intent, vocab) | rules.FILLER
    return not [t for t in _tokens(text) if t not in explained and not _NUMBER.match(t)]


def confident_parse(request: str, vocab: rules.Vocabulary) -> Intent | None:
    """The rule parser's intent when it explains every word of ``request``, else None (the LLM should read it)."""
    intent = rules.parse(request, vocab)
    return intent if is_confident(request, intent, vocab) else None
