"""Word → EQ population prior from Audealize / SocialEQ crowd data.

Source: interactiveaudiolab/audealize_api, ``static/data/eqdescriptors.json`` (shared copy in
``data_dir()/prefs/audealize/``; research data, no licence stated — cite Seetharaman & Pardo,
"Audealize" (2016) and Cartwright & Pardo, "Social-EQ" (2013)). 394 words (294 English, 100
Spanish), each 40 band settings. Applied as Audealize does (see the data's SOURCES.md): 40
peaking filters, Q = 4.31, at AUDEALIZE_FREQS_HZ, gain_db[i] = 5 · amount · curve[i] with the
settings normalised affinely to curve ∈ [-1, 1].
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from knowledge.config import data_dir
from knowledge.index_cache import cached_text_index

AUDEALIZE_FREQS_HZ = np.array([
    20, 50, 83, 120, 161, 208, 259, 318, 383, 455, 537, 628, 729, 843, 971, 1114, 1273, 1452,
    1652, 1875, 2126, 2406, 2719, 3070, 3462, 3901, 4392, 4941, 5556, 6244, 7014, 7875, 8839,
    9917, 11124, 12474, 13984, 15675, 17566, 19682,
], dtype=np.float64)
"""Centre frequencies (Hz) of Audealize's 40 peaking bands."""

AUDEALIZE_Q = 4.31
"""Q of every band (RBJ peakingEQ, about 1/3 octave)."""

AUDEALIZE_MAX_DB = 5.0
"""Band gain in dB at amount 1 and curve value ±1."""

DEFAULT_AMOUNT = 0.5
"""Population default amount (±2.5 dB at the curve's extremes) before the reliability scaling."""

SPELLING_MIN_SIMILARITY = 0.8
"""Damerau-Levenshtein similarity at which a typo is taken for a known word ("harsch" → "harsh")."""

_MODIFIERS = frozenset("a bit little lot more less too much very slightly way somewhat".split())
# Mixing-engineer band words the crowd data lacks, mapped to the crowd word with that shape.
_JARGON = {
    "treble": "bright", "highs": "bright", "high end": "bright", "top end": "bright", "sparkle": "bright",
    "lows": "bassy", "low end": "bassy", "bottom end": "bassy", "sub": "bassy", "sub bass": "bassy",
    "mud": "muddy", "boomy": "boom", "boominess": "boom", "sibilance": "shrill", "sibilant": "shrill",
    "air": "airy", "thin": "tinny", "veiled": "muffled", "tubby": "boom", "relaxed": "relaxing",
    # German words the planner sometimes passes through untranslated (the crowd data is English/Spanish)
    "scharf": "harsh", "dumpf": "muffled", "hell": "bright", "brillant": "bright", "bassig": "bassy",
    "weich": "soft", "klar": "clear", "druckvoll": "punchy", "spitz": "shrill", "matschig": "muddy",
    "luftig": "airy", "dröhnend": "boom",
    # Spanish audio words the crowd data lacks, and English words the planner translates them to
    "graves": "bassy", "agudos": "bright", "cálido": "warm", "calido": "warm", "oscuro": "dark", "brillo": "bright",
    "áspero": "harsh", "aspero": "harsh", "estridente": "shrill", "brilliant": "bright",
}
#: Spanish crowd words with an English twin: the twin is used when more people gave it (the English crowd
#: is larger: "brillante" has 6 contributors, "bright" 35).
_TRANSLATIONS = {"brillante": "bright", "cálido": "warm", "claro": "clear", "oscuro": "dark", "suave": "soft"}
#: Below this cosine an embedding match is a guess (MiniLM puts antonyms close: "thin"→"fat").
EMBEDDING_CONFIDENT = 0.65
# (suffix, replacement) rules tried in order: "harshness"→"harsh", "muddier"→"muddy", "bass"→"bassy"
_SUFFIX_RULES = (
    ("iness", "y"), ("ness", ""), ("ier", "y"), ("iest", "y"), ("ily", "y"), ("er", ""),
    ("est", ""), ("r", ""), ("st", ""), ("ly", ""), ("th", ""), ("", "y"),
)


@dataclass(eq=False)
class DescriptorMatch:
    """The known descriptor a word was matched to.

    Attributes:
        query: the word as asked.
        word: the matched word in the data.
        score: 0..1 confidence: 1.0 exact; the embedding cosine of query and word for 'rule' and
            'embedding' matches; the Damerau-Levenshtein similarity for 'spelling'. Embedding
            matches below ~0.6 are guesses (MiniLM knows little audio jargon: "treble" lands on
            "trimble"), worth confirming with the user.
        lang: 'English' | 'Español'.
        curve: float64 (40,) normalised curve in [-1, 1] on AUDEALIZE_FREQS_HZ.
        agreement: crowd agreement for the word (0.47–0.81).
        num: number of crowd contributions (2–122).
        exact: the query was the word itself (after lower-casing and dropping "more", "too", ...).
        via: 'exact' | 'translation' | 'jargon' | 'rule' (suffix rule) | 'spelling' | 'embedding'.
    """

    query: str
    word: str
    score: float
    lang: str
    curve: np.ndarray = field(repr=False)
    agreement: float
    num: int
    exact: bool
    via: str


class DescriptorPrior:
    """Look up what a word ("harsh", "warmer", "muddiness", "brillante") means as an EQ curve."""

    def __init__(self, entries: list[dict], content_hash: str, embedder=None):
        self._entries = {e["word"].casefold(): e for e in entries}
        self._words = list(self._entries)
        self._hash = content_hash
        self._embedder = embedder
        self._index = None

    @classmethod
    def load(cls, path: Path | None = None, embedder=None) -> DescriptorPrior:
        """Read eqdescriptors.json.

        Args:
            path: default ``data_dir()/prefs/audealize/eqdescriptors.json``.
            embedder: for words not in the data (default :func:`get_embedder`, loaded on first need).
        Raises:
            DataMissingError: no data dir; OSError / json.JSONDecodeError for an unreadable file.
        """
        path = Path(path) if path is not None else data_dir() / "prefs" / "audealize" / "eqdescriptors.json"
        raw = path.read_bytes()
        return cls(json.loads(raw), hashlib.sha256(raw).hexdigest(), embedder)

    def words(self) -> list[str]:
        """All known descriptor words (lower case), in file order."""
        return list(self._words)

    def lookup(self, word: str) -> DescriptorMatch:
        """Match a word to a known descriptor.

        Order: a Spanish word's English twin when more people gave the twin ("brillante"→"bright"); the
        exact word (modifiers like "more", "too", "a bit" dropped); a band word from
        mixing jargon ("treble"→"bright", "low end"→"bassy", "sibilance"→"shrill"); a suffix rule that
        gives a known word ("harshness"→"harsh", "brighter"→"bright", "muddier"→"muddy",
        "bass"→"bassy"); a known word within SPELLING_MIN_SIMILARITY ("harsch"); else the nearest
        word by MiniLM embedding (FAISS index cached by the file's sha256).
        Raises:
            ValueError: the word is empty.
        """
        text = " ".join(w for w in word.casefold().split() if w not in _MODIFIERS) or word.casefold().strip()
        if not text:
            raise ValueError("empty descriptor word")
        twin = _TRANSLATIONS.get(text)
        if twin in self._entries and self._entries[twin]["num"] > self._entries.get(text, {}).get("num", 0):
            return self._match(word, twin, 1.0, "translation")
        if text in self._entries:
            return self._match(word, text, 1.0, "exact")
        if text in _JARGON:
            return self._match(word, _JARGON[text], 1.0, "jargon")
        for suffix, repl in _SUFFIX_RULES:
            if text.endswith(suffix) and len(text) - len(suffix) >= 3:
                stem = text[: len(text) - len(suffix)]
                for cand in (stem + repl, re.sub(r"(.)\1$", r"\1", stem) + repl):
                    if cand in self._entries:
                        return self._match(word, cand, self._cosine(text, cand), "rule")
        close = process.extractOne(
            text, self._words, scorer=DamerauLevenshtein.normalized_similarity,
            score_cutoff=SPELLING_MIN_SIMILARITY,
        )
        if close:
            return self._match(word, close[0], close[1], "spelling")
        sims, rows = self._word_index().search(self._get_embedder().encode([text]), 1)
        return self._match(word, self._words[int(rows[0][0])], float(max(sims[0][0], 0.0)), "embedding")

    @staticmethod
    def gains_db(match: DescriptorMatch, amount: float) -> np.ndarray:
        """Band gains: float64 (40,) dB on AUDEALIZE_FREQS_HZ = 5 · amount · curve.

        Args:
            amount: signed strength; 1 spans −5…+5 dB, negative = the opposite ("less harsh").
        """
        return AUDEALIZE_MAX_DB * float(amount) * match.curve

    @staticmethod
    def default_amount(match: DescriptorMatch) -> float:
        """Population default strength (positive; negate for "less").

        DEFAULT_AMOUNT · (0.8 + 0.4 · reliability), reliability = agreement · num / (num + 10):
        well-agreed, often-given words get up to ~0.55 (±2.75 dB peaks), words with few or
        disagreeing contributors ~0.42 (±2.1 dB) — an audible, moderate change either way.
        """
        reliability = match.agreement * match.num / (match.num + 10.0)
        return round(DEFAULT_AMOUNT * (0.8 + 0.4 * reliability), 3)

    def _match(self, query: str, word: str, score: float, via: str) -> DescriptorMatch:
        e = self._entries[word]
        return DescriptorMatch(
            query=query, word=e["word"], score=round(float(score), 4), lang=e["lang"],
            curve=normalised_curve(e["settings"]), agreement=float(e["agreement"]), num=int(e["num"]),
            exact=via == "exact", via=via,
        )

    def _cosine(self, a: str, b: str) -> float:
        va, vb = self._get_embedder().encode([a, b])
        return float(max(np.dot(va, vb), 0.0))

    def _get_embedder(self):
        if self._embedder is None:
            from knowledge.embeddings import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def _word_index(self):
        if self._index is None:
            self._index = cached_text_index("descriptors", self._hash, self._words, self._get_embedder())
        return self._index


def normalised_curve(settings: list[float]) -> np.ndarray:
    """Audealize's normalisation: c = 2·(s − lo)/(hi − lo) − 1, lo = min(0, min s), hi = max(0, max s).

    Returns:
        float64 (40,) in [-1, 1]; all zeros for an all-zero input (Audealize would give NaN).
    """
    s = np.asarray(settings, dtype=np.float64)
    lo, hi = min(0.0, s.min()), max(0.0, s.max())
    if hi == lo:
        return np.zeros_like(s)
    return 2.0 * (s - lo) / (hi - lo) - 1.0
