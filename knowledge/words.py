"""What a tone word means as EQ: the expert vocabulary beside the crowd prior, and calibrated amounts.

:meth:`WordEQ.lookup` decides which source gives a word its meaning:

- an **expert term** ("boomy", "honky", "low mids": :mod:`knowledge.expert`) fixes the region(s) and
  the direction. The crowd curve of the same word gives the *shape* (its 40-band detail) only when
  it has at least :data:`MIN_CROWD` contributors and agrees with the expert: its move in the main
  region goes the expert's way and is at least :data:`MIN_FOCUS` of its largest move; a
  low-contributor, unfocused or contradicting crowd word never overrides an expert term;
- a word only the crowd knows uses the crowd curve; its main region is where the curve peaks;
- a word neither knows is matched to the nearest crowd word by embedding (the dialogue asks about
  a guess below ``EMBEDDING_CONFIDENT``).

:meth:`WordEQ.filters` realises a meaning as RBJ filters whose total response moves the word's main
region by ``TARGET_DB × amount`` dB relative to the 100 Hz–16 kHz mean (amount 1 = the default,
audible move; 0.5 "a little", 2 "a lot"), every filter capped at ±12 dB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from knowledge.descriptors import AUDEALIZE_FREQS_HZ, AUDEALIZE_Q, DescriptorMatch, DescriptorPrior
from knowledge.expert import ExpertTerm, ExpertVocabulary, Region
from knowledge.fr_store import FR_GRID_HZ
from tools.eq import MAX_GAIN_DB, Filter, frequency_response_db

#: Contributors a crowd word needs to give an expert term its shape.
MIN_CROWD = 8
#: How much of a crowd curve's largest deviation its move in the expert's main region must be (same sign) for
#: the curve to shape the term: a curve that mostly moves elsewhere would move elsewhere more than the word says.
MIN_FOCUS = 0.5
#: A word's default move of its main region, dB, relative to the mean over REFERENCE_HZ.
TARGET_DB = 3.0
REFERENCE_HZ = (100.0, 16000.0)
#: Sample rate the filters are calibrated at (the response below 16 kHz hardly depends on it).
CALIBRATION_RATE = 48000
#: Audealize's amount scale → this one: the crowd's default amount 0.5 is the default move here.
AUDEALIZE_DEFAULT_AMOUNT = 0.5
Source = Literal["expert", "expert+crowd", "crowd"]


@dataclass
class WordMeaning:
    """What one tone word means.

    Attributes:
        asked: the word as said.
        word: the canonical word (the expert term, else the crowd word).
        source: "expert" (expert regions), "expert+crowd" (expert direction, crowd shape) or "crowd".
        why: which source decided and why, in words (for the reply and the trace).
        regions: the regions the word is about, main first, with the sign of energy the word means.
        expert: the expert term, or None.
        crowd: the crowd word matched, or None.
        score: match confidence 0 … 1 (1 for an expert term).
        via: how it matched: expert | exact | translation | jargon | rule | spelling | embedding.
    """

    asked: str
    word: str
    source: Source
    why: str
    regions: tuple[Region, ...]
    expert: ExpertTerm | None
    crowd: DescriptorMatch | None
    score: float
    via: str

    @property
    def main(self) -> Region:
        return self.regions[0]


def region_level_db(curve_db: np.ndarray, region: Region) -> float:
    """Mean of a curve (dB on FR_GRID_HZ) over ``region`` minus its mean over REFERENCE_HZ."""
    inside = (FR_GRID_HZ >= region.low_hz) & (FR_GRID_HZ < region.high_hz)
    ref = (FR_GRID_HZ >= REFERENCE_HZ[0]) & (FR_GRID_HZ < REFERENCE_HZ[1])
    return float(np.mean(curve_db[inside]) - np.mean(curve_db[ref]))


def _crowd_curve_db(match: DescriptorMatch) -> np.ndarray:
    """The crowd curve (normalised, [-1, 1] on Audealize's 40 bands) on FR_GRID_HZ."""
    return np.interp(np.log(FR_GRID_HZ), np.log(AUDEALIZE_FREQS_HZ), match.curve)


def _focus(match: DescriptorMatch, region: Region) -> float:
    """The crowd curve's move in ``region`` (toward the region's sign, relative to its 100 Hz–16 kHz mean) as a
    fraction of its largest deviation from that mean over 20 Hz–20 kHz; negative when it goes the other way."""
    curve = _crowd_curve_db(match)
    ref = (FR_GRID_HZ >= REFERENCE_HZ[0]) & (FR_GRID_HZ < REFERENCE_HZ[1])
    largest = float(np.max(np.abs(curve - np.mean(curve[ref]))))
    return region.sign * region_level_db(curve, region) / largest if largest > 0 else 0.0


def _crowd_region(match: DescriptorMatch) -> Region:
    """Where a crowd curve peaks: the contiguous bands within half of its maximum, around the maximum."""
    curve = match.curve
    peak = int(np.argmax(curve))
    lo = hi = peak
    while lo > 0 and curve[lo - 1] >= 0.5 * curve[peak]:
        lo -= 1
    while hi < len(curve) - 1 and curve[hi + 1] >= 0.5 * curve[peak]:
        hi += 1
    f = AUDEALIZE_FREQS_HZ
    low = f[lo] / 2 ** (1 / 6) if lo == hi else f[lo]
    high = f[hi] * 2 ** (1 / 6) if lo == hi else f[hi]
    return Region(float(max(low, 20.0)), float(min(high, 20000.0)), 1)


class WordEQ:
    """Tone words → meanings → calibrated filters (see the module doc).

    Args:
        prior: the crowd word→EQ prior (Audealize).
        vocabulary: the expert vocabulary.
    """

    def __init__(self, prior: DescriptorPrior, vocabulary: ExpertVocabulary):
        self.prior = prior
        self.vocabulary = vocabulary

    def lookup(self, word: str) -> WordMeaning:
        """The meaning of ``word`` (see the module doc). Raises ValueError for an empty word."""
        term = self.vocabulary.lookup(word)
        crowd_word = term.term if term is not None else word
        crowd = self.prior.lookup(crowd_word)
        if term is None:
            return WordMeaning(word, crowd.word, "crowd", self._crowd_why(crowd), (_crowd_region(crowd),), None, crowd,
                               crowd.score, crowd.via)
        exact_crowd = crowd if crowd.via != "embedding" else None
        agrees = exact_crowd is not None and _focus(exact_crowd, term.main) >= MIN_FOCUS
        if exact_crowd is not None and exact_crowd.num >= MIN_CROWD and agrees:
            why = (f"expert term \"{term.term}\" ({term.main.label()}; {term.cites()}), shaped by the crowd word "
                   f"\"{exact_crowd.word}\" ({exact_crowd.num} contributors, agreeing)")
            return WordMeaning(word, term.term, "expert+crowd", why, term.regions, term, exact_crowd, 1.0, "expert")
        return WordMeaning(word, term.term, "expert", self._expert_why(term, exact_crowd, agrees), term.regions, term,
                           exact_crowd, 1.0, "expert")

    @staticmethod
    def _expert_why(term: ExpertTerm, crowd: DescriptorMatch | None, agrees: bool) -> str:
        why = f"expert term \"{term.term}\" ({term.main.label()}; {term.cites()})"
        if crowd is None:
            return why + "; the crowd data has no such word"
        if not agrees:
            return why + (f"; the crowd word \"{crowd.word}\" ({crowd.num} contributors) mostly moves other bands, "
                          "so it is not used")
        return why + f"; the crowd word \"{crowd.word}\" has only {crowd.num} contributors, too few to shape it"

    @staticmethod
    def _crowd_why(crowd: DescriptorMatch) -> str:
        return (f"crowd word \"{crowd.word}\" (Audealize, {crowd.num} contributors, agreement {crowd.agreement:.2f}); "
                "no expert term for it")

    def filters(self, meaning: WordMeaning, direction: str, amount: float, avoid: tuple[Region, ...] = ()) -> list[Filter]:
        """RBJ filters moving the meaning's main region by ``TARGET_DB × amount`` dB (toward the word for
        "more", away from it for "less"), relative to the 100 Hz–16 kHz mean; each gain capped at ±12 dB.

        Args:
            meaning: from :meth:`lookup`.
            direction: "more" or "less".
            amount: ≥ 0; 1 = the default move.
            avoid: regions to stay out of ("warmer but not muddy": the muddy region): the word's regions
                are trimmed to what lies outside them (the expert shape, see :func:`trimmed`); when nothing
                of the main region is left, the move is halved.
        """
        meaning, amount = _avoiding(meaning, amount, avoid)
        sign = 1.0 if direction == "more" else -1.0
        target = sign * meaning.main.sign * TARGET_DB * amount
        filters, level = _calibrated(self._base_filters(meaning, sign), meaning.main, target)
        if meaning.source == "expert+crowd" and abs(level - target) > 0.3 * max(1.0, abs(target) / TARGET_DB):
            # the crowd's shape cannot move the region that far inside the ±12 dB caps: the expert's shape can
            filters, level = _calibrated(self._base_filters(meaning, sign, expert_shape=True), meaning.main, target)
        return [f for f in filters if abs(f.gain_db) >= 0.05]

    @staticmethod
    def _base_filters(meaning: WordMeaning, sign: float, expert_shape: bool = False) -> list[Filter]:
        """Unit-strength filters of the meaning's shape: the crowd's 40 peaking bands, or one filter per region."""
        if meaning.source == "crowd" or (meaning.source == "expert+crowd" and not expert_shape):
            gains = sign * 3.0 * meaning.crowd.curve
            return [Filter(type="peaking", frequency_hz=float(f), gain_db=float(g), q=AUDEALIZE_Q)
                    for f, g in zip(AUDEALIZE_FREQS_HZ, gains)]
        return [_region_filter(r, sign * r.sign * 3.0) for r in meaning.regions]


def trimmed(region: Region, avoid: tuple[Region, ...]) -> Region | None:
    """The widest part of ``region`` outside every ``avoid`` region, if at least a third of an octave wide;
    ``region`` itself when nothing overlaps it; None when too little is left."""
    parts = [(region.low_hz, region.high_hz)]
    for a in avoid:
        parts = [piece for lo, hi in parts
                 for piece in ((lo, min(hi, a.low_hz)), (max(lo, a.high_hz), hi)) if piece[1] > piece[0]]
    if parts == [(region.low_hz, region.high_hz)]:
        return region
    lo, hi = max(parts, key=lambda p: np.log2(p[1] / p[0]), default=(1.0, 1.0))
    return Region(lo, hi, region.sign) if hi / lo >= 2 ** (1 / 3) else None


def _avoiding(meaning: WordMeaning, amount: float, avoid: tuple[Region, ...]) -> tuple[WordMeaning, float]:
    """The meaning with its regions trimmed out of ``avoid`` (expert shape), or halved when its main region
    lies inside them; unchanged when nothing overlaps."""
    if not avoid or trimmed(meaning.main, avoid) is meaning.main:
        return meaning, amount
    main = trimmed(meaning.main, avoid)
    if main is None:
        return meaning, amount * 0.5
    others = tuple(r for r in (trimmed(r, avoid) for r in meaning.regions[1:]) if r is not None)
    return WordMeaning(meaning.asked, meaning.word, "expert", meaning.why, (main, *others), meaning.expert,
                       meaning.crowd, meaning.score, meaning.via), amount


def _calibrated(filters: list[Filter], region: Region, target_db: float) -> tuple[list[Filter], float]:
    """The filters scaled so the region moves ``target_db`` (within the ±12 dB caps); (filters, level reached).

    RBJ responses are nearly linear in the gain, so a few rescalings converge.
    """
    level = 0.0
    for _ in range(4):
        level = region_level_db(frequency_response_db(filters, FR_GRID_HZ, CALIBRATION_RATE), region)
        if abs(level) < 1e-6 or abs(level - target_db) < 0.02:
            break
        filters = [f.model_copy(update={"gain_db": float(np.clip(f.gain_db * target_db / level, -MAX_GAIN_DB, MAX_GAIN_DB))})
                   for f in filters]
    return filters, level


def _region_filter(region: Region, gain_db: float) -> Filter:
    """A region as one filter: a low shelf from the bottom, a high shelf to the top, else a peaking filter
    at its geometric centre whose bandwidth is the region (Q = centre / width, 0.4 … 3)."""
    if region.low_hz <= 30.0:
        return Filter(type="low_shelf", frequency_hz=region.high_hz, gain_db=gain_db, q=0.7071)
    if region.high_hz >= 16000.0:
        return Filter(type="high_shelf", frequency_hz=region.low_hz, gain_db=gain_db, q=0.7071)
    q = float(np.clip(region.centre_hz / (region.high_hz - region.low_hz), 0.4, 3.0))
    return Filter(type="peaking", frequency_hz=region.centre_hz, gain_db=gain_db, q=q)
