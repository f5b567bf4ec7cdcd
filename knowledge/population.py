"""The word → EQ population: what the crowd data says people set for a word, as a distribution.

Shared by the product (variants, personal models) and the evaluation (:mod:`eval.text2eq`). A *setting*
is a float64 (40,) vector of band gains in dB on :data:`knowledge.descriptors.AUDEALIZE_FREQS_HZ`
(Audealize's 40 peaking bands, Q 4.31) at the crowd's default amount (:data:`AMOUNT_DB` at the curve's
extremes), in the word's own direction ("more warm").

Source: Audealize / SocialEQ crowd data (``data_dir()/prefs/audealize/eqdescriptors.json``); the
population model and the 2-D space are defined in docs/EVALUATION.md (after arXiv 2601.09448).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.config import cache_dir, data_dir
from knowledge.descriptors import AUDEALIZE_FREQS_HZ, AUDEALIZE_MAX_DB, DEFAULT_AMOUNT, normalised_curve
from tools.atomic import replace_file
from tools.errors import SenseError

BOUNDS_DB = (-6.0, 6.0)
"""Range of each axis of the 2-D space (the Beosonic control's ±6 dB); samples are clipped to it."""

AMOUNT_DB = AUDEALIZE_MAX_DB * DEFAULT_AMOUNT
"""Band gain (dB) at curve value ±1: curves are compared at the production default amount."""

_OCTAVES = 5.0  # the 2-D basis spans ±5 octaves around 1 kHz (31 Hz .. 32 kHz)
_T = np.log2(AUDEALIZE_FREQS_HZ / 1000.0) / _OCTAVES
_BASIS = np.stack([np.ones_like(_T), _T**2 - np.mean(_T**2), _T], axis=1)  # level, smile, tilt


def load_english(path: Path | None = None) -> list[dict]:
    """English entries of eqdescriptors.json, file order.

    Args:
        path: default ``data_dir()/prefs/audealize/eqdescriptors.json``.
    Returns:
        dicts ``{word, lang, settings (40 floats), agreement, num, x, y}`` (294 in the shared data).
    Raises:
        DataMissingError: no data dir; OSError / json.JSONDecodeError for an unreadable file.
    """
    path = Path(path) if path is not None else data_dir() / "prefs" / "audealize" / "eqdescriptors.json"
    return [e for e in json.loads(path.read_bytes()) if e["lang"] == "English"]


def band_gains(entries: list[dict]) -> np.ndarray:
    """Band gains of entries at the default amount: float64 (n, 40) dB = AMOUNT_DB · normalised curve.

    Source: Audealize's normalisation (:func:`knowledge.descriptors.normalised_curve`).
    """
    return np.array([AMOUNT_DB * normalised_curve(e["settings"]) for e in entries]).reshape(len(entries), -1)


def smile_tilt_xy(gains_db: np.ndarray) -> np.ndarray:
    """Beosonic-style 2-D coordinates of 40-band curves, clipped to BOUNDS_DB.

    Least-squares fit over the bands of g(f) ≈ c + x·(T² − mean T²) + y·T, T = log2(f / 1 kHz) / 5;
    the level c is dropped (loudness is matched afterwards). x ("smile", dB): how far ±5 octaves
    from 1 kHz rise above 1 kHz; y ("tilt", dB): the slope per 5 octaves, + = brighter.

    Args:
        gains_db: float array (n, 40) or (40,), dB on AUDEALIZE_FREQS_HZ.
    Returns:
        float64 (n, 2) [x, y], dB, each clipped to BOUNDS_DB.
    Source: the 2-D control of DESIGN.md §5 (x smile, y tilt around 1 kHz, ±6 dB), after the
        Beosonic space of arXiv 2601.09448.
    """
    g = np.atleast_2d(np.asarray(gains_db, dtype=np.float64))
    coef, *_ = np.linalg.lstsq(_BASIS, g.T, rcond=None)
    return np.clip(coef[1:].T, *BOUNDS_DB)


def population_samples(
    gains_db: np.ndarray, agreement: np.ndarray, spread: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw per row from N(gains_db[i], (1 − agreement[i])² · C), C = covariance of ``spread``'s rows.

    Args:
        gains_db: float (n, 40), the curve (dB) each sample is drawn around (repeat a word's
            curve n times for n samples of its population).
        agreement: float (n,) (or a scalar), crowd agreement 0..1 of each row's word.
        spread: float (m, 40), m >= 2 curves whose covariance shapes the spread.
        rng: numpy Generator.
    Returns:
        float64 (n, 40) dB.
    """
    centred = spread - spread.mean(axis=0)
    noise = rng.standard_normal((len(gains_db), len(centred))) @ centred / np.sqrt(len(centred) - 1)
    return gains_db + (1.0 - np.asarray(agreement, dtype=np.float64)).reshape(-1, 1) * noise


# --------------------------------------------------------------------------------------------------
# Predictive distributions for any word: known words, antonym-aware retrieval, LLM RAG-QA, variants.

REGIONS_HZ = {
    "bass": (60.0, 250.0),
    "low mids": (250.0, 800.0),
    "mids": (800.0, 2500.0),
    "presence": (2500.0, 6000.0),
    "air": (6000.0, 16000.0),
}
"""Broad regions (Hz, [lo, hi)) of the compact 5-number form and of variant labels."""

RELATIONS = ("same", "opposite", "unrelated")
K_NEIGHBOURS = 5
"""Known words an unknown word's distribution is built from."""
PAIR_NEIGHBOURS = 15
"""Nearest known words per known word that form the relation classifier's training pairs."""
UNRELATED_BELOW = 0.2
"""|expected sign| under which a neighbour's relation is reported as "unrelated" (its weight is ~0)."""

_REGION_MASKS = np.array([(AUDEALIZE_FREQS_HZ >= lo) & (AUDEALIZE_FREQS_HZ < hi) for lo, hi in REGIONS_HZ.values()])
_REGION_CENTRES = np.log2([np.sqrt(lo * hi) for lo, hi in REGIONS_HZ.values()])


@dataclass(frozen=True)
class Component:
    """A known word a prediction used.

    Attributes:
        word: the known word.
        weight: its share of the prediction, 0..1 (weights of one prediction sum to 1).
        relation: "same" | "opposite" (its curve was negated) | "unrelated" (dropped).
    """

    word: str
    weight: float
    relation: str


@dataclass(eq=False)
class WordDistribution:
    """Predicted EQ settings people would choose for a word.

    Attributes:
        word: the word as asked.
        method: how it was made ("population", "antonym-aware mixture", "rag-qa", ...).
        samples_db: float64 (n, 40) settings, dB on AUDEALIZE_FREQS_HZ at the default amount.
        components: the known words used (empty for methods without retrieval).
    """

    word: str
    method: str
    samples_db: np.ndarray
    components: list[Component] = field(default_factory=list)

    @property
    def mean_db(self) -> np.ndarray:
        """float64 (40,) dB, the mean setting."""
        return self.samples_db.mean(axis=0)


@dataclass(frozen=True)
class Variant:
    """One distinct way people set a word (a k-medoids cluster of the samples).

    Attributes:
        setting_db: float64 (40,) dB, the medoid.
        share: 0..1, fraction of the samples in its cluster.
        label: what differs from the other variants, e.g. "more in the bass (+1.4 dB at 60–250 Hz)".
        offset_db: float64 (40,) dB, setting_db − the distribution's mean.
    """

    setting_db: np.ndarray
    share: float
    label: str
    offset_db: np.ndarray


def compact_db(gains_db: np.ndarray) -> np.ndarray:
    """Mean band gain (dB) in each of REGIONS_HZ: float64 (..., 5) from (..., 40)."""
    g = np.asarray(gains_db, dtype=np.float64)
    return np.stack([g[..., m].mean(axis=-1) for m in _REGION_MASKS], axis=-1)


def audibly_different(settings_db, applied_db: np.ndarray, min_region_db: float) -> list[np.ndarray]:
    """The settings that move some broad region (REGIONS_HZ, :func:`compact_db`) at least ``min_region_db`` dB away
    from ``applied_db``: the ones worth an A/B against it, in their order.

    Args:
        settings_db: float64 (40,) dB settings (any iterable of them).
        applied_db: float64 (40,) dB.
        min_region_db: dB.
    Returns:
        The qualifying settings, as given.
    """
    applied = np.asarray(applied_db, dtype=np.float64)
    return [s for s in settings_db if np.max(np.abs(compact_db(np.asarray(s) - applied))) >= min_region_db]


def expand_db(compact: np.ndarray) -> np.ndarray:
    """The 5 region gains (dB) back to 40 bands: linear in log-frequency between region centres, flat beyond.

    Args:
        compact: float (..., 5) dB in REGIONS_HZ order.
    Returns:
        float64 (..., 40) dB on AUDEALIZE_FREQS_HZ.
    """
    c = np.atleast_2d(np.asarray(compact, dtype=np.float64))
    out = np.array([np.interp(np.log2(AUDEALIZE_FREQS_HZ), _REGION_CENTRES, row) for row in c])
    return out.reshape(*np.shape(compact)[:-1], len(AUDEALIZE_FREQS_HZ))


def _pair_features(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Symmetric features of embedding pairs: elementwise product and |difference|, (n, 768)."""
    return np.hstack([a * b, np.abs(a - b)])


def _curve_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


@dataclass(eq=False)
class RelationClassifier:
    """P(two words' curves are positively correlated) from their MiniLM embeddings.

    A logistic regression on pairs of known words (each with its PAIR_NEIGHBOURS nearest known
    words by cosine, where antonyms sit), features = elementwise product and |difference| of the
    unit embeddings, label = sign of the Pearson correlation of the two curves.
    Source: new here (the antonym problem of docs/EVALUATION.md, "Text → EQ").
    """

    model: object

    @classmethod
    def fit(cls, embeddings: np.ndarray, gains_db: np.ndarray) -> RelationClassifier:
        """From known words' embeddings (n, 384) and curves (n, 40) dB; n >= PAIR_NEIGHBOURS + 2."""
        from sklearn.linear_model import LogisticRegression

        sims = embeddings @ embeddings.T
        np.fill_diagonal(sims, -np.inf)
        near = np.argsort(-sims, axis=1)[:, :PAIR_NEIGHBOURS]
        a = np.repeat(np.arange(len(embeddings)), near.shape[1])
        b = near.ravel()
        labels = _curve_correlation(gains_db[a], gains_db[b]) > 0
        model = LogisticRegression(C=1.0, max_iter=2000)
        model.fit(_pair_features(embeddings[a], embeddings[b]), labels)
        return cls(model)

    def expected_sign(self, query: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
        """E[sign of curve correlation] = 2·P(same) − 1 for a query embedding (384,) against (k, 384): (k,)."""
        feats = _pair_features(np.broadcast_to(query, neighbours.shape), neighbours)
        return 2.0 * self.model.predict_proba(feats)[:, list(self.model.classes_).index(True)] - 1.0


def _relation(sign: float) -> str:
    return "unrelated" if abs(sign) < UNRELATED_BELOW else ("same" if sign > 0 else "opposite")


def _loo_ridge(x: np.ndarray, y: np.ndarray, lambdas=(0.3, 1.0, 3.0, 10.0, 30.0)) -> tuple[float, np.ndarray]:
    """Ridge x → y (y centred): the λ with the least leave-one-out error and its LOO predictions (n, d)."""
    best = (np.inf, 0.0, y * 0)
    for lam in lambdas:
        hat = x @ np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T)
        loo = y - (y - hat @ y) / (1.0 - np.diag(hat))[:, None]
        err = float(np.mean((y - loo) ** 2))
        best = min(best, (err, lam, loo), key=lambda t: t[0])
    return best[1], best[2]


VARIANTS = ("product", "antonym-aware mixture", "plain mixture", "ridge")
"""Ways :class:`PopulationModel` predicts an unknown word's mean: "antonym-aware mixture" (the K
nearest known words' deviations from the mean curve, each times its expected sign, shrunk),
"plain mixture" (the same without signs), "ridge" (MiniLM embedding → curve, ridge regression),
"product" (the three stacked: the data decide how much each counts). All shrink toward the mean training curve by
weights fitted leave-one-out on the known words."""
_PARTS = {"product": ("signed", "plain", "ridge"), "antonym-aware mixture": ("signed",), "plain mixture": ("plain",),
          "ridge": ("ridge",)}
_SIGN = {"same": 1.0, "opposite": -1.0, "unrelated": 0.0}


@dataclass(eq=False)
class PopulationModel:
    """Predictive EQ distributions for any word, fitted on known words only.

    Attributes:
        words: known words (lower case); gains_db float (n, 40) dB; agreement float (n,);
        embeddings: float32 (n, 384) unit MiniLM embeddings; embedder: ``encode(list[str])``.
        classifier: the :class:`RelationClassifier` of the known words.
        ridge_coef: float (384, 40), embedding → deviation from the mean curve (dB).
        weights: per VARIANTS name, the non-negative stacking weights of its parts (LOO-fitted).
        relations: optional ``{word: {known word: "same"|"opposite"|"unrelated"}}`` that overrides
            the classifier's signs (e.g. an LLM's judgement).
    """

    words: list[str]
    gains_db: np.ndarray
    agreement: np.ndarray
    embeddings: np.ndarray
    embedder: object
    classifier: RelationClassifier
    ridge_coef: np.ndarray
    weights: dict[str, np.ndarray]
    relations: dict[str, dict[str, str]] | None = None

    @property
    def static_db(self) -> np.ndarray:
        """float64 (40,) dB, the mean known curve (the static preset)."""
        return self.gains_db.mean(axis=0)

    @classmethod
    def build(cls, entries: list[dict], embedder, relations=None) -> PopulationModel:
        """Fit on ``entries`` (load_english dicts, >= 20 words) only: nothing else is seen.

        Args:
            entries: the known words; embedder: ``encode(list[str]) -> float32 (n, 384)`` unit rows;
            relations: see the class attributes.
        """
        words = [e["word"].casefold() for e in entries]
        gains, emb = band_gains(entries), np.asarray(embedder.encode(words), dtype=np.float64)
        centred = gains - gains.mean(axis=0)
        lam, ridge_loo = _loo_ridge(emb, centred)
        ridge_coef = np.linalg.solve(emb.T @ emb + lam * np.eye(emb.shape[1]), emb.T @ centred)
        loo = {"signed": _loo_mixture(emb, gains, signed=True), "plain": _loo_mixture(emb, gains, signed=False),
               "ridge": ridge_loo}
        weights = {v: _stack([loo[p] for p in parts], centred) for v, parts in _PARTS.items()}
        agreement = np.array([e["agreement"] for e in entries], dtype=np.float64)
        return cls(words, gains, agreement, emb, embedder, RelationClassifier.fit(emb, gains), ridge_coef,
                   weights, relations)

    def predict_mean(self, word: str, variant: str = "product") -> tuple[np.ndarray, list[Component]]:
        """An unknown word's mean setting, float64 (40,) dB, and the known words it used.

        Raises:
            ValueError: variant not in VARIANTS.
        """
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        query = np.asarray(self.embedder.encode([word.casefold()])[0], dtype=np.float64)
        sims = self.embeddings @ query
        rows = np.argsort(-sims, kind="stable")[:K_NEIGHBOURS]
        w = np.maximum(sims[rows], 0.01)
        given = (self.relations or {}).get(word.casefold())
        if given is not None:
            signs = np.array([_SIGN.get(given.get(self.words[r], "same"), 1.0) for r in rows])
        else:
            signs = self.classifier.expected_sign(query, self.embeddings[rows])
        parts = {"signed": (w * signs) @ (self.gains_db[rows] - self.static_db) / w.sum(),
                 "plain": w @ (self.gains_db[rows] - self.static_db) / w.sum(),
                 "ridge": query @ self.ridge_coef}
        mean = self.static_db + sum(c * parts[p] for c, p in zip(self.weights[variant], _PARTS[variant]))
        plain = variant in ("plain mixture", "ridge")
        comps = [Component(self.words[r], float(wi / w.sum()), "same" if plain else _relation(float(s)))
                 for r, wi, s in zip(rows, w, signs)]
        return mean, comps

    def distribution(self, word: str, n: int = 32, rng=None, variant: str = "product") -> WordDistribution:
        """n settings for ``word``: float64 (n, 40) dB in a :class:`WordDistribution`.

        A known word (exact, case-insensitive) gives its population Gaussian (method "population",
        :func:`population_samples` with the known curves' covariance); any other word gives
        :meth:`predict_mean` with a population-like spread, N(mean, (1 − mean agreement)² · C).

        Args:
            rng: numpy Generator or seed (default: seeded from the word, so answers repeat).
        """
        seed = int.from_bytes(hashlib.sha256(word.casefold().encode()).digest()[:8], "little")
        rng = np.random.default_rng(rng if rng is not None else seed)
        key = word.casefold().strip()
        if key in self.words:
            i = self.words.index(key)
            around = np.repeat(self.gains_db[i : i + 1], n, axis=0)
            samples = population_samples(around, self.agreement[i], self.gains_db, rng)
            return WordDistribution(word, "population", samples, [Component(key, 1.0, "same")])
        mean, comps = self.predict_mean(word, variant)
        around = np.repeat(mean[np.newaxis], n, axis=0)
        samples = population_samples(around, self.agreement.mean(), self.gains_db, rng)
        return WordDistribution(word, variant, samples, comps)


def _loo_mixture(emb: np.ndarray, gains: np.ndarray, signed: bool, folds: int = 5) -> np.ndarray:
    """Leave-one-out neighbour deviations (n, 40) of the known words; signs from a classifier
    cross-fitted over ``folds`` folds (it never saw a pair with the word left out)."""
    static = gains.mean(axis=0)
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    fold = np.arange(len(emb)) % folds
    out = np.zeros_like(gains)
    for f in range(folds):
        clf = RelationClassifier.fit(emb[fold != f], gains[fold != f]) if signed else None
        for i in np.flatnonzero(fold == f):
            rows = np.argsort(-sims[i], kind="stable")[:K_NEIGHBOURS]
            w = np.maximum(sims[i, rows], 0.01)
            signs = clf.expected_sign(emb[i], emb[rows]) if signed else np.ones(len(rows))
            out[i] = (w * signs) @ (gains[rows] - static) / w.sum()
    return out


def _stack(parts: list[np.ndarray], target: np.ndarray) -> np.ndarray:
    """Non-negative least-squares weights (len(parts),) of LOO predictions (n, 40) for the target (n, 40)."""
    from scipy.optimize import nnls

    return nnls(np.stack([p.ravel() for p in parts], axis=1), target.ravel())[0]


def variants(dist: WordDistribution, k: int = 3, min_difference_db: float = 1.0) -> list[Variant]:
    """Up to k distinct settings of a distribution: k-medoids (FasterPAM) clusters of its samples.

    The largest k' <= k whose medoids all differ by >= min_difference_db (RMS dB over the 40
    bands) is used, so a flat distribution gives one variant.

    Args:
        dist: samples (n, 40) dB, n >= 1; k >= 1.
    Returns:
        1..k :class:`Variant`, largest share first; each labelled by the region (REGIONS_HZ) where
        it differs most from the other variants' mean ("the usual setting" when alone).
    Raises:
        ValueError: k < 1.
    Source: Schubert & Rousseeuw, FasterPAM (``kmedoids`` package).
    """
    import kmedoids

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = dist.samples_db
    diss = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).mean(axis=-1))
    for kk in range(min(k, len(x)), 0, -1):
        result = kmedoids.fasterpam(diss, kk, random_state=0)
        medoids = np.asarray(result.medoids)
        between = diss[np.ix_(medoids, medoids)][np.triu_indices(kk, 1)]
        if kk == 1 or between.min() >= min_difference_db:
            break
    labels = np.asarray(result.labels)
    settings = x[medoids]
    out = [Variant(settings[j], float(np.mean(labels == j)), _variant_label(settings, j), settings[j] - dist.mean_db)
           for j in range(len(medoids))]
    return sorted(out, key=lambda v: -v.share)


def _variant_label(settings: np.ndarray, j: int) -> str:
    if len(settings) == 1:
        return "the usual setting"
    regions = compact_db(settings)
    diff = regions[j] - np.delete(regions, j, axis=0).mean(axis=0)
    r = int(np.argmax(np.abs(diff)))
    name, (lo, hi) = list(REGIONS_HZ.items())[r]
    span = (f"{lo:g}–{hi:g} Hz" if hi < 1000 else f"{lo / 1000:g}–{hi / 1000:g} kHz" if lo >= 1000
            else f"{_hz(lo)}–{_hz(hi)}")
    return f"{'more' if diff[r] > 0 else 'less'} in the {name} ({diff[r]:+.1f} dB at {span})"


def _hz(f: float) -> str:
    return f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"


# --------------------------------------------------------------------------------------------------
# RAG-QA: the paper's retrieval-augmented question answering with a local LLM.

RAG_QA_SETTINGS = 11
"""Settings the LLM writes per word (arXiv 2601.09448 samples 11)."""


class RagQaError(SenseError, ValueError):
    """The LLM's RAG-QA reply could not be read as settings."""


def rag_qa_messages(word: str, neighbours: list[tuple[str, np.ndarray]], n: int = RAG_QA_SETTINGS):
    """The RAG-QA prompt and JSON schema: (messages, schema).

    Args:
        neighbours: (known word, setting float (40,) dB) pairs shown in the compact 5-region form.
    """
    names = list(REGIONS_HZ)
    rows = "\n".join(f"- {w}: " + ", ".join(f"{v:+.1f}" for v in compact_db(g)) for w, g in neighbours)
    system = ("You are an audio engineer. People describe sound with words and set an equaliser with 5 "
              "gains in dB: " + ", ".join(f"{n_} {_hz(lo)}–{_hz(hi)}" for n_, (lo, hi) in REGIONS_HZ.items())
              + ". Gains are usually between -2.5 and +2.5 dB. Answer in JSON.")
    user = (f"Known words and the average gains people set for them ({', '.join(names)}):\n{rows}\n\n"
            f'New word: "{word}". For each known word say whether it means the same as "{word}", the '
            f"opposite, or is unrelated. Then write {n} different settings ({len(names)} gains each, dB) "
            f'that {n} different people might choose to make a sound "{word}".')
    schema = {
        "type": "object",
        "properties": {
            "relations": {"type": "object", "properties": {w: {"enum": list(RELATIONS)} for w, _ in neighbours},
                          "required": [w for w, _ in neighbours]},
            "settings": {"type": "array", "minItems": n, "maxItems": n,
                         "items": {"type": "array", "items": {"type": "number"}, "minItems": 5, "maxItems": 5}},
        },
        "required": ["relations", "settings"],
    }
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], schema


def rag_qa(word: str, neighbours: list[tuple[str, np.ndarray]], llm, n: int = RAG_QA_SETTINGS,
           cache_path: Path | None = None) -> WordDistribution:
    """Ask an LLM for n settings for ``word``, given known neighbours and their settings (RAG-QA).

    Args:
        neighbours: (known word, setting float (40,) dB) pairs, e.g. the K nearest known words.
        llm: any object with ``complete_json(messages, schema, max_tokens) -> str`` (and ``name``).
        cache_path: JSON cache of replies keyed by model and prompt (default
            ``sense_home()/cache/rag_qa.json``); a cached prompt is not asked again.
    Returns:
        method "rag-qa": samples float64 (n', 40) dB (the 5 region gains each clipped to ±AUDEALIZE_MAX_DB
        and interpolated to 40 bands; n' = the settings the reply holds), components = the neighbours,
        weight 1/K, relation as the LLM said.
    Raises:
        RagQaError: the reply is not JSON or has no usable settings; the LLM's own errors pass through.
    Source: the RAG-QA method of arXiv 2601.09448, with a compact 5-region parametrisation.
    """
    messages, schema = rag_qa_messages(word, neighbours, n)
    name = str(getattr(llm, "name", type(llm).__name__))
    key = hashlib.sha256(json.dumps([name, messages, schema], sort_keys=True).encode()).hexdigest()
    path = Path(cache_path) if cache_path is not None else cache_dir() / "rag_qa.json"
    cache = load_rag_qa_cache(path)
    if key not in cache:
        start = time.perf_counter()
        reply = llm.complete_json(messages, schema, max_tokens=40 * n + 120)
        cache = load_rag_qa_cache(path)  # another process may have written meanwhile
        cache[key] = {"word": word, "model": name, "reply": reply, "seconds": time.perf_counter() - start}
        replace_file(path, lambda tmp: tmp.write_text(json.dumps(cache)))
    return parse_rag_qa(word, neighbours, cache[key]["reply"])


def parse_rag_qa(word: str, neighbours: list[tuple[str, np.ndarray]], reply: str) -> WordDistribution:
    """Read a RAG-QA reply (see :func:`rag_qa`). Raises: RagQaError."""
    try:
        data = json.loads(reply)
        rows = [r for r in data["settings"] if isinstance(r, list) and len(r) == len(REGIONS_HZ)]
        settings = np.array(rows, dtype=np.float64).reshape(-1, len(REGIONS_HZ))
        relations = data.get("relations", {}) if isinstance(data.get("relations"), dict) else {}
    except (ValueError, TypeError, KeyError) as exc:
        raise RagQaError(f"unreadable RAG-QA reply for {word!r}: {exc}") from exc
    if len(settings) == 0 or not np.isfinite(settings).all():
        raise RagQaError(f"the RAG-QA reply for {word!r} has no usable settings")
    samples = expand_db(np.clip(settings, -AUDEALIZE_MAX_DB, AUDEALIZE_MAX_DB))
    comps = [Component(w, 1.0 / len(neighbours), relations.get(w) if relations.get(w) in RELATIONS else "same")
             for w, _ in neighbours]
    return WordDistribution(word, "rag-qa", samples, comps)


def load_rag_qa_cache(path: Path | None = None) -> dict[str, dict]:
    """The RAG-QA cache: ``{key: {word, model, reply, seconds}}`` ({} when absent or unreadable)."""
    path = Path(path) if path is not None else cache_dir() / "rag_qa.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
