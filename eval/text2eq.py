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
- **System**: for "make it <word>", the production lookup (:class:`DescriptorPrior`, restricted
  to the training words) gives the first neighbour; the next nearest training words by MiniLM
  cosine fill K_NEIGHBOURS; samples come from the mixture of their population Gaussians
  (covariance from training words only), weighted by match score.
- **Baselines**: random (uniform in the space), a static preset (mean training curve, one
  point), nearest-word retrieval (the production match's curve, one point); and, as the floor
  of the metric, a fresh sample of the true population.
- **Spaces**: the 40 band gains (ground cost: RMS dB over bands) and 2-D (x = smile, y = tilt,
  dB; :func:`smile_tilt_xy`), where the reflective-KDE variant is also reported.

Run: ``python -m eval.text2eq --out docs/EVALUATION.md`` (writes the table between markers).
"""

from __future__ import annotations

import argparse
import hashlib
import re
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
    band_gains,
    load_english,
    population_samples,
    smile_tilt_xy,
)

N_SAMPLES = 32
"""Samples per word for the population and for each sampled method."""

K_NEIGHBOURS = 5
"""Training words whose distributions the system mixes."""

METHODS = ("population resample (floor)", "system", "nearest word", "static preset", "random")
METRICS = ("w1_bands_db", "w1_xy_db", "kde_w1_xy_db")
_BEGIN, _END = "<!-- text2eq:begin -->", "<!-- text2eq:end -->"


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


def evaluate(seed: int = 0, holdout: float = 0.2, path: Path | None = None, embedder=None) -> dict:
    """Kantorovich distances between each method's settings and the population, per held-out word.

    Args:
        seed: seeds the split and every sample (results are reproducible).
        holdout: fraction of English words held out.
        path: eqdescriptors.json (default: the shared data's).
        embedder: MiniLM embedder (default :func:`knowledge.embeddings.get_embedder`).
    Returns:
        ``{"seed", "holdout", "n_train", "n_heldout", "train_words", "heldout_words", "seconds",
        "nearest_correlation", "methods": {method: {metric: {"mean", "std", "per_word": [floats]}}}}``
        for METHODS and METRICS (dB, lower is better); ``per_word`` and ``nearest_correlation``
        (Pearson r of each word's curve with its nearest-word curve) follow ``heldout_words``.
    Raises:
        DataMissingError / OSError: the data is missing; ImportError: no embedding model.
    Side effect: the restricted DescriptorPrior caches its FAISS index of the training words in
        ``SENSE_HOME/cache`` (one small file per split).
    Source: protocol of arXiv 2601.09448, adapted as the module docstring says.
    """
    start = time.perf_counter()
    if embedder is None:
        from knowledge.embeddings import get_embedder

        embedder = get_embedder()
    entries = load_english(path)
    by_word = {e["word"].casefold(): e for e in entries}
    train_words, held_words = split_words(list(by_word), holdout, seed)
    train = TrainSet.build([by_word[w] for w in train_words], embedder)
    all_gains = band_gains(entries)
    static = train.gains_db.mean(axis=0, keepdims=True)
    per_word: dict[str, dict[str, list[float]]] = {m: {k: [] for k in METRICS} for m in METHODS}
    nearest_correlation = []
    for i, word in enumerate(held_words):
        truth = by_word[word]
        gains = band_gains([truth])[0]
        around = np.repeat(gains[np.newaxis], N_SAMPLES, axis=0)
        population = population_samples(around, truth["agreement"], all_gains, np.random.default_rng([seed, 0, i]))
        rng = np.random.default_rng([seed, 1, i])
        predictions = {
            "population resample (floor)": (population_samples(around, truth["agreement"], all_gains, rng), None),
            "system": (predict_system(word, train, rng), None),
            "nearest word": (predict_nearest(word, train), None),
            "static preset": (static, None),
            "random": (
                rng.uniform(-AMOUNT_DB, AMOUNT_DB, (N_SAMPLES, len(gains))),
                rng.uniform(*BOUNDS_DB, (N_SAMPLES, 2)),
            ),
        }
        nearest_correlation.append(float(np.corrcoef(gains, predictions["nearest word"][0][0])[0, 1]))
        for method, (bands, xy) in predictions.items():
            for metric, value in _distances(population, bands, xy).items():
                per_word[method][metric].append(value)
    methods = {
        m: {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_word": v} for k, v in metrics.items()}
        for m, metrics in per_word.items()
    }
    return {
        "seed": seed, "holdout": holdout, "n_train": len(train_words), "n_heldout": len(held_words),
        "train_words": train_words, "heldout_words": held_words, "methods": methods,
        "nearest_correlation": nearest_correlation, "seconds": time.perf_counter() - start,
    }


def render_markdown(result: dict) -> str:
    """The results block for docs/EVALUATION.md: the table, run facts and system-vs-baseline tests.

    Args:
        result: :func:`evaluate`'s output.
    Returns:
        Markdown text (no trailing markers). Comparisons: share of held-out words on which the
        system is closer than the baseline, and the two-sided Wilcoxon signed-rank p-value of
        the paired distances (scipy.stats.wilcoxon).
    """
    methods = result["methods"]
    header = "| method | W1, 40 bands (RMS dB) | W1, 2-D (dB) | reflective-KDE W1, 2-D (dB) |"
    lines = [
        f"Seed {result['seed']}, {result['n_heldout']} held-out of {result['n_train'] + result['n_heldout']} "
        f"English words, {N_SAMPLES} samples per word and method, {K_NEIGHBOURS} neighbours; "
        f"{result['seconds']:.0f} s on this machine. Mean ± std over held-out words, lower is better.",
        "",
        header,
        "|---|---|---|---|",
    ]
    for method in METHODS:
        cells = [f"{methods[method][k]['mean']:.2f} ± {methods[method][k]['std']:.2f}" for k in METRICS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "System against each baseline: share of held-out words where the system is closer (Wilcoxon p).", "",
              "| baseline | W1, 40 bands | W1, 2-D | reflective-KDE W1, 2-D |", "|---|---|---|---|"]
    for baseline in ("nearest word", "static preset", "random"):
        cells = []
        for k in METRICS:
            ours, theirs = np.array(methods["system"][k]["per_word"]), np.array(methods[baseline][k]["per_word"])
            cells.append(f"{np.mean(ours < theirs):.0%} (p = {scipy.stats.wilcoxon(ours, theirs).pvalue:.1g})")
        lines.append(f"| {baseline} | " + " | ".join(cells) + " |")
    r = np.array(result["nearest_correlation"])
    lines += ["", f"Nearest-word curve against the held-out word's own curve: Pearson r median {np.median(r):.2f}; "
              f"anti-correlated (r < 0) for {np.mean(r < 0):.0%} of words, r < -0.5 for {np.mean(r < -0.5):.0%}.",
              "", "Held-out words: " + ", ".join(result["heldout_words"]) + "."]
    return "\n".join(lines)


def write_results(markdown: str, out: Path) -> None:
    """Put ``markdown`` between the text2eq markers of ``out`` (appended with markers if absent)."""
    block = f"{_BEGIN}\n{markdown}\n{_END}"
    text = out.read_text() if out.exists() else ""
    if _BEGIN in text and _END in text:
        text = re.sub(re.escape(_BEGIN) + ".*?" + re.escape(_END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    out.write_text(text)


def main(argv: list[str] | None = None) -> None:
    """CLI: run :func:`evaluate` and print the table, or write it into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=None, help="markdown file to update (e.g. docs/EVALUATION.md)")
    args = parser.parse_args(argv)
    markdown = render_markdown(evaluate(seed=args.seed, holdout=args.holdout))
    if args.out is None:
        print(markdown)
    else:
        write_results(markdown, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
