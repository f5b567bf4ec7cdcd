"""knowledge.personal: the posterior moves toward picks and away from thumbs-down, the shared bias transfers,
no evidence is the population, and the typed evidence rejects malformed input (all on the real crowd data)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from knowledge.personal import PROBE_STEP_DB, Evidence, PersonalModel, probe_pair
from knowledge.population import band_gains, load_english


@pytest.fixture(scope="module")
def prior(data_dir):
    """The crowd population: word -> (curve, (1 − agreement)² · C), C = covariance of all English curves."""
    entries = load_english(data_dir / "prefs" / "audealize" / "eqdescriptors.json")
    gains = band_gains(entries)
    cov = np.cov(gains, rowvar=False)
    table = {e["word"].casefold(): (g, (1 - e["agreement"]) ** 2 * cov) for e, g in zip(entries, gains)}
    return lambda word: table[word]


def rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def top_direction(prior, word: str, sds: float) -> np.ndarray:
    """The word's mean moved ``sds`` prior standard deviations along its first principal direction (40,) dB."""
    mean, cov = prior(word)
    w, v = np.linalg.eigh(cov)
    return mean + sds * np.sqrt(w[-1]) * v[:, -1]


def pick(word, chosen, *rejected) -> Evidence:
    return Evidence(kind="pick", word=word, direction="more", setting_db=list(chosen),
                    rejected_db=[list(r) for r in rejected])


def test_no_evidence_is_the_population(prior):
    model = PersonalModel.fit([], prior)
    mean, cov = prior("warm")
    assert np.allclose(model.setting("warm"), mean) and np.allclose(model.offset("warm"), 0.0)
    samples = model.sample("warm", 4000, np.random.default_rng(0))
    assert samples.shape == (4000, 40)
    assert np.abs(np.cov(samples, rowvar=False) - cov).max() < 0.1 * np.abs(cov).max()
    assert model.explain("warm") is None


def test_posterior_moves_toward_picked_variants(prior):
    mean = prior("warm")[0]
    liked, other = top_direction(prior, "warm", 2.0), top_direction(prior, "warm", -2.0)
    before = rms(mean, liked)
    after_one = rms(PersonalModel.fit([pick("warm", liked, other, mean)], prior).setting("warm"), liked)
    model = PersonalModel.fit([pick("warm", liked, other, mean)] * 4, prior)
    after_four = rms(model.setting("warm"), liked)
    assert after_four < after_one < before
    assert after_four < 0.75 * before  # four consistent picks remove over a quarter of the distance
    # the posterior narrows around what was picked
    spread = np.sqrt(np.mean(np.var(model.sample("warm", 2000, np.random.default_rng(1)), axis=0)))
    prior_spread = np.sqrt(np.mean(np.diag(prior("warm")[1])))
    assert spread < prior_spread


def test_thumbs_down_moves_away_and_thumbs_up_toward(prior):
    mean = prior("soft")[0]
    heard = top_direction(prior, "soft", 1.5)
    down = PersonalModel.fit([Evidence(kind="rating", word="soft", direction="more", setting_db=list(heard),
                                       rating=-1)] * 3, prior)
    up = PersonalModel.fit([Evidence(kind="rating", word="soft", direction="less", setting_db=list(heard),
                                     rating=1)] * 3, prior)
    assert rms(down.setting("soft"), heard) > rms(mean, heard) + 0.02
    assert rms(up.setting("soft"), heard) < rms(mean, heard) - 0.02


def test_shared_bias_transfers_to_an_unseen_word(prior):
    """Picks that push "warm" along C's first principal direction move "cold" (never seen) the same way;
    without a shared part (ρ = 0) nothing transfers."""
    liked = top_direction(prior, "warm", 2.0)
    evidence = [pick("warm", liked, top_direction(prior, "warm", -2.0), prior("warm")[0])] * 4
    shared = PersonalModel.fit(evidence, prior)
    alone = PersonalModel.fit(evidence, prior, shared=0.0)
    seen, unseen = shared.offset("warm"), shared.offset("cold")
    cosine = seen @ unseen / (np.linalg.norm(seen) * np.linalg.norm(unseen))
    assert cosine > 0.95
    ratio = np.linalg.norm(unseen) / np.linalg.norm(seen)
    spread_ratio = (1 - 0.725) / (1 - 0.815)  # cold's and warm's crowd spreads (agreement 0.725 / 0.815)
    assert 0.2 * spread_ratio < ratio < 0.8 * spread_ratio  # about ρ of warm's standardised shift
    assert np.abs(alone.offset("cold")).max() < 1e-9
    # the transfer makes "cold" closer to where a listener with that bias would be
    target_cold = prior("cold")[0] + unseen / np.linalg.norm(unseen) * np.linalg.norm(seen) * spread_ratio
    assert rms(shared.setting("cold"), target_cold) < rms(prior("cold")[0], target_cold)


def test_explain_names_the_largest_offset(prior):
    liked = top_direction(prior, "loud", 3.0)
    model = PersonalModel.fit([pick("loud", liked, top_direction(prior, "loud", -3.0))] * 8, prior)
    text = model.explain("loud")
    off = model.offset("loud")
    assert np.abs(off).max() >= 0.5 and text is not None
    assert text.startswith('you like ') and "dB around" in text and f"{off[np.argmax(np.abs(off))]:+.1f} dB" in text


def test_evidence_is_validated():
    flat = [0.0] * 40
    with pytest.raises(ValidationError):
        Evidence(kind="rating", word="warm", direction="more", setting_db=flat, rating=0)
    with pytest.raises(ValidationError):
        Evidence(kind="pick", word="warm", direction="more", setting_db=flat, rejected_db=[])
    with pytest.raises(ValidationError):
        Evidence(kind="rating", word="warm", direction="more", setting_db=[0.0] * 39, rating=1)
    with pytest.raises(ValidationError):
        Evidence(kind="rating", word="warm", direction="up", setting_db=flat, rating=1)
    with pytest.raises(ValueError):
        PersonalModel.fit([], lambda w: (np.zeros(40), np.eye(40)), shared=1.0)


def test_probe_pair_straddles_the_applied_setting_along_the_least_known_direction(prior):
    mean, cov = prior("warm")
    samples = PersonalModel.fit([], prior).sample("warm", 2000, np.random.default_rng(0))
    b, c = probe_pair(samples, mean)
    assert rms(b, mean) == pytest.approx(PROBE_STEP_DB) and rms(c, mean) == pytest.approx(PROBE_STEP_DB)
    assert np.allclose((b + c) / 2, mean)  # symmetric around what is applied
    top = np.linalg.eigh(cov)[1][:, -1]
    assert abs(np.corrcoef(b - mean, top)[0, 1]) > 0.95  # the prior's first principal direction
    assert (b - c) @ mean > 0  # B has more of the word's curve
    with pytest.raises(ValueError):
        probe_pair(samples[:1], mean)
    with pytest.raises(ValueError):
        probe_pair(samples, mean, step_db=0.0)


def test_forced_choices_from_a_noiseless_listener_home_in(prior):
    """Answering each probe pair by which side is closer moves the applied setting toward the listener: 6 answers
    remove over half of the distance (a bisection, one principal direction at a time)."""
    target = top_direction(prior, "warm", 1.0) + 0.5 * (top_direction(prior, "soft", 1.0) - prior("soft")[0])
    evidence, rng = [], np.random.default_rng(2)
    model = PersonalModel.fit([], prior)
    before = rms(model.setting("warm"), target)
    for _ in range(6):
        b, c = probe_pair(model.sample("warm", 96, rng), model.setting("warm"))
        chosen, other = (b, c) if rms(b, target) < rms(c, target) else (c, b)
        evidence.append(pick("warm", chosen, other))
        model = PersonalModel.fit(evidence, prior)
    assert rms(model.setting("warm"), target) < 0.5 * before
