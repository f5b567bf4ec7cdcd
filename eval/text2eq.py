"""Text → EQ against the population: the distributional protocol of arXiv 2601.09448, adapted.

The paper asks an LLM for EQ settings for a text prompt several times and compares the sampled
settings with listeners' settings by a Kantorovich (Wasserstein-1) distance in a bounded 2-D
Beosonic space (±6 dB), against random-sampling and static-preset baselines. Here:

- **Population** (ground truth): the Audealize / SocialEQ word → 40-band curves (English words).
  There is one averaged curve per word, so each word's population is *defined* as a Gaussian
  around its band gains (amount DEFAULT_AMOUNT, i.e. ±2.5 dB at the curve's extremes) whose
  covariance is the across-word covariance of all English curves scaled by (1 − agreement)²:
  agreement 1 would mean everyone set the word's curve, agreement 0 contributors as varied as
  the whole vocabulary. N_SAMPLES samples per word, seeded.
- **Held-out words**: a seeded split; retrieval sees only the training words.
- **Product** (:class:`knowledge.population.PopulationModel`, built on the training words only): the
  K nearest training words by MiniLM cosine, each one's deviation from the mean curve times its
  expected sign from a relation classifier (antonym-aware), stacked with a ridge MiniLM → curve,
  shrunk by leave-one-out weights, sampled with a population-like spread; and its ablations.
- **RAG-QA** (:func:`knowledge.population.rag_qa`): the local LLM sees the K neighbours' settings in
  a 5-region form and writes 11 settings and each neighbour's relation (cached per prompt; run on
  the held-out words of one seed within a CPU budget, compared on those words).
- **Old system**: the production match plus the next nearest words, a mixture of their population
  Gaussians, weighted by match score.
- **Baselines**: random (uniform in the space), a static preset (mean training curve, one point,
  and with the population spread), nearest-word retrieval (the production match's curve, one
  point); and, as the floor of the metric, a fresh sample of the true population.
- **Spaces**: the 40 band gains (ground cost: RMS dB over bands) and 2-D (x = smile, y = tilt,
  dB; :func:`smile_tilt_xy`), where the reflective-KDE variant is also reported.
- **Seeds**: every row over several seeded splits: mean over seeds of the per-seed means ± std.

Run: ``python -m eval.text2eq --seeds 0 1 2 3 4 --out docs/EVALUATION.md`` (writes the tables
between markers; ``--rag-qa-budget-s S`` lets the LLM answer uncached words for S seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.stats

from eval.metrics import kantorovich_distance, reflective_kde_kantorovich
from knowledge.descriptors import DescriptorPrior
from knowledge.population import (  # noqa: F401  (re-exported: the evaluation's population definitions)
    AMOUNT_DB,
    BOUNDS_DB,
    PopulationModel,
    RagQaError,
    band_gains,
    load_english,
    population_samples,
    load_rag_qa_cache,
    rag_qa,
    smile_tilt_xy,
)

N_SAMPLES = 32
"""Samples per word for the population and for each sampled method."""

K_NEIGHBOURS = 5
"""Training words whose distributions the old system mixes."""

PRODUCT = "product: stacked mixtures + ridge, spread"
OLD_SYSTEM = "5-neighbour mixture (old system)"
METHODS = (
    "population resample (floor)",
    PRODUCT,
    "product mean, one point",
    "antonym-aware mixture, spread",
    "plain mixture (no signs), spread",
    "ridge MiniLM → curve, spread",
    OLD_SYSTEM,
    "nearest word",
    "static preset",
    "static preset + population spread",
    "random",
)
"""Rows evaluated on every seed (see docs/EVALUATION.md for what each is)."""
_MODEL_VARIANTS = {PRODUCT: "product", "antonym-aware mixture, spread": "antonym-aware mixture",
                   "plain mixture (no signs), spread": "plain mixture", "ridge MiniLM → curve, spread": "ridge"}
LLM_METHODS = ("RAG-QA (LLM, 11 settings)", "RAG-QA mean + population spread",
               "antonym-aware mixture, LLM relations, spread")
"""Rows that need the local LLM: evaluated on the held-out words of one seed whose replies are cached."""
METRICS = ("w1_bands_db", "w1_xy_db", "kde_w1_xy_db")


def split_words(words: list[str], holdout: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Seeded split into (training, held-out) words, each in input order.

    Args:
        words: distinct words.
        holdout: fraction held out, 0 < holdout < 1; round(holdout · len(words)) words, at least 1.
        seed: numpy Generator seed; the same seed and words always give the same split.
    Raises:
        ValueError: holdout outside (0, 1) or fewer than 2 words.
    """
    if not 0 < holdout < 1 or len(words) < 2:
        raise ValueError(f"need 0 < holdout < 1 and at least 2 words, got {holdout} and {len(words)}")
    n_held = min(max(1, round(holdout * len(words))), len(words) - 1)
    held = set(np.random.default_rng(seed).permutation(len(words))[:n_held].tolist())
    return [w for i, w in enumerate(words) if i not in held], [w for i, w in enumerate(words) if i in held]


@dataclass(eq=False)
class TrainSet:
    """What retrieval may see: the training words, their curves, embeddings and the restricted prior.

    Attributes:
        words: training words (lower case), file order.
        gains_db: float (n, 40) curves at the default amount.
        agreement: float (n,).
        embeddings: float32 (n, 384) MiniLM embeddings, unit norm.
        prior: :class:`DescriptorPrior` over the training entries only.
        embedder: the MiniLM embedder (``encode(list[str]) -> float32 (n, 384)``).
    """

    words: list[str]
    gains_db: np.ndarray
    agreement: np.ndarray
    embeddings: np.ndarray
    prior: DescriptorPrior
    embedder: object

    @classmethod
    def build(cls, entries: list[dict], embedder) -> TrainSet:
        """From training entries and an embedder (``encode(list[str]) -> (n, 384)``)."""
        words = [e["word"].casefold() for e in entries]
        digest = hashlib.sha256("\n".join(["text2eq-train", *words]).encode()).hexdigest()
        return cls(
            words=words,
            gains_db=band_gains(entries),
            agreement=np.array([e["agreement"] for e in entries], dtype=np.float64),
            embeddings=embedder.encode(words),
            prior=DescriptorPrior(entries, digest, embedder),
            embedder=embedder,
        )

    def neighbours(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """The production match, then the next nearest training words by MiniLM cosine.

        Returns:
            (rows (K_NEIGHBOURS,) into ``words``, weights (K_NEIGHBOURS,) summing to 1): weights are
            the match score (cosine, or spelling similarity) and the cosines, floored at 0.01.
        """
        match = self.prior.lookup(word)
        first = self.words.index(match.word.casefold())
        sims = self.embeddings @ self.embedder.encode([word.casefold()])[0]
        sims[first] = -np.inf
        rest = np.argsort(-sims, kind="stable")[: K_NEIGHBOURS - 1]
        weights = np.maximum(np.r_[match.score, sims[rest]], 0.01)
        return np.r_[first, rest], weights / weights.sum()


def predict_system(word: str, train: TrainSet, rng: np.random.Generator) -> np.ndarray:
    """The system's distribution for "make it <word>": N_SAMPLES curves, float64 (N_SAMPLES, 40) dB.

    Each sample picks one of :meth:`TrainSet.neighbours` by weight and draws from that word's
    population Gaussian (:func:`population_samples`, covariance of the training curves).
    """
    rows, weights = train.neighbours(word)
    picks = rows[rng.choice(len(rows), size=N_SAMPLES, p=weights)]
    return population_samples(train.gains_db[picks], train.agreement[picks], train.gains_db, rng)


def predict_nearest(word: str, train: TrainSet) -> np.ndarray:
    """Nearest-word retrieval: the production match's curve, one point, float64 (1, 40) dB.

    The match is the first of :meth:`TrainSet.neighbours` (DescriptorPrior lookup over the training words).
    """
    rows, _ = train.neighbours(word)
    return train.gains_db[rows[:1]]


def _distances(population: np.ndarray, bands: np.ndarray, xy: np.ndarray | None = None) -> dict[str, float]:
    pop_xy = smile_tilt_xy(population)
    xy = smile_tilt_xy(bands) if xy is None else xy
    scale = np.sqrt(population.shape[1])  # Euclidean over 40 bands / sqrt(40) = RMS dB
    return {
        "w1_bands_db": kantorovich_distance(population / scale, bands / scale),
        "w1_xy_db": kantorovich_distance(pop_xy, xy),
        "kde_w1_xy_db": reflective_kde_kantorovich(pop_xy, xy, BOUNDS_DB),
    }


def predict_product(word: str, model: PopulationModel, rng: np.random.Generator,
                    variant: str = "product") -> np.ndarray:
    """A :class:`PopulationModel` variant's N_SAMPLES settings for an unknown word, float64 (N_SAMPLES, 40) dB."""
    return model.distribution(word, N_SAMPLES, rng, variant).samples_db


class _NotAsked(Exception):
    """RAG-QA was not asked for this word (no cached reply and no LLM time left)."""


class RagQaLLM:
    """The eval's LLM for RAG-QA: cached replies always; new requests only while ``budget_s`` lasts.

    Args:
        budget_s: seconds of new requests this run may spend (0: cached replies only). The backend
            (:func:`agent.llm.load_backend`, the local 1.5B GGUF) is loaded on the first new request.
    """

    def __init__(self, budget_s: float = 0.0):
        from agent.models import DEFAULT_PLANNER, MODELS

        self.name = f"llama.cpp:{MODELS[DEFAULT_PLANNER].filename}"  # the name LlamaCppBackend's replies carry
        self.budget_s, self.spent_s, self._backend = budget_s, 0.0, None

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = 200) -> str:
        if self.spent_s >= self.budget_s:
            raise _NotAsked
        start = time.perf_counter()
        if self._backend is None:
            from agent.llm import load_backend

            self._backend = load_backend()
            self.name = self._backend.name
        try:
            return self._backend.complete_json(messages, schema, max_tokens)
        finally:
            self.spent_s += time.perf_counter() - start


def _llm_rows(word: str, model: PopulationModel, llm, rng: np.random.Generator) -> dict:
    """The LLM_METHODS' settings for a held-out word ({} when RAG-QA was not asked or failed)."""
    _, comps = model.predict_mean(word, "antonym-aware mixture")
    neighbours = [(c.word, model.gains_db[model.words.index(c.word)]) for c in comps]
    try:
        dist = rag_qa(word, neighbours, llm)
    except (_NotAsked, RagQaError):
        return {}
    relations = {word: {c.word: c.relation for c in dist.components}}
    with_llm = dataclasses.replace(model, relations=relations)
    around = np.repeat(dist.mean_db[np.newaxis], N_SAMPLES, axis=0)
    return {
        LLM_METHODS[0]: (dist.samples_db, None),
        LLM_METHODS[1]: (population_samples(around, model.agreement.mean(), model.gains_db, rng), None),
        LLM_METHODS[2]: (predict_product(word, with_llm, rng, "antonym-aware mixture"), None),
    }


def _predictions(word: str, truth: dict, train: TrainSet, model: PopulationModel, all_gains, rng, methods) -> dict:
    gains = band_gains([truth])[0]
    around = np.repeat(gains[np.newaxis], N_SAMPLES, axis=0)
    static = model.static_db[np.newaxis]
    makers = {
        "population resample (floor)": lambda: population_samples(around, truth["agreement"], all_gains, rng),
        **{m: (lambda v=v: predict_product(word, model, rng, v)) for m, v in _MODEL_VARIANTS.items()},
        "product mean, one point": lambda: model.predict_mean(word, "product")[0][np.newaxis],
        OLD_SYSTEM: lambda: predict_system(word, train, rng),
        "nearest word": lambda: predict_nearest(word, train),
        "static preset": lambda: static,
        "static preset + population spread": lambda: population_samples(
            np.repeat(static, N_SAMPLES, axis=0), model.agreement.mean(), model.gains_db, rng),
    }
    out = {m: (makers[m](), None) for m in methods if m != "random"}
    if "random" in methods:
        out["random"] = (rng.uniform(-AMOUNT_DB, AMOUNT_DB, (N_SAMPLES, len(gains))),
                         rng.uniform(*BOUNDS_DB, (N_SAMPLES, 2)))
    return out


def evaluate(seed: int = 0, holdout: float = 0.2, path: Path | None = None, embedder=None,
             methods: tuple[str, ...] = METHODS, llm=None) -> dict:
    """Kantorovich distances between each method's settings and the population, per held-out word.

    Args:
        seed: seeds the split and every sample (results are reproducible).
        holdout: fraction of English words held out.
        path: eqdescriptors.json (default: the shared data's).
        embedder: MiniLM embedder (default :func:`knowledge.embeddings.get_embedder`).
        methods: the METHODS rows to compute.
        llm: for LLM_METHODS, an object with ``complete_json`` (e.g. :class:`RagQaLLM`); None: skipped.
    Returns:
        ``{"seed", "holdout", "n_train", "n_heldout", "train_words", "heldout_words", "seconds",
        "nearest_correlation", "product_correlation", "methods": {method: {metric: {"mean", "std",
        "n", "per_word": [floats, NaN where not run]}}}}`` (dB, lower is better); ``per_word`` and the
        correlations (Pearson r of each word's curve with the nearest word's / the product's mean
        curve) follow ``heldout_words``.
    Raises:
        DataMissingError / OSError: the data is missing; ImportError: no embedding model.
    Side effect: the restricted DescriptorPrior caches its FAISS index of the training words in
        ``SENSE_HOME/cache`` (one small file per split); RAG-QA replies are cached there too.
    Source: protocol of arXiv 2601.09448, adapted as the module docstring says.
    """
    start = time.perf_counter()
    if embedder is None:
        from knowledge.embeddings import get_embedder

        embedder = get_embedder()
    entries = load_english(path)
    by_word = {e["word"].casefold(): e for e in entries}
    train_words, held_words = split_words(list(by_word), holdout, seed)
    train_entries = [by_word[w] for w in train_words]
    train, model = TrainSet.build(train_entries, embedder), PopulationModel.build(train_entries, embedder)
    all_gains = band_gains(entries)  # the population's covariance (truth side only)
    rows = tuple(methods) + (LLM_METHODS if llm is not None else ())
    per_word = {m: {k: [] for k in METRICS} for m in rows}
    nearest_r, product_r = [], []
    for i, word in enumerate(held_words):
        truth = by_word[word]
        gains = band_gains([truth])[0]
        population = population_samples(np.repeat(gains[np.newaxis], N_SAMPLES, axis=0), truth["agreement"],
                                         all_gains, np.random.default_rng([seed, 0, i]))
        rng = np.random.default_rng([seed, 1, i])
        predictions = _predictions(word, truth, train, model, all_gains, rng, methods)
        if llm is not None:
            predictions.update(_llm_rows(word, model, llm, np.random.default_rng([seed, 2, i])))
        nearest_r.append(float(np.corrcoef(gains, predict_nearest(word, train)[0])[0, 1]))
        product_r.append(float(np.corrcoef(gains, model.predict_mean(word)[0])[0, 1]))
        for method in rows:
            values = _distances(population, *predictions[method]) if method in predictions else {}
            for metric in METRICS:
                per_word[method][metric].append(values.get(metric, float("nan")))
    return {
        "seed": seed, "holdout": holdout, "n_train": len(train_words), "n_heldout": len(held_words),
        "train_words": train_words, "heldout_words": held_words, "methods": _summarise(per_word),
        "nearest_correlation": nearest_r, "product_correlation": product_r, "seconds": time.perf_counter() - start,
        "weights": {v: model.weights[v].tolist() for v in _MODEL_VARIANTS.values()},
    }


def _summarise(per_word: dict) -> dict:
    out = {}
    for m, metrics in per_word.items():
        out[m] = {}
        for k, v in metrics.items():
            a = np.array(v, dtype=np.float64)
            ok = np.isfinite(a)
            out[m][k] = {"mean": float(a[ok].mean()) if ok.any() else float("nan"),
                         "std": float(a[ok].std()) if ok.any() else float("nan"), "n": int(ok.sum()), "per_word": v}
    return out


def evaluate_seeds(seeds=(0, 1, 2, 3, 4), holdout: float = 0.2, embedder=None, llm=None, llm_seed: int = 0) -> dict:
    """:func:`evaluate` on each seed (the LLM rows on ``llm_seed`` only).

    Returns:
        ``{"seeds", "runs": [evaluate() per seed], "summary": {method: {metric: {"mean", "std"}}}}``:
        mean over seeds of the per-seed means, and their std across seeds (METHODS only).
    """
    runs = [evaluate(seed, holdout, embedder=embedder, llm=llm if seed == llm_seed else None) for seed in seeds]
    summary = {m: {k: {"mean": float(np.mean([r["methods"][m][k]["mean"] for r in runs])),
                       "std": float(np.std([r["methods"][m][k]["mean"] for r in runs]))} for k in METRICS}
               for m in METHODS}
    return {"seeds": list(seeds), "runs": runs, "summary": summary}


def _cell(stats: dict) -> str:
    return f"{stats['mean']:.2f} ± {stats['std']:.2f}"


def _pooled(runs: list[dict], method: str, metric: str) -> np.ndarray:
    return np.concatenate([np.array(r["methods"][method][metric]["per_word"], dtype=np.float64) for r in runs])


def render_markdown(result: dict) -> str:
    """The results block for docs/EVALUATION.md: the table over seeds, the LLM table, tests, ranking.

    Args:
        result: :func:`evaluate_seeds`' output.
    Returns:
        Markdown text (no trailing markers). Comparisons pool the (seed, word) pairs: share where the
        product is closer, two-sided Wilcoxon signed-rank p of the paired distances (scipy.stats.wilcoxon).
    """
    runs, summary = result["runs"], result["summary"]
    first = runs[0]
    seeds = ", ".join(str(s) for s in result["seeds"])
    lines = [f"Seeds {seeds}: {first['n_heldout']} held-out of {first['n_train'] + first['n_heldout']} English "
             f"words per seed, {N_SAMPLES} samples per word and method; {sum(r['seconds'] for r in runs):.0f} s "
             "on this machine. Mean over seeds of the per-seed mean ± std across seeds, dB, lower is better.", "",
             "| method | W1, 40 bands (RMS dB) | W1, 2-D (dB) | reflective-KDE W1, 2-D (dB) |", "|---|---|---|---|"]
    lines += [f"| {m} | " + " | ".join(_cell(summary[m][k]) for k in METRICS) + " |" for m in METHODS]
    lines += ["", "Product against each baseline, all (seed, word) pairs: share where the product is closer "
              "(Wilcoxon p); seeds whose mean it beats.", "",
              "| baseline | W1, 40 bands | W1, 2-D | reflective-KDE W1, 2-D |", "|---|---|---|---|"]
    for base in (OLD_SYSTEM, "nearest word", "static preset", "static preset + population spread", "random"):
        cells = []
        for k in METRICS:
            ours, theirs = _pooled(runs, PRODUCT, k), _pooled(runs, base, k)
            wins = sum(r["methods"][PRODUCT][k]["mean"] < r["methods"][base][k]["mean"] for r in runs)
            cells.append(f"{np.mean(ours < theirs):.0%} (p = {scipy.stats.wilcoxon(ours, theirs).pvalue:.1g}), "
                         f"{wins}/{len(runs)}")
        lines.append(f"| {base} | " + " | ".join(cells) + " |")
    lines += ["", *_llm_lines(result), "", *_ranking_lines(summary)]
    rn = np.concatenate([r["nearest_correlation"] for r in runs])
    rp = np.concatenate([r["product_correlation"] for r in runs])
    w = first["weights"]
    lines += ["", f"Curve of the held-out word against the predicted curve (Pearson r, all seeds): nearest word median "
              f"{np.median(rn):.2f}, r < 0 for {np.mean(rn < 0):.0%}; product mean median {np.median(rp):.2f}, "
              f"r < 0 for {np.mean(rp < 0):.0%}. Stacking weights fitted leave-one-out on seed "
              f"{first['seed']}'s training words: product {np.round(w['product'], 2).tolist()} (signed mixture, "
              f"plain mixture, ridge), antonym-aware {np.round(w['antonym-aware mixture'], 2).tolist()}, plain "
              f"{np.round(w['plain mixture'], 2).tolist()}, ridge {np.round(w['ridge'], 2).tolist()}."]
    return "\n".join(lines)


def _llm_lines(result: dict) -> list[str]:
    run = next((r for r in result["runs"] if LLM_METHODS[0] in r["methods"]), None)
    ok = (np.isfinite(np.array(run["methods"][LLM_METHODS[0]]["w1_xy_db"]["per_word"], dtype=np.float64))
          if run is not None else np.zeros(0, dtype=bool))
    if not ok.any():
        return ["RAG-QA: not run (no cached replies; `--rag-qa-budget-s` asks the local LLM)."]
    words = [w for w, o in zip(run["heldout_words"], ok) if o]
    seconds = [e["seconds"] for e in load_rag_qa_cache().values() if e["word"] in words]
    lines = [f"RAG-QA with the local Qwen2.5-Coder-1.5B (Q4_K_M, llama.cpp, 2 CPU cores, greedy decoding) on seed "
             f"{run['seed']}'s held-out words it answered ({len(words)} of {run['n_heldout']}, in split order); "
             f"{np.median(seconds):.1f} s per request (median; mean {np.mean(seconds):.1f} s, each run's first "
             "request includes the ~10 s model load). Mean ± std over these words:", "",
             "| method (same words) | W1, 40 bands | W1, 2-D | reflective-KDE W1, 2-D |", "|---|---|---|---|"]
    for m in (*LLM_METHODS, PRODUCT, "antonym-aware mixture, spread", "static preset",
              "static preset + population spread", "random"):
        stats = []
        for k in METRICS:
            a = np.array(run["methods"][m][k]["per_word"], dtype=np.float64)[ok]
            stats.append(f"{a.mean():.2f} ± {a.std():.2f}")
        lines.append(f"| {m} | " + " | ".join(stats) + " |")
    return lines


def _ranking_lines(summary: dict) -> list[str]:
    order = sorted((m for m in METHODS if m != METHODS[0]), key=lambda m: summary[m]["w1_xy_db"]["mean"])
    return ["Ranking. Reported by the paper (arXiv 2601.09448, LLMs against listeners in its 2-D space): LoRA "
            "fine-tune best, then RAG-QA / RAG, then few-/zero-shot prompting; static preset and random worst. "
            "Ours (W1 2-D, mean over seeds, best first): " + " < ".join(order) + "."]


def write_results(markdown: str, out: Path) -> None:
    """Put ``markdown`` between the text2eq markers of ``out`` (appended with markers if absent)."""
    from eval.report import write_markdown_section

    write_markdown_section(out, "text2eq", markdown)


def main(argv: list[str] | None = None) -> None:
    """CLI: run :func:`evaluate_seeds` and print the tables, or write them into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--rag-qa-budget-s", type=float, default=0.0,
                        help="seconds of new LLM requests this run may spend (replies are cached; 0: cached only)")
    parser.add_argument("--no-rag-qa", action="store_true", help="skip the LLM rows")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to update (e.g. docs/EVALUATION.md)")
    args = parser.parse_args(argv)
    llm = None if args.no_rag_qa else RagQaLLM(args.rag_qa_budget_s)
    markdown = render_markdown(evaluate_seeds(args.seeds, args.holdout, llm=llm, llm_seed=args.seeds[0]))
    if args.out is None:
        print(markdown)
    else:
        write_results(markdown, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
