"""knowledge.descriptors: Audealize word → EQ prior on the shared eqdescriptors.json."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.config import cache_dir
from knowledge.descriptors import AUDEALIZE_FREQS_HZ, AUDEALIZE_Q, DescriptorPrior, normalised_curve


@pytest.fixture(scope="module")
def prior(shared_data, embedder):
    return DescriptorPrior.load(shared_data / "prefs" / "audealize" / "eqdescriptors.json", embedder=embedder)


def band_mean(curve, lo_hz, hi_hz):
    return curve[(AUDEALIZE_FREQS_HZ >= lo_hz) & (AUDEALIZE_FREQS_HZ <= hi_hz)].mean()


def rest_mean(curve, lo_hz, hi_hz):
    return curve[~((AUDEALIZE_FREQS_HZ >= lo_hz) & (AUDEALIZE_FREQS_HZ <= hi_hz))].mean()


def test_constants_match_audealize():
    assert AUDEALIZE_FREQS_HZ.shape == (40,) and AUDEALIZE_FREQS_HZ[0] == 20 and AUDEALIZE_FREQS_HZ[-1] == 19682
    assert np.all(np.diff(AUDEALIZE_FREQS_HZ) > 0)
    assert AUDEALIZE_Q == 4.31


def test_vocabulary_has_english_and_spanish(prior):
    words = prior.words()
    assert len(words) == 394
    spanish = prior.lookup("claro")
    assert spanish.exact and spanish.lang == "Español"
    twin = prior.lookup("brillante")  # a Spanish word whose English twin more people gave
    assert (twin.word, twin.via, twin.lang) == ("bright", "translation", "English")
    assert prior.lookup("caliente").lang == "Español"


def test_curves_are_normalised_to_minus_one_plus_one(prior):
    for word in ("harsh", "warm", "bright", "muddy", "tinny"):
        c = prior.lookup(word).curve
        assert c.shape == (40,) and c.min() == pytest.approx(-1.0) and c.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(normalised_curve([0.0] * 40), np.zeros(40))
    np.testing.assert_allclose(normalised_curve([0.0, 1.0, 3.0, -1.0]), [-0.5, 0.0, 1.0, -1.0])


def test_harsh_warm_bright_have_the_expected_shape(prior):
    harsh = prior.lookup("harsh").curve
    assert band_mean(harsh, 2000, 5000) > rest_mean(harsh, 2000, 5000) + 0.5
    warm = prior.lookup("warm").curve
    assert band_mean(warm, 0, 300) > 0.5 and band_mean(warm, 0, 300) > rest_mean(warm, 0, 300) + 0.8
    bright = prior.lookup("bright").curve  # peak at 4.4 kHz, positive up to ~11 kHz, bass cut
    assert band_mean(bright, 4000, 10000) > 0.5 and bright[AUDEALIZE_FREQS_HZ > 4000].min() > -0.2
    assert band_mean(bright, 4000, 10000) > band_mean(bright, 0, 300) + 1.0


@pytest.mark.parametrize(
    ("asked", "word", "via"),
    [
        ("harsh", "harsh", "exact"),
        ("too harsh", "harsh", "exact"),
        ("harshness", "harsh", "rule"),
        ("brighter", "bright", "rule"),
        ("warmer", "warm", "rule"),
        ("muddier", "muddy", "rule"),
        ("muddiness", "muddy", "rule"),
        ("bass", "bassy", "rule"),
        ("more bass", "bassy", "rule"),
        ("harsch", "harsh", "spelling"),
        ("warmth", "warm", "rule"),
        ("cálido", "warm", "translation"),
    ],
)
def test_lookup_normalises_and_falls_back(prior, asked, word, via):
    m = prior.lookup(asked)
    assert (m.word, m.via, m.exact) == (word, via, via == "exact")
    assert 0.0 < m.score <= 1.0 and m.query == asked


def test_unknown_word_gets_nearest_by_embedding(prior):
    m = prior.lookup("crystalline")
    assert m.via == "embedding" and m.word in prior.words()
    with pytest.raises(ValueError):
        prior.lookup("   ")


def test_gains_follow_audealize_formula(prior):
    m = prior.lookup("harsh")
    np.testing.assert_allclose(prior.gains_db(m, 1.0), 5.0 * m.curve)
    np.testing.assert_allclose(prior.gains_db(m, -0.6), -3.0 * m.curve)
    less = prior.gains_db(m, -prior.default_amount(m))
    assert band_mean(less, 2000, 5000) < rest_mean(less, 2000, 5000)  # "less harsh" cuts the 2–5 kHz region


def test_default_amount_is_audible_but_moderate(prior):
    for word in ("harsh", "warm", "bright", "muddy", "bassy", "tinny"):
        m = prior.lookup(word)
        peak = np.abs(prior.gains_db(m, prior.default_amount(m))).max()
        assert 2.0 <= peak <= 3.0, (word, peak)
    assert prior.default_amount(prior.lookup("warm")) > prior.default_amount(prior.lookup("muddy"))  # 122 vs 3 votes


def test_word_index_cached_by_file_hash(prior):
    prior.lookup("glassy")  # forces the embedding index
    assert list(cache_dir().glob("descriptors-*.faiss"))
