"""eval.text2eq: the split, the population model, the 2-D projection, and measured method ranking."""

from __future__ import annotations

import numpy as np
import pytest

from eval import text2eq
from knowledge.descriptors import AUDEALIZE_FREQS_HZ


@pytest.fixture(scope="module")
def entries(data_dir) -> list[dict]:
    return text2eq.load_english(data_dir / "prefs" / "audealize" / "eqdescriptors.json")


@pytest.fixture(scope="module")
def result(entries, embedder) -> dict:
    return text2eq.evaluate(seed=0, holdout=0.2, embedder=embedder)


def test_split_is_deterministic_disjoint_and_seeded(entries):
    words = [e["word"].casefold() for e in entries]
    train, held = text2eq.split_words(words, 0.2, seed=0)
    assert (train, held) == text2eq.split_words(words, 0.2, seed=0)
    assert len(words) == 294 and len(held) == 59 and len(train) == 235
    assert set(train).isdisjoint(held) and set(train) | set(held) == set(words)
    assert set(text2eq.split_words(words, 0.2, seed=1)[1]) != set(held)
    with pytest.raises(ValueError):
        text2eq.split_words(words, 1.0)


def test_held_out_words_are_never_retrieved(entries, embedder, result):
    by_word = {e["word"].casefold(): e for e in entries}
    train = text2eq.TrainSet.build([by_word[w] for w in result["train_words"]], embedder)
    held = set(result["heldout_words"])
    assert held.isdisjoint(train.prior.words()) and held.isdisjoint(train.words)
    for word in result["heldout_words"][:15]:
        match = train.prior.lookup(word)
        assert not match.exact and match.word.casefold() != word
        rows, weights = train.neighbours(word)
        assert held.isdisjoint(train.words[r] for r in rows)
        assert len(set(rows.tolist())) == text2eq.K_NEIGHBOURS and weights.sum() == pytest.approx(1.0)
    model = text2eq.PopulationModel.build([by_word[w] for w in result["train_words"]], embedder)
    assert held.isdisjoint(model.words)
    assert all(held.isdisjoint(c.word for c in model.distribution(w).components) for w in result["heldout_words"][:15])


def test_distances_are_finite_and_non_negative(result):
    assert result["n_heldout"] == len(result["heldout_words"]) == 59
    for method in text2eq.METHODS:
        for metric in text2eq.METRICS:
            values = np.array(result["methods"][method][metric]["per_word"])
            assert values.shape == (59,) and np.isfinite(values).all() and (values >= 0).all()
    for key in ("nearest_correlation", "product_correlation"):
        r = np.array(result[key])
        assert r.shape == (59,) and (np.abs(r) <= 1).all()


def test_product_beats_static_preset_and_random_and_population_resample_beats_everything(result):
    """Seed 0 (measured, see docs/EVALUATION.md): the antonym-aware product is closer to the population than
    the static preset and random in the 2-D space and its KDE variant, and than random in 40 bands."""
    methods = result["methods"]
    for metric in text2eq.METRICS:
        assert methods[text2eq.PRODUCT][metric]["mean"] < methods["random"][metric]["mean"]
        floor = methods["population resample (floor)"][metric]["mean"]
        assert all(floor < methods[m][metric]["mean"] for m in text2eq.METHODS[1:])
    for metric in ("w1_xy_db", "kde_w1_xy_db"):
        assert methods[text2eq.PRODUCT][metric]["mean"] < methods["static preset"][metric]["mean"]


@pytest.mark.parametrize("regression", ["sign flip", "3x strength"])
def test_planted_regressions_are_detected(result, embedder, monkeypatch, regression):
    """A planted bug in the product's curves must read worse than the static preset and than the
    honest product in every metric (flipping the samples flips the mean curve too)."""
    honest = text2eq.predict_product
    factor = -1.0 if regression == "sign flip" else 3.0
    monkeypatch.setattr(text2eq, "predict_product", lambda *a, **k: factor * honest(*a, **k))
    broken = text2eq.evaluate(seed=0, holdout=0.2, embedder=embedder,
                              methods=(text2eq.PRODUCT, "static preset"))["methods"]
    for metric in text2eq.METRICS:
        bad = np.array(broken[text2eq.PRODUCT][metric]["per_word"])
        good = np.array(result["methods"][text2eq.PRODUCT][metric]["per_word"])
        assert bad.mean() > broken["static preset"][metric]["mean"]
        assert bad.mean() > good.mean() + 0.1


def test_smile_tilt_recovers_a_hand_built_curve():
    t = np.log2(AUDEALIZE_FREQS_HZ / 1000) / 5
    curve = 1.5 + 2.0 * (t**2 - np.mean(t**2)) - 3.0 * t  # level 1.5, smile +2 dB, tilt -3 dB
    assert text2eq.smile_tilt_xy(curve) == pytest.approx(np.array([[2.0, -3.0]]), abs=1e-9)
    assert text2eq.smile_tilt_xy(4 * curve) == pytest.approx(np.array([[6.0, -6.0]]), abs=1e-9)  # clipped


def test_population_spread_follows_agreement(entries):
    gains = text2eq.band_gains(entries)
    around = np.repeat(gains[:1], 4000, axis=0)
    rng = np.random.default_rng(0)
    assert text2eq.population_samples(around, 1.0, gains, rng) == pytest.approx(around)  # full agreement: no spread
    wide = text2eq.population_samples(around, 0.5, gains, rng)
    narrow = text2eq.population_samples(around, 0.75, gains, rng)
    assert wide.mean(axis=0) == pytest.approx(gains[0], abs=0.1)
    assert np.median(wide.std(axis=0) / narrow.std(axis=0)) == pytest.approx(2.0, abs=0.1)
    assert wide.std(axis=0) == pytest.approx(0.5 * gains.std(axis=0, ddof=1), rel=0.1)


def test_write_results_replaces_only_its_block(tmp_path):
    out = tmp_path / "EVALUATION.md"
    out.write_text("# Evaluation\n\nintro\n")
    text2eq.write_results("table one", out)
    text2eq.write_results("table two", out)
    text = out.read_text()
    assert text.startswith("# Evaluation\n\nintro\n") and "table two" in text and "table one" not in text
    assert text.count("<!-- text2eq:begin -->") == 1
