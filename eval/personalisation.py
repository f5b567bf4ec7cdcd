"""Simulated listeners: how fast SENSE learns what one person means by a word.

Each listener has a latent preferred setting for every word (float64 (40,) dB, the word's "more" space at the
crowd's default amount), drawn from the crowd population of :mod:`knowledge.population` with a shared part:
θ_w = μ_w + (1 − a_w)(√ρ n + √(1 − ρ) n_w), n, n_w ~ N(0, C) (C = covariance of all English curves), so that
marginally θ_w is exactly the population Gaussian N(μ_w, (1 − a_w)² C) and a listener's deviations in different
words share a fraction ρ = :data:`LISTENER_SHARED` of their variance (someone who likes more bass in "warm" likes
more bass in "full").

Listeners choose between variants by Bradley–Terry on squared RMS distance, P(j) ∝ exp(−d_j² / τ²), and give a
thumbs up with P = σ((c − d²) / τ²), τ = :data:`knowledge.personal.TEMPERATURE_DB` = 1 dB, c = (1 dB)²: a setting
1 dB RMS away from the ideal loses to the ideal 73 % of the time (about a 1 dB just-noticeable difference for broad
spectral changes) and is liked half the time; 2 dB away is liked 5 % of the time.

An *interaction* for word w: SENSE applies its current setting A and offers variants; the listener picks one and rates
the pick. Methods:

- ``population mean``: always μ_w, no learning.
- ``amount only`` (today's learning): A = amount × μ_w, variants 0.5 / 1 / 1.5 × amount; a thumbs-up pick's amount
  is kept for the word (as :meth:`PreferenceStore.history_amount` does).
- ``personal model, mode variants`` (the product before the forced choice): A = :meth:`PersonalModel.setting`; up to
  two variants from :func:`knowledge.population.variants` (k = 3) over 96 :meth:`PersonalModel.sample` draws, those
  moving some broad region ≥ 1 dB from A (as :func:`agent.variants.offer` filters them); the listener picks among
  A and the variants; the pick (if there was a choice) and the rating are evidence.
- ``personal model`` (the product, :func:`agent.variants.offer`): the same until the model has evidence; from then
  on a forced choice between B and C = A ± :data:`knowledge.personal.PROBE_STEP_DB` along the posterior's first
  principal direction (:func:`knowledge.personal.probe_pair`); the listener answers the question asked (B or C),
  evidence: the pick over the other one, and the rating of the pick.

Each listener asks for WORDS_PER_LISTENER words drawn from :data:`WORDS`, one interaction per word per round; after
n rounds (n interactions per word) the RMS dB distance (over the 40 bands) between what SENSE would apply and the
latent preference is measured for those words and for one more word never asked (the shared bias's transfer).

Run: ``sense eval personalisation [--listeners 100 --seed 0 --out docs/EVALUATION.md --json F]``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from agent.variants import MIN_VARIANT_DB, VARIANT_SAMPLES  # the product's: posterior draws, least region move
from knowledge.personal import LIKE_WITHIN_DB, TEMPERATURE_DB, Evidence, PersonalModel, probe_pair
from knowledge.population import (WordDistribution, audibly_different, band_gains, load_english, population_samples,
                                  variants)

MIN_CONTRIBUTORS = 10
"""WORDS are the English words with at least this many crowd contributions (29 in the shared data)."""
WORDS_PER_LISTENER = 3
INTERACTIONS = (0, 1, 3, 5, 10)
LISTENER_SHARED = 0.5
"""ρ of the simulated listeners (an assumption: no data on how much of a person's taste carries across words)."""
METHODS = ("population mean", "amount only", "personal model, mode variants", "personal model")


@dataclass(eq=False)
class Population:
    """The crowd population of the well-supported English words.

    Attributes:
        words: WORDS, lower case, most contributions first.
        mean_db: word -> float64 (40,) dB, the word's curve at the default amount.
        agreement: word -> crowd agreement 0..1.
        spread: float64 (m, 40) all English curves (their covariance is C).
        cov: float64 (40, 40) C.
    """

    words: list[str]
    mean_db: dict[str, np.ndarray]
    agreement: dict[str, float]
    spread: np.ndarray
    cov: np.ndarray = field(init=False)

    def __post_init__(self):
        self.cov = np.cov(self.spread, rowvar=False)

    @classmethod
    def load(cls, min_contributors: int = MIN_CONTRIBUTORS) -> Population:
        """From the shared data (Audealize / SocialEQ English entries). Raises DataMissingError without data."""
        entries = load_english()
        gains = band_gains(entries)
        chosen = sorted((i for i, e in enumerate(entries) if e["num"] >= min_contributors), key=lambda i: -entries[i]["num"])
        words = [entries[i]["word"].casefold() for i in chosen]
        return cls(words, {w: gains[i] for w, i in zip(words, chosen)},
                   {w: float(entries[i]["agreement"]) for w, i in zip(words, chosen)}, gains)

    def prior(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """(μ_w (40,), (1 − a_w)² C (40, 40)): the population Gaussian of a word."""
        return self.mean_db[word], (1.0 - self.agreement[word]) ** 2 * self.cov


@dataclass(eq=False)
class Listener:
    """One simulated person: latent settings per word and a noisy Bradley–Terry chooser."""

    latent: dict[str, np.ndarray]
    rng: np.random.Generator
    temperature_db: float = TEMPERATURE_DB

    @classmethod
    def draw(cls, population: Population, words: list[str], rng: np.random.Generator,
             shared: float = LISTENER_SHARED, temperature_db: float = TEMPERATURE_DB) -> Listener:
        """θ_w = μ_w + (1 − a_w)(√ρ n + √(1 − ρ) n_w) with n, n_w ~ N(0, C) (:func:`population_samples`)."""
        n = population_samples(np.zeros((1, population.spread.shape[1])), 0.0, population.spread, rng)[0]
        latent = {}
        for w in words:
            spread = 1.0 - population.agreement[w]
            own = population_samples(np.zeros((1, len(n))), 1.0 - spread * np.sqrt(1 - shared), population.spread, rng)[0]
            latent[w] = population.mean_db[w] + spread * np.sqrt(shared) * n + own
        return cls(latent, rng, temperature_db)

    def pick(self, word: str, options: np.ndarray) -> int:
        """Index of the chosen option (options (J, 40) dB): P(j) ∝ exp(−d_j² / τ²)."""
        logits = -_d2(options, self.latent[word]) / self.temperature_db**2
        p = np.exp(logits - logits.max())
        return int(self.rng.choice(len(options), p=p / p.sum()))

    def rate(self, word: str, setting: np.ndarray) -> int:
        """Thumbs up (1) with P = σ((c − d²) / τ²), else -1."""
        t = (LIKE_WITHIN_DB**2 - _d2(setting[None, :], self.latent[word])[0]) / self.temperature_db**2
        return 1 if self.rng.random() < 1.0 / (1.0 + np.exp(-t)) else -1


class Row(BaseModel):
    """One method's medians (RMS dB) after each interaction count, over listeners × asked words, and on the
    word never asked."""

    method: str
    asked_db: dict[int, float]
    unseen_db: dict[int, float]


class Report(BaseModel):
    """The evaluation's result (see the module doc)."""

    listeners: int
    seed: int
    temperature_db: float
    words: list[str]
    rows: list[Row]
    seconds: float


def _d2(options: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.mean((np.atleast_2d(options) - target) ** 2, axis=1)


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _model_options(model: PersonalModel, word: str, rng: np.random.Generator, probes: bool) -> np.ndarray:
    """What SENSE offers for ``word``, float64 (J, 40) dB: [A, up to two mode variants] (the first row is A, applied),
    or with ``probes`` once the model has evidence the forced-choice pair [B, C] around A (A is not a choice)."""
    applied = model.setting(word)
    samples = model.sample(word, VARIANT_SAMPLES, rng)
    if probes and model.has_evidence:
        return probe_pair(samples, applied)
    modes = variants(WordDistribution(word=word, method="personal", samples_db=samples), k=3, min_difference_db=0.0)
    found = audibly_different([v.setting_db for v in modes], applied, MIN_VARIANT_DB)
    return np.array([applied, *found[:2]])


def _personal_round(listener: Listener, population: Population, words: list[str], evidence: list[Evidence],
                    rng: np.random.Generator, probes: bool) -> None:
    """One interaction per word with the personal model, refitted before each; appends evidence."""
    for w in words:
        model = PersonalModel.fit(evidence, population.prior, temperature_db=listener.temperature_db)
        options = _model_options(model, w, rng, probes)
        j = listener.pick(w, options)
        if len(options) > 1:
            evidence.append(Evidence(kind="pick", word=w, direction="more", setting_db=options[j].tolist(),
                                     rejected_db=np.delete(options, j, axis=0).tolist()))
        evidence.append(Evidence(kind="rating", word=w, direction="more", setting_db=options[j].tolist(),
                                 rating=listener.rate(w, options[j])))


def _amount_round(listener: Listener, population: Population, words: list[str], amount: dict[str, float]) -> None:
    """One interaction per word with amount-only learning: variants 0.5/1/1.5 × the amount; a liked pick's amount is kept."""
    for w in words:
        scales = amount[w] * np.array([1.0, 0.5, 1.5])
        j = listener.pick(w, scales[:, None] * population.mean_db[w])
        if listener.rate(w, scales[j] * population.mean_db[w]) > 0:
            amount[w] = float(scales[j])


def simulate_listener(population: Population, rng: np.random.Generator,
                      temperature_db: float = TEMPERATURE_DB) -> dict[str, np.ndarray]:
    """One listener through max(INTERACTIONS) rounds with each method (listener and model share τ = temperature_db).

    Returns:
        method -> float64 (len(INTERACTIONS), WORDS_PER_LISTENER + 1) RMS dB distances after n rounds to the
        latent settings of the asked words and (last column) the word never asked.
    """
    chosen = rng.choice(len(population.words), size=WORDS_PER_LISTENER + 1, replace=False)
    words = [population.words[i] for i in chosen]
    asked = words[:-1]  # the last word is never asked
    listener = Listener.draw(population, words, rng, temperature_db=temperature_db)
    out = {m: np.zeros((len(INTERACTIONS), len(words))) for m in METHODS}
    evidence: dict[str, list[Evidence]] = {"personal model, mode variants": [], "personal model": []}
    amount = {w: 1.0 for w in asked}
    for n in range(max(INTERACTIONS) + 1):
        if n in INTERACTIONS:
            i = INTERACTIONS.index(n)
            models = {m: PersonalModel.fit(ev, population.prior, temperature_db=temperature_db) for m, ev in evidence.items()}
            for c, w in enumerate(words):
                out["population mean"][i, c] = _rms(population.mean_db[w], listener.latent[w])
                out["amount only"][i, c] = _rms(amount.get(w, 1.0) * population.mean_db[w], listener.latent[w])
                for m, model in models.items():
                    out[m][i, c] = _rms(model.setting(w), listener.latent[w])
        if n < max(INTERACTIONS):
            for m, ev in evidence.items():
                _personal_round(listener, population, asked, ev, rng, probes=m == "personal model")
            _amount_round(listener, population, asked, amount)
    return out


def evaluate(listeners: int = 100, seed: int = 0, temperature_db: float = TEMPERATURE_DB,
             population: Population | None = None) -> Report:
    """Simulate ``listeners`` listeners (seeded: listener i uses ``default_rng([seed, i])``) and take medians.

    BLAS runs single-threaded meanwhile (threadpoolctl): the 40 × 40 algebra is faster that way.

    Raises:
        ValueError: listeners < 1. DataMissingError: no shared data.
    """
    if listeners < 1:
        raise ValueError(f"need at least one listener, got {listeners}")
    start = time.perf_counter()
    population = population or Population.load()
    with threadpool_limits(1):
        runs = [simulate_listener(population, np.random.default_rng([seed, i]), temperature_db) for i in range(listeners)]
    rows = []
    for m in METHODS:
        d = np.stack([r[m] for r in runs])  # (listeners, interactions, words)
        rows.append(Row(method=m, asked_db={n: float(np.median(d[:, i, :-1])) for i, n in enumerate(INTERACTIONS)},
                        unseen_db={n: float(np.median(d[:, i, -1])) for i, n in enumerate(INTERACTIONS)}))
    return Report(listeners=listeners, seed=seed, temperature_db=temperature_db, words=population.words, rows=rows,
                  seconds=time.perf_counter() - start)


def render_markdown(report: Report) -> str:
    """The results table (markdown) with the acceptance ratio at 5 interactions."""
    head = " | ".join(f"{n}" for n in INTERACTIONS)
    lines = [f"Median RMS dB (40 bands) between what SENSE applies and the listener's latent preference, "
             f"{report.listeners} listeners × {WORDS_PER_LISTENER} asked words (seed {report.seed}, τ = {report.temperature_db:g} dB, "
             f"{report.seconds:.0f} s); columns: interactions per asked word.", "",
             f"| method | {head} | never-asked word after {INTERACTIONS[-2]} / {INTERACTIONS[-1]} |",
             "|---|" + "---|" * len(INTERACTIONS) + "---|"]
    for r in report.rows:
        cells = " | ".join(f"{r.asked_db[n]:.2f}" for n in INTERACTIONS)
        lines.append(f"| {r.method} | {cells} | {r.unseen_db[INTERACTIONS[-2]]:.2f} / {r.unseen_db[INTERACTIONS[-1]]:.2f} |")
    base = {r.method: r for r in report.rows}["population mean"].asked_db[5]
    ratios = ", ".join(f"{r.method} {r.asked_db[5] / base:.0%}" for r in report.rows if r.method != "population mean")
    lines += ["", f"After 5 interactions, as a share of the population mean's distance (target ≤ 50 %): {ratios}."]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, table: str) -> None:
    """Replace the text between the personalisation markers in ``path`` (appended with markers if absent)."""
    from eval.report import write_markdown_section

    write_markdown_section(path, "personalisation", table)


def write_json(path: Path, report: Report) -> None:
    """The report as JSON."""
    path.write_text(json.dumps(report.model_dump(), indent=1), encoding="utf-8")
