"""Resolve what a user calls their headphones ("my airpods pro 2", "bose qc35") to a model in the FR store.

The query is normalised and its FILLER_WORDS ("my", "headphones", ...) dropped. One score per
model in [0, 1], the best of:
- 1.0 when the query equals the model's name or brand-less name, 0.97 when it equals one of
  its rule-generated aliases (:func:`knowledge.device_aliases.device_aliases`) or one without
  its filler words ("bose noise cancelling 700");
- PARTIAL_SCORE + up to 0.05 when every query word is a word of one of the model's aliases (or
  its first 4+ letters: "beyer"), or the spacing-free query is part of an alias ("bose quiet
  comfort", "buds2pro");
- a blend of string similarity (rapidfuzz Damerau-Levenshtein similarity of the spacing-free
  query and alias, as written and with words sorted) and MiniLM embedding cosine (FAISS
  IndexFlatIP over names and aliases), times MISMATCH_PENALTY when a query word contradicts the
  model: a number none of its aliases has ("HD 600", "WF-1000XM6"), other letters after a
  number ("85h" for "85t"), a word or letter code of another model that it lacks ("WH" for a
  "WF" model), or a word that is no typo of any of its words ("Studio" for "Solo"). The blend is
  at most 1, so a penalised one stays below RESOLVE_THRESHOLD: a model missing from the store
  is never swapped for a near name on likeness alone.

A query whose words all belong to several models ("sony", "galaxy buds", "bose quiet comfort")
is ambiguous unless it is exactly one model's name or alias; see :meth:`DeviceIndex.resolve`.
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
FUZZY_MAX = 0.95
"""Highest blended score: a likeness (even a perfect one after dropping filler words) never ties with a
name or alias matched exactly, whatever the float rounding of the embedding cosine."""
MISMATCH_PENALTY = 0.75
"""Factor on the blended score when a query word contradicts the model: a number the model lacks
("XM5" vs "XM4"), other letters right after a number ("85h" vs "85t"; a plural "s" is fine), a
word or letter code of another stored model that this one lacks ("WH" vs "WF"), or a word not
within TYPO_SIMILARITY of any of its words ("Studio" vs "Solo")."""
TYPO_SIMILARITY = 0.6
"""A query word without digits is a typo of a model word at this Damerau-Levenshtein similarity
or more: one edit in three letters ("por" → "pro", "mx" → "max": 0.67) passes, a different word
("studio" vs "solo": 0.33) does not. A word that is part of an alias key also passes ("beyer")."""
RESOLVE_THRESHOLD = 0.75
"""Below this best score a query is 'unknown'. Tuned on tests/knowledge/test_devices.py over the
47-model shared AutoEq set: typo'd phrasings of stored models score >= 0.77 (lowest "airpds pro 2"
0.78, "airpdos pro" 0.82), real models missing from the store <= 0.71 (Pixel Buds Pro 2 0.70,
Sony WH-1000XM3 0.70 next to WF-1000XM3, WF-1000XM6 0.70, Jabra Elite 85h 0.69, Galaxy Buds3
0.69, Beats Studio Pro 0.55 next to Solo Pro). Equal to MISMATCH_PENALTY: a penalised blend stays
below it, so a model that a query word contradicts is never resolved on likeness alone."""
TIE_MARGIN = 0.05
"""After a fuzzy or single-model partial match, models scoring within this of the best one tie
(ambiguous). The correct fuzzy resolutions of the test phrasings lead the runner-up by >= 0.07."""
EMBEDDED_ALIASES_PER_MODEL = 8
"""Name plus up to 7 aliases embedded per model (all aliases are used for string matching)."""

FILLER_WORDS = frozenset(
    "my the a an our your his her their this that these those pair set of new old like on in with for "
    "using via to i im am have own got wearing use listening please headphones headphone earbuds "
    "earbud earphones earphone iems iem cans over ear ears wireless".split()
)
"""Words stripped from a query before scoring, and from a model's aliases to give extra aliases
("Bose Noise Cancelling Headphones 700" is also "bose noise cancelling 700"), so "my sony
headphones" means "sony" even when some model has "Headphones" in its name. A query that,
with only the fillers no model name has removed, equals a name or alias still matches it exactly."""


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
        status: 'resolved' (device set), 'ambiguous' (several models fit; ask), 'unknown' (nothing close enough).
        query: the text as given.
        device: the resolved model name, else None.
        candidates: up to 5 best-scoring models, best first.
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
    aliases: list[str]  # normalised; [0] full name, [1] brand-less name, then generated, then filler-free
    keys: list[str]  # aliases without spaces
    word_sets: list[set[str]]  # words of each alias
    words: set[str]  # all alias words
    joined: str  # keys joined by "|", for fast substring tests
    numbers: set[str]  # digit runs in any alias
    runs: set[str]  # letter runs of two or more letters in any alias word ("wh", "xm", "airpods")
    suffixes: dict[str, set[str]]  # digit run → letters that follow it in an alias word ("85" → {"t"})
    prefixes: set[str]  # first 4+ letters of its longer letter-only words ("beye", "beyer", ...)


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
        self._vocabulary_runs = set().union(*(m.runs for m in models)) if models else set()
        self._word_list = sorted(self._vocabulary)
        position = {w: j for j, w in enumerate(self._word_list)}
        self._word_ids = [np.array(sorted(position[w] for w in m.words), dtype=np.int64) for m in models]

    @classmethod
    def build(cls, store: FRStore, embedder=None) -> DeviceIndex:
        """Index every measured model of ``store``.

        Args:
            store: the FR store whose ``devices()`` are looked up.
            embedder: object with ``encode`` and ``model_id`` (default :func:`get_embedder`).
        Returns:
            DeviceIndex. The FAISS index of name/alias embeddings is cached in ``cache_dir()``
            keyed by ``store.content_hash()``, the model id and the texts (first build of the
            47-model shared set: about 3 s on 2 cores; later: about 10 ms).
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
        scores, _ = self._scores(words, self._query_keys(text, words))
        order = np.argsort(-scores, kind="stable")[:k]
        return [self._candidate(int(i), float(scores[i])) for i in order]

    def resolve(self, text: str, owned: list[str] | tuple[str, ...] = ()) -> Resolution:
        """Decide which model ``text`` names, preferring the user's own devices.

        Args:
            text: the user's words for the device ("my AirPods", "sony xm4", "bose quiet comfort").
            owned: model names from the user's profile (PreferenceStore.owned_devices); names
                not in the store are ignored, so a resolved device always has measurements.
        Returns:
            Resolution, one of:
            - 'resolved' via 'profile' when an owned device matches the words (see
              ``_owned_match``), or "my headphones" with one owned device;
            - 'resolved' via 'exact' / 'alias' when the words are the best model's name or alias
              and no other model's ("sony xm4" is two models' alias: 'ambiguous');
            - 'ambiguous' via 'partial' when the words belong to several models' aliases and are
              not exactly one model's name or alias ("sony", "galaxy buds"): the question names
              up to 5 of them, best first, as "Name (type)", and says how many more match;
            - 'resolved' via 'partial' / 'fuzzy+embedding' when the best model clears
              RESOLVE_THRESHOLD and no other model is within TIE_MARGIN, else 'ambiguous' with
              the tied models and their types in the question;
            - 'unknown' below RESOLVE_THRESHOLD, with the 3 nearest models in the question.
            ``candidates`` holds the 5 best-scoring models in every case but "no words".
        """
        words = self._query_words(text)
        owned = [name for name in owned if name in self._by_name]
        if not words:
            return self._no_words(text, owned)
        keys = self._query_keys(text, words)
        scores, partial = self._scores(words, keys)
        order = np.argsort(-scores, kind="stable")
        candidates = [self._candidate(int(i), float(scores[i])) for i in order[:5]]
        mine = self._owned_match(words, keys, owned)
        if mine is not None:
            return self._resolved(text, mine, candidates, self._alternatives(words, mine, scores), "profile")
        if not candidates or candidates[0].score < RESOLVE_THRESHOLD:
            return self._unknown(text, candidates)
        best = candidates[0]
        via = self._via(words, keys, best.name, float(scores[order[0]]))
        ties = [c for c in candidates[1:] if best.score - c.score < TIE_MARGIN]
        family = [self._candidate(int(i), float(scores[i])) for i in order if partial[i]]
        more = 0  # matching models left out of the question
        if via in ("exact", "alias"):  # only another model with the very same name or alias ties
            exact = {self._models[i].name: score for i, score in self._exact(keys).items()}
            clash = [c for c in ties if exact.get(c.name) == exact[best.name]]
        elif len(family) >= 2:  # "sony", "galaxy buds": several models hold every query word
            best, clash, via, more = family[0], family[1:5], "partial", len(family) - 5
        else:  # a typo as close to one model as to another ("bose quitecomfort")
            clash = ties
        if clash:
            options = [best, *clash]
            question = "Which do you mean: " + _or_list([f"{c.name} ({c.type})" for c in options])
            question += f" (or one of {more} more)?" if more > 0 else "?"
            return Resolution("ambiguous", text, None, candidates, [], via, question)
        return self._resolved(text, best.name, candidates, self._alternatives(words, best.name, scores), via)

    def _no_words(self, text: str, owned: list[str]) -> Resolution:
        """"my headphones": the one owned device, a question naming the owned ones, or a question."""
        if len(owned) == 1:
            return self._resolved(text, owned[0], [], [], "profile")
        if owned:
            question = f"Which headphones do you mean: {_or_list(owned)}?"
            return Resolution("ambiguous", text, None, [], [], "none", question)
        return Resolution("unknown", text, None, [], [], "none", "Which headphones do you use (brand and model)?")

    @staticmethod
    def _unknown(text: str, candidates: list[DeviceCandidate]) -> Resolution:
        """Nothing close enough: say so and name the 3 nearest models."""
        question = f'I have no measurements for "{text.strip()}".'
        if candidates:
            names = _or_list([c.name for c in candidates[:3]])
            question += f" The closest I know are {names} — is it one of these, or another model?"
        return Resolution("unknown", text, None, candidates, [], "none", question)

    # --- scoring -------------------------------------------------------------------------------

    def _query_words(self, text: str) -> list[str]:
        """The query's words without FILLER_WORDS ("my sony headphones" → ["sony"])."""
        return [w for w in normalise(text).split() if w not in FILLER_WORDS]

    def _query_keys(self, text: str, words: list[str]) -> tuple[str, str]:
        """Spacing-free keys looked up as exact names/aliases, the more specific first: the query
        without the fillers that are no model's word ("zed wave 2 wireless" keeps "wireless"
        when a model is named so), and the query words."""
        kept = [w for w in normalise(text).split() if w not in FILLER_WORDS or w in self._vocabulary]
        return "".join(kept), "".join(words)

    def _exact(self, keys: tuple[str, ...]) -> dict[int, float]:
        """Model index → EXACT_SCORE / ALIAS_SCORE for the models that the first key naming any
        model names exactly; {} when none does."""
        for key in keys:
            if key in self._alias_owner:
                return dict(self._alias_owner[key])
        return {}

    def _scores(self, words: list[str], keys: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(score, partial): float64 (n_models,) in [0, 1] of the query words (and exact ``keys``)
        against every model, and bool (n_models,) whether the model's aliases hold every query word."""
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
        scores = np.minimum(FUZZY_WEIGHT * string_best + (1.0 - FUZZY_WEIGHT) * embed_best, FUZZY_MAX)
        scores[self._mismatches(words)] *= MISMATCH_PENALTY
        partial = np.array([self._partial(words, key, m) for m in self._models])
        scores = np.maximum(scores, partial)
        for i, exact in self._exact(keys).items():
            scores[i] = max(scores[i], exact)
        return scores, partial > 0

    def _mismatches(self, words: list[str]) -> np.ndarray:
        """Bool (n_models,): some query word contradicts the model (see MISMATCH_PENALTY)."""
        numbers = {d for w in words for d in _digit_runs(w)}
        codes = [m.groups() for w in words if (m := re.search(r"(\d+)(\D+)$", w))]  # "85h" → ("85", "h")
        runs = {r for w in words for r in _letter_runs(w)} & self._vocabulary_runs
        plain = [w for w in words if len(w) >= 2 and not _digit_runs(w)]
        close = None
        if plain and self._word_list:
            sim = DamerauLevenshtein.normalized_similarity
            close = process.cdist(plain, self._word_list, scorer=sim, workers=-1) >= TYPO_SIMILARITY
        out = np.zeros(len(self._models), dtype=bool)
        for i, m in enumerate(self._models):
            if numbers - m.numbers or runs - m.runs or not all(_suffix_fits(m, d, x) for d, x in codes):
                out[i] = True
            elif close is not None and len(self._word_ids[i]):
                typo = close[:, self._word_ids[i]].any(axis=1)
                out[i] = any(not (t or (len(w) >= 3 and w in m.joined)) for w, t in zip(plain, typo))
        return out

    @staticmethod
    def _partial(words: list[str], key: str, m: _Model) -> float:
        """Score of a partial match, else 0.

        PARTIAL_SCORE + 0.05 · len(key) / len(shortest covering alias key), where an alias covers
        the query when each query word is one of its words or the first 4+ letters of one
        ("beyer" of "beyerdynamic"), or when its key contains the spacing-free query.
        """
        wanted, inside = set(words), len(key) >= 3 and key in m.joined
        if not (inside or wanted <= m.words or wanted <= m.words | m.prefixes):
            return 0.0

        def covers(ws: set[str]) -> bool:
            return all(w in ws or (w in m.prefixes and any(v.startswith(w) for v in ws)) for w in wanted)

        covering = [k for k, ws in zip(m.keys, m.word_sets) if (inside and key in k) or covers(ws)]
        if not covering:  # the words are spread over different aliases
            return 0.0
        return PARTIAL_SCORE + 0.05 * min(len(key) / min(len(k) for k in covering), 1.0)

    def _via(self, words: list[str], keys: tuple[str, ...], name: str, score: float) -> str:
        """Which rule gave model ``name`` its score: 'exact' | 'alias' | 'partial' | 'fuzzy+embedding'."""
        i = self._by_name[name]
        owners = self._exact(keys)
        if i in owners:
            return "exact" if owners[i] >= EXACT_SCORE else "alias"
        if self._partial(words, "".join(words), self._models[i]) >= score:
            return "partial"
        return "fuzzy+embedding"

    # --- profile and presentation --------------------------------------------------------------

    def _owned_match(self, words: list[str], keys: tuple[str, ...], owned: list[str]) -> str | None:
        """The owned device the words name, else None.

        An owned device matches when every query word is part of its aliases ("airpods" for
        AirPods Pro (2nd generation)); or, unless the words are the exact name or alias of another
        model, when every word is close to one of its alias words (Damerau-Levenshtein similarity
        >= RESOLVE_THRESHOLD: "airpdos") or the whole query is that close to an alias.
        The best-scoring owned device wins.
        """
        key = "".join(words)
        exact_owners = {self._models[i].name for i in self._exact(keys)}
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
    brandless = {w for w in aliases[-1 if len(aliases) == 1 else 1].split() if w not in FILLER_WORDS}
    for alias in list(aliases):  # filler-free forms, when they keep a word beyond the brand
        words = [w for w in alias.split() if w not in FILLER_WORDS]
        if words and brandless & set(words):
            aliases.append(" ".join(words))
    aliases = list(dict.fromkeys(aliases))
    keys = [a.replace(" ", "") for a in aliases]
    word_sets = [set(a.split()) for a in aliases]
    words = set().union(*word_sets)
    numbers = {d for w in words for d in _digit_runs(w)}
    runs = {r for w in words for r in _letter_runs(w)}
    suffixes: dict[str, set[str]] = {}
    for w in words:
        for digits, letters in re.findall(r"(\d+)(\D*)", w):
            suffixes.setdefault(digits, set()).add(letters)
    prefixes = {w[:n] for w in words if w.isalpha() for n in range(4, len(w))}
    return _Model(name, type_, sources, aliases, keys, word_sets, words, "|".join(keys), numbers, runs,
                  suffixes, prefixes)


def _digit_runs(word: str) -> list[str]:
    return re.findall(r"\d+", word)


def _suffix_fits(m: _Model, digits: str, letters: str) -> bool:
    """Whether letters after a number fit the model: "85t" for 85t, "2n" for 2nd, plural "xm4s" for xm4."""
    have = m.suffixes.get(digits, set())
    return any(h.startswith(letters) for h in have) or (letters == "s" and "" in have)


def _letter_runs(word: str) -> list[str]:
    """Runs of two or more non-digit characters ("1000xm4s" → ["xm"], "airpods" → ["airpods"])."""
    return [r for r in re.findall(r"\D+", word) if len(r) >= 2]


def _or_list(items: list[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
