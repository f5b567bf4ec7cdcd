"""Variants and personal models in the conversation: one word, several ways people mean it, and what this person likes.

A tone word is a *distribution* of EQ settings (:mod:`knowledge.population`); a person's own preference for it is a
posterior with that population as prior and a bias shared across words (:mod:`knowledge.personal`). Here:

- :func:`personalise`: a tone move gets the person's offset from the population mean (their posterior mean minus
  the population's, 40 Audealize bands) and the sentence that explains it ("you like more warmth than most …");
- :func:`offer`: up to two alternatives B and C to the applied result A, each labelled by what differs from A:
  for a person with no evidence yet, the distinct ways people mean the turn's first tone word (k-medoids modes,
  :func:`knowledge.population.variants`); once the personal model has evidence, a forced choice that teaches it
  most (A ± 2 dB RMS along the direction their taste is least known in, :func:`knowledge.personal.probe_pair`);
  :func:`render` processes them (loudness-matched like every result, so A/B is fair);
- :func:`pick_of` reads "the second one", "B", "keep A"; picking is evidence for the personal model
  (a pick of B over A and C; in a forced choice, B over C), and the next request starts from the picked settings.

Offsets live in the word's own ("more") space at the crowd's default amount (±2.5 dB at a curve's extremes) and are
applied × the move's amount, negated for "less", as Audealize's 40 peaking filters (Q 4.31).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from agent.schemas import Direction
from agent.settings import Settings, ToneMove
from knowledge.descriptors import AUDEALIZE_FREQS_HZ, AUDEALIZE_Q
from knowledge.words import WordMeaning
from tools.eq import MAX_GAIN_DB, Filter, frequency_response_db

LETTERS = "ABC"
#: A variant is offered only when it moves some broad region (REGIONS) at least this much (dB, at the default
#: amount) away from the applied result: below it an A/B is not worth the listener's time.
MIN_VARIANT_DB = 1.0
#: Samples drawn from a word's distribution for the k-medoids variants.
VARIANT_SAMPLES = 96
#: Broad regions a difference is described in: (name, low Hz, high Hz).
REGIONS = (("bass", 60.0, 250.0), ("low mids", 250.0, 800.0), ("mids", 800.0, 2500.0),
           ("presence", 2500.0, 6000.0), ("air", 6000.0, 16000.0))


class VariantOption(BaseModel):
    """One alternative to the applied result.

    Attributes:
        letter: "B" or "C" ("A" is the applied result).
        label: what differs from A, e.g. "more low mids (+1.3 dB at 250–800 Hz)".
        word: the population word the variant is of; direction: the move's direction.
        offset_db: 40 floats, dB: the variant's offset from the population mean (word's "more" space).
        setting_db: 40 floats, dB: the variant's whole setting (population mean + offset), for the evidence.
        settings: the conversation settings that give it.
        audio: the rendered file ("" until :func:`render`).
    """

    letter: str
    label: str
    word: str
    direction: Direction
    offset_db: list[float]
    setting_db: list[float]
    settings: Settings
    audio: str = ""


class VariantSet(BaseModel):
    """The variants offered with a result: A (as applied: its setting) and the alternatives.

    ``kind``: "modes" (distinct ways people mean the word; a pick is preferred over all the others) or "probes"
    (a forced choice between B and C around A, :func:`knowledge.personal.probe_pair`; a pick of B or C is
    preferred over the other one only)."""

    word: str
    direction: Direction
    kind: Literal["modes", "probes"] = "modes"
    applied_db: list[float]
    options: list[VariantOption] = Field(default_factory=list)


def population_word(meaning: WordMeaning) -> str:
    """The word whose population distribution stands for ``meaning``: the crowd word it matched (not by a guess),
    else the word itself (a word the crowd data lacks gets a predicted distribution)."""
    crowd = meaning.crowd
    return crowd.word.casefold() if crowd is not None and crowd.via != "embedding" else meaning.word.casefold()


#: Known words a word's variants may come from: its nearest words by MiniLM cosine whose crowd curves correlate
#: with its own by at least SYNONYM_MIN_R (a near word with an opposite curve, "cold" for "warm", never counts).
SYNONYM_NEIGHBOURS = 8
SYNONYM_MIN_R = 0.5


@lru_cache(maxsize=512)
def _pooled(population, key: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(the word's own mean setting (40,), samples (VARIANT_SAMPLES, 40) of what people mean by it, the synonyms).

    A known word: a mixture of its population Gaussian (weight 1) and its sound-synonyms' (weight cosine × curve
    correlation; :data:`SYNONYM_NEIGHBOURS`, :data:`SYNONYM_MIN_R`), each :func:`knowledge.population.population_samples`.
    Another word: the model's predicted distribution (:meth:`knowledge.population.PopulationModel.distribution`).
    """
    from knowledge.population import population_samples

    rng = np.random.default_rng(0)
    if key not in population.words:
        dist = population.distribution(key, n=VARIANT_SAMPLES, rng=rng)
        return dist.mean_db, dist.samples_db, ()
    i = population.words.index(key)
    sims = population.embeddings @ population.embeddings[i]
    sims[i] = -np.inf
    near = np.argsort(-sims, kind="stable")[:SYNONYM_NEIGHBOURS]
    r = np.array([np.corrcoef(population.gains_db[i], population.gains_db[j])[0, 1] for j in near])
    keep = near[r >= SYNONYM_MIN_R]
    rows = np.r_[i, keep].astype(int)
    weights = np.r_[1.0, np.maximum(sims[keep], 0.0) * r[r >= SYNONYM_MIN_R]]
    picks = rows[rng.choice(len(rows), size=VARIANT_SAMPLES, p=weights / weights.sum())]
    samples = population_samples(population.gains_db[picks], population.agreement[picks], population.gains_db, rng)
    return population.gains_db[i].copy(), samples, tuple(population.words[j] for j in keep)


def prior_of(rt):
    """``word -> (mean (40,), covariance (40, 40))`` for the personal model: a descriptor as the store keeps it
    ("boomy", "warm") → the crowd word it stands for (:func:`population_word`) → that word's own mean setting and the
    spread of what people mean by it and its sound-synonyms (:func:`_pooled`; seeded, cached)."""
    def prior(word: str) -> tuple[np.ndarray, np.ndarray]:
        mean, samples, _ = _word_pooled(rt, word)
        return mean, np.cov(samples, rowvar=False)

    return prior


def personal_model(rt, user: str):
    """The person's :class:`knowledge.personal.PersonalModel` from their evidence, or None without evidence.

    Ratings of words the crowd data lacks ("boomy" and other expert terms) count too: each word's mean setting is
    the one :func:`prior_of` gives it (the crowd word it stands for, or the predicted distribution's mean)."""
    from knowledge.personal import PersonalModel

    prior = prior_of(rt)
    evidence = rt.prefs.evidence(user, curve=lambda word: prior(word)[0])
    return PersonalModel.fit(evidence, prior) if evidence else None


def personalise(rt, user: str, move: ToneMove) -> ToneMove:
    """``move`` with the person's offset for its word (and the sentence that explains it); unchanged when they have
    no evidence yet or their offset is below 0.05 dB everywhere."""
    model = personal_model(rt, user)
    if model is None:
        return move
    word = move.descriptor
    offset = np.asarray(model.offset(word), dtype=np.float64)
    if float(np.max(np.abs(offset))) < 0.05:
        return move
    why = model.explain(word)
    return move.model_copy(update={"offset_db": [round(float(v), 3) for v in offset],
                                   "personal": why or "from your earlier picks and ratings"})


@lru_cache(maxsize=1)
def _band_responses() -> np.ndarray:
    """(40, 40): dB response at each band centre (rows) of a +1 dB peaking filter at each band (columns), 48 kHz."""
    return np.stack([frequency_response_db([Filter(type="peaking", frequency_hz=float(f), gain_db=1.0, q=AUDEALIZE_Q)],
                                           AUDEALIZE_FREQS_HZ, 48000) for f in AUDEALIZE_FREQS_HZ], axis=1)


def offset_filters(offset_db: list[float] | np.ndarray, scale: float) -> list[Filter]:
    """An offset realised on Audealize's 40 peaking bands (Q 4.31): the band gains whose summed response meets
    ``scale × offset_db`` at the band centres (regularised least squares; neighbouring Q 4.31 bands overlap, so
    the gains are not the offset itself), each clipped to ±12 dB; bands under 0.05 dB are left out.

    Args:
        offset_db: 40 floats, dB at AUDEALIZE_FREQS_HZ.
        scale: × the offset (the move's amount, negative for "less").
    Returns:
        RBJ peaking filters. Source: Audealize (Seetharaman & Pardo 2016) bands; RBJ cookbook filters.
    """
    target = scale * np.asarray(offset_db, dtype=np.float64)
    m = _band_responses()
    gains = np.linalg.solve(m.T @ m + 1e-3 * np.eye(len(m)), m.T @ target)
    gains = np.clip(gains, -MAX_GAIN_DB, MAX_GAIN_DB)
    return [Filter(type="peaking", frequency_hz=float(f), gain_db=float(g), q=AUDEALIZE_Q)
            for f, g in zip(AUDEALIZE_FREQS_HZ, gains) if abs(g) >= 0.05]


def describe_difference(diff_db: np.ndarray, min_db: float = 0.4) -> str:
    """What a 40-band difference does in broad regions: "more low mids (+1.3 dB at 250–800 Hz), less air (−0.8 dB
    at 6–16 kHz)", the two largest moves of at least ``min_db``; "about the same" when none is."""
    moves = []
    for name, lo, hi in REGIONS:
        inside = (AUDEALIZE_FREQS_HZ >= lo) & (AUDEALIZE_FREQS_HZ < hi)
        moves.append((float(np.mean(diff_db[inside])), name, lo, hi))
    moves = sorted((m for m in moves if abs(m[0]) >= min_db), key=lambda m: -abs(m[0]))[:2]
    if not moves:
        return "about the same"
    return ", ".join(f"{'more' if v > 0 else 'less'} {name} ({v:+.1f} dB at {_hz(lo)}–{_hz(hi)})".replace("-", "−")
                     for v, name, lo, hi in moves)


def _hz(f: float) -> str:
    return f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"


def _word_pooled(rt, word: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """:func:`_pooled` for a descriptor as the store keeps it ("boomy", "warm"): of the crowd word it stands for."""
    return _pooled(rt.population, population_word(rt.words.lookup(word)))


def _mode_settings(rt, word: str) -> list[np.ndarray]:
    """The k-medoids modes (40,) dB of what people mean by ``word`` (:func:`_word_pooled`), largest share first."""
    from knowledge.population import WordDistribution, variants

    samples = _word_pooled(rt, word)[1]
    return [v.setting_db for v in variants(WordDistribution(word, "offer", samples), k=3, min_difference_db=0.0)]


def _probe_settings(model, word: str, applied: np.ndarray) -> list[np.ndarray]:
    """The forced-choice pair :func:`knowledge.personal.probe_pair` around ``applied`` from the person's posterior."""
    from knowledge.personal import probe_pair

    return list(probe_pair(model.sample(word, VARIANT_SAMPLES, np.random.default_rng(0)), applied))


def offer(rt, user: str, settings: Settings) -> VariantSet | None:
    """Alternatives B and C to the applied result A for its first whole-mix tone word; None when there is none.

    - A person with no evidence yet gets the distinct ways people mean the word (``kind="modes"``): the k-medoids
      modes of :func:`_pooled` that move some broad region (REGIONS) at least MIN_VARIANT_DB from A, the two largest.
    - A person the model has evidence for gets a forced choice that teaches it most (``kind="probes"``):
      A ± :data:`knowledge.personal.PROBE_STEP_DB` along the direction their taste is least known in
      (:func:`knowledge.personal.probe_pair`); a pick of B is evidence for B over C (the question asked).
    """
    from knowledge.population import audibly_different

    if not settings.adjustments:
        return None
    move = settings.adjustments[0]
    mean = _word_pooled(rt, move.descriptor)[0]
    applied = mean + np.asarray(move.offset_db or np.zeros(len(mean)))
    model = personal_model(rt, user)
    kind = "probes" if model is not None else "modes"
    found = audibly_different(_probe_settings(model, move.descriptor, applied) if model is not None
                              else _mode_settings(rt, move.descriptor), applied, MIN_VARIANT_DB)
    options = [_option(settings, move, mean, applied, v, letter) for v, letter in zip(found[:2], LETTERS[1:])]
    if not options or (kind == "probes" and len(options) < 2):
        return None
    return VariantSet(word=move.descriptor, direction=move.direction, kind=kind, applied_db=[float(x) for x in applied],
                      options=options)


def _option(settings: Settings, move: ToneMove, mean: np.ndarray, applied: np.ndarray, setting: np.ndarray,
            letter: str) -> VariantOption:
    """One variant: ``setting`` (40,) dB of the word's "more" space, labelled by what differs from ``applied``."""
    sign = 1.0 if move.direction == "more" else -1.0
    label = describe_difference(sign * (setting - applied))
    moved = move.model_copy(update={"offset_db": [round(float(x), 3) for x in setting - mean],
                                    "variant": f"{letter}: {label}"})
    return VariantOption(letter=letter, label=label, word=move.descriptor, direction=move.direction,
                         offset_db=moved.offset_db, setting_db=[float(x) for x in setting],
                         settings=settings.model_copy(update={"adjustments": [moved, *settings.adjustments[1:]]}))


def offer_line(offered: VariantSet) -> str:
    """The reply's line offering the variants: "Other ways people mean "warm" (same loudness): B — …; C — …. Say …",
    or for a forced choice (``kind="probes"``) "Which is closer to what you mean by "warm": B — … or C — …? …"."""
    options = "; ".join(f"{o.letter} — {o.label}" for o in offered.options)
    ordinals = " or ".join(f"\"the {('second', 'third')[i]} one\"" for i in range(len(offered.options)))
    if offered.kind == "probes":
        pair = " or ".join(f"{o.letter} — {o.label}" for o in offered.options)
        return (f"To learn your \"{offered.word}\": which is closer to what you mean, {pair}? (Same loudness as A, "
                f"this result.) Say {ordinals}, or \"keep A\" if neither.")
    return (f"Other ways people mean \"{offered.word}\" (same loudness, to compare with A, this result): {options}. "
            f"Say {ordinals} to switch, or \"keep A\"; your pick teaches me your taste.")


def variant_path(audio: str, letter: str) -> str:
    """Where variant ``letter`` of the result ``audio`` goes: ``OUT-B.wav`` beside it."""
    path = Path(audio)
    return str(path.with_name(f"{path.stem}-{letter}{path.suffix}"))


_PICK = re.compile(
    r"^(?:(?:i(?:'d| would)? (?:prefer|like|take|want)|i'll take|let'?s (?:use|take|go with)|(?:please )?(?:use|take|keep|"
    r"pick|choose|select|go with|play|give me|i like))\s+)?(?:the\s+)?(?:(?P<ordinal>first|second|third|last|1st|2nd|3rd)"
    r"(?:\s+(?:one|variant|version|option|take))?|(?:variant|version|option|take|number)\s+(?P<letter>[abc123])"
    r"|(?P<bare>[bc]))(?:\s+(?:one|please|variant|version|is better|better|sounds better|is best|best))*\s*[.!]*$")
_ORDINAL = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1}


def pick_of(text: str, offered: int) -> int | None:
    """Which variant a turn picks: 0 = A (as applied), 1 = B, 2 = C; None when it picks none of the ``offered``
    (count including A) ("the second one", "variant B", "use c", "keep A", "I prefer the first one", "the last one",
    "the second one is better")."""
    norm = " ".join(re.sub(r"[,;:]", " ", text.casefold()).split())
    norm = re.sub(r"^(?:keep|stay with|stick with)\s+(?:variant\s+|version\s+)?a\b", "variant a", norm)
    m = _PICK.match(norm)
    if m is None:
        return None
    if m["ordinal"]:
        index = _ORDINAL[m["ordinal"]] if m["ordinal"] != "last" else offered - 1
    else:
        key = (m["letter"] or m["bare"]).lower()
        index = "abc".index(key) if key in "abc" else int(key) - 1
    return index if index < offered else None
