"""knowledge.words: the expert vocabulary beside the crowd prior, and amounts calibrated to audible moves.

Measured the way the phrasing evaluation measures (eval.words.measured_change_db): a word's main region
against the 100 Hz–16 kHz mean, on pink noise and on a real track, for every term of the vocabulary.
"""

from __future__ import annotations

import numpy as np
import pytest

from eval.words import measured_change_db
from knowledge.descriptors import DescriptorPrior
from knowledge.expert import ExpertVocabulary, Region
from knowledge.words import MIN_CROWD, TARGET_DB, WordEQ, trimmed
from tools.eq import MAX_GAIN_DB, apply_eq

RATE = 44100


@pytest.fixture(scope="module")
def words(data_dir):
    return WordEQ(DescriptorPrior.load(), ExpertVocabulary.load())


@pytest.fixture(scope="module")
def pink():
    rng = np.random.default_rng(0)
    white = np.fft.rfft(rng.standard_normal(10 * RATE))
    f = np.fft.rfftfreq(10 * RATE, 1 / RATE)
    x = np.fft.irfft(white / np.sqrt(np.maximum(f, 20.0)), 10 * RATE)
    return np.stack([x, x]).astype(np.float32) / np.abs(x).max() * 0.25


@pytest.fixture(scope="module")
def music(vibe_ace):
    from tools.audio_io import load_audio

    return load_audio(vibe_ace).samples[:, 20 * RATE:30 * RATE]


def test_a_low_contributor_crowd_word_never_overrides_an_expert_term(words):
    m = words.lookup("boomy")
    assert m.source == "expert" and m.crowd is not None and m.crowd.num < MIN_CROWD
    assert "contributors" in m.why and "expert term" in m.why
    assert (m.main.low_hz, m.main.high_hz, m.main.sign) == (60.0, 250.0, 1)


def test_an_agreeing_crowd_word_shapes_the_term_and_an_unfocused_one_does_not(words):
    warm = words.lookup("warm")
    assert warm.source == "expert+crowd" and warm.crowd.num >= MIN_CROWD and "shaped by the crowd word" in warm.why
    for term in words.vocabulary.terms():
        m = words.lookup(term.term)
        if m.source == "expert" and m.crowd is not None and m.crowd.num >= MIN_CROWD:
            assert "mostly moves other bands" in m.why, (term.term, m.why)


def test_forms_inflections_and_translations_find_the_term(words):
    for said, term in [("boominess", "boomy"), ("muddier", "muddy"), ("chaud", "warm"), ("scharf", "harsh"),
                       ("low end", "low end"), ("sibilance", "sibilant")]:
        assert words.lookup(said).word == term, said
    assert words.vocabulary.language("chaud") == "fr"


def _moves(words, audio, amount, direction="more"):
    for term in words.vocabulary.terms():
        meaning = words.lookup(term.term)
        filters = words.filters(meaning, direction, amount)
        out = apply_eq(audio, RATE, filters)
        capped = any(abs(f.gain_db) >= MAX_GAIN_DB - 1e-6 for f in filters)
        sign = (1 if direction == "more" else -1) * meaning.main.sign
        yield term.term, sign * measured_change_db(audio, out, RATE, (meaning.main.low_hz, meaning.main.high_hz)), capped


@pytest.mark.parametrize("amount, low, high", [(1.0, 2.0, 4.0), (0.5, 1.0, 2.0), (2.0, 5.0, 6.5)])
def test_every_word_moves_its_region_audibly_on_pink_noise(words, pink, amount, low, high):
    """Default 2–4 dB, "a little" 1–2 dB, "a lot" 5–6 dB (unless a filter hits the ±12 dB hearing cap)."""
    off = [(t, round(v, 2)) for t, v, capped in _moves(words, pink, amount, "less" if amount == 2.0 else "more")
           if not (low <= v <= high or (capped and v >= low - 1.5))]
    print(f"\namount {amount}: off-range terms {off}")
    assert not off


def test_every_word_moves_its_region_2_to_4_db_on_a_real_track(words, music):
    moves = {t: v for t, v, _ in _moves(words, music, 1.0)}
    off = {t: round(v, 2) for t, v in moves.items() if not 2.0 <= v <= 4.5}
    print(f"\nVibe Ace: median {np.median(list(moves.values())):.2f} dB over {len(moves)} terms; off {off}")
    assert len(off) <= 0.05 * len(moves), off


def test_warm_default_is_audible_where_the_crowd_default_was_not(words, music):
    """Issue: "warmer" at the crowd's default moved 100–400 Hz by +0.3…0.4 dB. Now TARGET_DB."""
    m = words.lookup("warm")
    out = apply_eq(music, RATE, words.filters(m, "more", 1.0))
    assert measured_change_db(music, out, RATE, (100.0, 400.0)) >= 0.8 * TARGET_DB


def test_trimmed_keeps_the_part_outside():
    warm = Region(100.0, 400.0, 1)
    assert trimmed(warm, (Region(150.0, 400.0, 1),)) == Region(100.0, 150.0, 1)
    assert trimmed(warm, (Region(1000.0, 2000.0, 1),)) is warm
    assert trimmed(Region(80.0, 250.0, 1), (Region(60.0, 250.0, 1),)) is None
