"""Resolve what a user calls their headphones ("my airpods pro 2", "bose qc35") to a model in the FR store.

One score per model in [0, 1], the best of:
- 1.0 when the query equals the model's name or brand-less name, 0.97 when it equals one of
  its rule-generated aliases (:func:`knowledge.device_aliases.device_aliases`);
- PARTIAL_SCORE + up to 0.05 when every query word is a word of the model's aliases, or the
  spacing-free query is part of an alias ("bose quiet comfort", "buds2pro");
- a blend of string similarity (rapidfuzz Damerau-Levenshtein similarity of the spacing-free
  query and alias, as written and with words sorted) and MiniLM embedding cosine (FAISS
  IndexFlatIP over names and aliases), times DIGIT_PENALTY when the query has a number that
  none of the model's aliases has ("HD 600", "WH-1000XM5").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from knowledge.device_aliases import device_aliases, normalise
from knowledge.fr_store import FRStore
from knowledge.index_cache import cached_text_index

EXACT_SCORE = 1.0
ALIAS_SCORE = 0.97
PARTIAL_SCORE = 0.85
FUZZY_WEIGHT = 0.7
"""Weight of the string similarity in the blended score; the embedding cosine gets the rest."""
DIGIT_PENALTY = 0.75
"""Factor on the blended score when the query has a number the model lacks ("XM5" vs "XM4")."""
RESOLVE_THRESHOLD = 0.75
"""Below this best score a query is 'unknown'. Tuned on tests/knowledge/test_devices.py: typo'd
phrasings of stored models score >= 0.78, real models missing from the store (Sony WH-1000XM5,
Pixel Buds Pro 2, Bose QC45) <= 0.70."""
TIE_MARGIN = 0.05
"""Models scoring within this of the best one are a tie (ambiguous when their type differs)."""
EMBEDDED_ALIASES_PER_MODEL = 8
"""Name plus up to 7 aliases embedded per model (all aliases are used for string matching)."""

FILLER_WORDS = frozenset(
    "my the a an our your his her their this that these those pair set of new old like on in with for "
    "using via to i im am have own got wearing use listening please headphones headphone earbuds "
    "earbud earphones earphone iems iem cans over ear ears wireless".split()
)
"""Words stripped from a query unless they are part of some model's aliases."""


@dataclass
class DeviceCandidate:
    """A model of the FR store that a query may mean.

    Attributes:
        name: model name as in FRStore.devices().
        type: 'in-ear' | 'earbud' | 'over-ear' | 'unknown'.
        score: 0..1 match confidence (1.0 = exact name).
        sources: measurers of the model, e.g. ['oratory1990', 'rtings'].
    """

    name: str
    type: str
    score: float
    sources: list[str] = field(default_factory=list)


@dataclass
class Resolution:
    """Outcome of :meth:`DeviceIndex.resolve`.

    Attributes:
        status: 'resolved' (device set), 'ambiguous' (a tie; ask), 'unknown' (nothing close enough).
        query: the text as given.
        device: the resolved model name, else None.
        candidates: best-scoring models, best first.
        alternatives: other models worth naming when resolved ("AirPods" → AirPods Pro, AirPods Max, ...).
        via: 'profile' | 'exact' | 'alias' | 'partial' | 'fuzzy+embedding' | 'none'.
        question: a clarifying question naming the top candidates when not resolved, else None.
    """

    status: Literal["resolved", "ambiguous", "unknown"]
    query: str
    device: str | None
    candidates: list[DeviceCandidate]
    alternatives: list[str]
    via: str
    question: str | None


@dataclass
class _Model:
    name: str
    type: str
    sources: list[str]
    aliases: list[str]  # normalised; [0] full name, [1] brand-less name
    keys: list[str]  # aliases without spaces
    word_sets: list[set[str]]  # words of each alias
    words: set[str]  # all alias words
    joined: str  # keys joined by "|", for fast substring tests
    numbers: set[str]  # digit runs in any alias


class DeviceIndex:
    """Device-name lookup over the models of an FRStore; build with :meth:`DeviceIndex.build`."""

    def __init__(self, models: list[_Model], index, index_model: np.ndarray, embedder):
        self._models = models
        self._by_name = {m.name: i for i, m in enumerate(models)}
        self._index = index
        self._index_model = index_model
        self._embedder = embedder
        self._alias_owner: dict[str, dict[int, float]] = {}
        fuzzy_keys, fuzzy_sorted, fuzzy_model = [], [], []
        for i, m in enumerate(models):
            for j, (key, words) in enumerate(zip(m.keys, m.word_sets)):
                owners = self._alias_owner.setdefault(key, {})
                owners[i] = max(owners.get(i, 0.0), EXACT_SCORE if j < 2 else ALIAS_SCORE)
                fuzzy_keys.append(key)
                fuzzy_sorted.append("".join(sorted(words)))
                fuzzy_model.append(i)
        self._fuzzy_keys, self._fuzzy_sorted = fuzzy_keys, fuzzy_sorted
        self._fuzzy_model = np.array(fuzzy_model, dtype=np.int64)
        self._vocabulary = set().union(*(m.words for m in models)) if models else set()

    @classmethod
    def build(cls, store: FRStore, embedder=None) -> DeviceIndex:
        """Index every measured model of ``store``.

        Args:
            store: the FR store whose ``devices()`` are looked up.
            embedder: object with ``encode`` and ``model_id`` (default :func:`get_embedder`).
        Returns:
            DeviceIndex. The FAISS index of name/alias embeddings is cached in ``cache_dir()``
            keyed by ``store.content_hash()``, the model id and the texts (first build of the
            9-model shared set: about 2 s; later: milliseconds).
        """
        if embedder is None:
            from knowledge.embeddings import get_embedder

            embedder = get_embedder()
        models = [
            _make_model(name, store.device_type(name), store.sources(name)) for name in store.devices()
        ]
        texts, owner = [], []
        for i, m in enumerate(models):
            embedded = [m.name, *m.aliases[1:EMBEDDED_ALIASES_PER_MODEL]]
            texts += embedded
            owner += [i] * len(embedded)
        index = cached_text_index("devices", store.content_hash(), texts, embedder)
        return cls(models, index, np.array(owner, dtype=np.int64), embedder)

    def search(self, text: str, k: int = 5) -> list[DeviceCandidate]:
        """The k models best matching ``text`` (fillers such as "my", "headphones" removed).

        Returns:
            up to k DeviceCandidate, best first; [] for an empty query.
        """
        words = self._query_words(text)
        if not words:
            return []
        scores = self._scores(words)
        order = np.argsort(-scores, kind="stable")[:k]
        return [self._candidate(int(i), float(scores[i])) for i in order]

    def resolve(self, text: str, owned: list[str] | tuple[str, ...] = ()) -> Resolution:
        """Decide which model ``text`` names, preferring the user's own devices.

        Args:
            text: the user's words for the device ("my AirPods", "sony xm4", "bose quiet comfort").
            owned: model names from the user's profile (PreferenceStore.owned_devices); names
                not in the store are ignored, so a resolved device always has measurements.
        Returns:
            Resolution: 'resolved' via 'profile' when an owned device matches the words (see
            ``_owned_match``), or "my headphones" with one owned device; else via 'exact' /
            'alias' / 'partial' / 'fuzzy+embedding' when the best model clears RESOLVE_THRESHOLD
            and no other model is within TIE_MARGIN (for 'exact', 'alias' and 'fuzzy+embedding':
            no model of another type, nor one with the very same score); 'ambiguous' with a
            question naming the tied models; 'unknown' with the nearest models in the question.
        """
        words = self._query_words(text)
        owned = [name for name in owned if name in self._by_name]
        if not words:
            if len(owned) == 1:
                return self._resolved(text, owned[0], [], [], "profile")
            if owned:
                question = f"Which headphones do you mean: {_or_list(owned)}?"
                return Resolution("ambiguous", text, None, [], [], "none", question)
            question = "Which headphones do you use (brand and model)?"
            return Resolution("unknown", text, None, [], [], "none", question)
        scores = self._scores(words)
        order = np.argsort(-scores, kind="stable")
        candidates = [self._candidate(int(i), float(scores[i])) for i in order[:5]]
        mine = self._owned_match(words, owned)
        if mine is not None:
            return self._resolved(text, mine, candidates, self._alternatives(words, mine, scores), "profile")
        if not candidates or candidates[0].score < RESOLVE_THRESHOLD:
            question = f'I have no measurements for "{text.strip()}".'
            if candidates:
                names = _or_list([c.name for c in candidates[:3]])
                question += f" The closest I know are {names} — is it one of these, or another model?"
            return Resolution("unknown", text, None, candidates, [], "none", question)
        best = candidates[0]
        via = self._via(words, best.name, float(scores[order[0]]))
        ties = [c for c in candidates[1:] if best.score - c.score < TIE_MARGIN]
        if via == "partial":  # "sony", "apple": several models contain the words
            clash = ties
        else:
            clash = [c for c in ties if c.type != best.type or c.score == best.score]
        if clash:
            options = [best, *clash]
            return Resolution(
                "ambiguous", text, None, candidates, [], via,
                "Which do you mean: " + _or_list([f"{c.name} ({c.type})" for c in options]) + "?",
            )
        return self._resolved(text, best.name, candidates, self._alternatives(words, best.name, scores), via)

    # --- scoring -------------------------------------------------------------------------------

    def _query_words(self, text: str) -> list[str]:
        words = normalise(text).split()
        return [w for w in words if w not in FILLER_WORDS or w in self._vocabulary]

    def _scores(self, words: list[str]) -> np.ndarray:
        """Score (n_models,) in [0, 1] of the query words against every model."""
        n = len(self._models)
        query, key = " ".join(words), "".join(words)
        sim = DamerauLevenshtein.normalized_similarity
        string = np.maximum(
            process.cdist([key], self._fuzzy_keys, scorer=sim, workers=-1)[0],
            process.cdist(["".join(sorted(words))], self._fuzzy_sorted, scorer=sim, workers=-1)[0],
        )
        string_best = np.zeros(n)
        np.maximum.at(string_best, self._fuzzy_model, string)
        embed_best = np.zeros(n)
        if self._index.ntotal:
            sims, rows = self._index.search(self._embedder.encode([query]), min(self._index.ntotal, 4096))
            valid = rows[0] >= 0
            np.maximum.at(embed_best, self._index_model[rows[0][valid]], np.clip(sims[0][valid], 0.0, 1.0))
        scores = FUZZY_WEIGHT * string_best + (1.0 - FUZZY_WEIGHT) * embed_best
        numbers = {d for w in words for d in _digit_runs(w)}
        for i, m in enumerate(self._models):
            if numbers - m.numbers:
                scores[i] *= DIGIT_PENALTY
            partial = self._partial(words, key, m)
            if partial:
                scores[i] = max(scores[i], partial)
        for i, exact in self._alias_owner.get(key, {}).items():
            scores[i] = max(scores[i], exact)
        return scores

    @staticmethod
    def _partial(words: list[str], key: str, m: _Model) -> float:
        """Score of a partial match, else 0.

        PARTIAL_SCORE + 0.05 · len(key) / len(shortest covering alias key), where an alias covers
        the query when it has every query word or its key contains the spacing-free query.
        """
        wanted, inside = set(words), len(key) >= 3 and key in m.joined
        if not (inside or wanted <= m.words):
            return 0.0
        covering = [k for k, ws in zip(m.keys, m.word_sets) if (inside and key in k) or wanted <= ws]
        if not covering:  # the words are spread over different aliases
            return 0.0
        return PARTIAL_SCORE + 0.05 * min(len(key) / min(len(k) for k in covering), 1.0)

    def _via(self, words: list[str], name: str, score: float) -> str:
        """Which rule gave model ``name`` its score: 'exact' | 'alias' | 'partial' | 'fuzzy+embedding'."""
        key, i = "".join(words), self._by_name[name]
        owners = self._alias_owner.get(key, {})
        if i in owners:
            return "exact" if owners[i] >= EXACT_SCORE else "alias"
        if self._partial(words, key, self._models[i]) >= score:
            return "partial"
        return "fuzzy+embedding"

    # --- profile and presentation --------------------------------------------------------------

    def _owned_match(self, words: list[str], owned: list[str]) -> str | None:
        """The owned device the words name, else None.

        An owned device matches when every query word is part of its aliases ("airpods" for
        AirPods Pro (2nd generation)); or, unless the words are the exact name or alias of another
        model, when every word is close to one of its alias words (Damerau-Levenshtein similarity
        >= RESOLVE_THRESHOLD: "airpdos") or the whole query is that close to an alias.
        The best-scoring owned device wins.
        """
        key = "".join(words)
        exact_owners = {self._models[i].name for i in self._alias_owner.get(key, {})}
        sim = DamerauLevenshtein.normalized_similarity
        best, best_score = None, 0.0
        for name in owned:
            m = self._models[self._by_name[name]]
            score = self._partial(words, key, m)
            if not score and (not exact_owners or name in exact_owners):
                close_words = all(max(sim(w, v) for v in m.words) >= RESOLVE_THRESHOLD for w in words)
                string = max(sim(key, k) for k in m.keys)
                score = max(string, PARTIAL_SCORE if close_words else 0.0)
                score = score if score >= RESOLVE_THRESHOLD else 0.0
            if score > best_score:
                best, best_score = name, score
        return best

    def _alternatives(self, words: list[str], chosen: str, scores: np.ndarray) -> list[str]:
        """Other models whose aliases contain every query word (e.g. the AirPods family), best first."""
        key = "".join(words)
        related = [
            (scores[i], m.name) for i, m in enumerate(self._models)
            if m.name != chosen and self._partial(words, key, m)
        ]
        return [name for _, name in sorted(related, key=lambda t: -t[0])]

    def _candidate(self, i: int, score: float) -> DeviceCandidate:
        m = self._models[i]
        return DeviceCandidate(m.name, m.type, round(min(score, 1.0), 4), list(m.sources))

    def _resolved(self, text, device, candidates, alternatives, via) -> Resolution:
        """A 'resolved' Resolution with the chosen device moved to the front of the candidates."""
        candidates = sorted(candidates, key=lambda c: c.name != device)
        return Resolution("resolved", text, device, candidates, alternatives, via, None)


def _make_model(name: str, type_: str, sources: list[str]) -> _Model:
    aliases = device_aliases(name)
    keys = [a.replace(" ", "") for a in aliases]
    word_sets = [set(a.split()) for a in aliases]
    words = set().union(*word_sets)
    numbers = {d for w in words for d in _digit_runs(w)}
    return _Model(name, type_, sources, aliases, keys, word_sets, words, "|".join(keys), numbers)


def _digit_runs(word: str) -> list[str]:
    return re.findall(r"\d+", word)


def _or_list(items: list[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
