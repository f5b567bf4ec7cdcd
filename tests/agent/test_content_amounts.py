"""Content-aware amounts (agent.planner.content_amount): "less muddy" on a muddy track does more, on a clean one
a small audible move; measured on a real track with planted excesses, with eval.words' measure."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import soundfile as sf

from agent import planner
from agent.engine import Engine
from agent.schemas import Adjustment
from eval.words import measured_change_db
from knowledge.preferences import ResultParams, WordAmount
from tests.agent.turns import run_turn
from tools.eq import Filter, apply_eq

#: The clean real track: 15 s of Let's Go Fishin' from 40 s (a full band mix).
TRACK, START_S, LENGTH_S = "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg", 40.0, 15.0
#: Where the excess is planted (one RBJ peaking filter spanning it) and the word that should remove it.
PLANTS = {"muddy": (150.0, 500.0), "harsh": (2000.0, 5000.0)}


def _plant(samples: np.ndarray, rate: int, band: tuple[float, float], gain_db: float) -> np.ndarray:
    centre = float(np.sqrt(band[0] * band[1]))
    return apply_eq(samples, rate, [Filter(type="peaking", frequency_hz=centre, gain_db=gain_db,
                                           q=centre / (band[1] - band[0]))])


@pytest.fixture(scope="module")
def tracks(data_dir, tmp_path_factory):
    """{(word, planted gain_db): (path, samples)}: the clean excerpt (gain 0) and +4/+8 dB plants per band."""
    rate = sf.info(str(data_dir / "music" / TRACK)).samplerate
    data, rate = sf.read(str(data_dir / "music" / TRACK), start=int(START_S * rate), frames=int(LENGTH_S * rate),
                         dtype="float32", always_2d=True)
    clean = np.ascontiguousarray(data.T)
    folder = tmp_path_factory.mktemp("content")
    out = {}
    for word, band in PLANTS.items():
        for gain in (0.0, 4.0, 8.0):
            samples = _plant(clean, rate, band, gain) if gain else clean
            path = folder / f"{word}_{gain:g}.wav"
            sf.write(path, samples.T, rate, subtype="FLOAT")
            out[word, gain] = (path, samples)
    return out, rate


def _less(rt, word: str, path, samples: np.ndarray, rate: int) -> tuple[float, np.ndarray, str]:
    """The planner's "less <word>" on the file (no history), realised by WordEQ.filters: (amount, output, source)."""
    move = planner.tone_move(rt, f"u-{uuid.uuid4().hex[:6]}", f"less {word}", Adjustment(descriptor=word,
                             direction="less"), input_path=str(path))
    filters = rt.words.filters(rt.words.lookup(word), "less", move.amount)
    return move.amount, apply_eq(samples, rate, filters), move.amount_source


@pytest.mark.parametrize("word", list(PLANTS))
def test_planted_excess_is_mostly_removed_and_the_clean_track_moves_little(rt_rules, tracks, word):
    by_key, rate = tracks
    region = rt_rules.words.lookup(word).main
    band = (region.low_hz, region.high_hz)
    clean_path, clean = by_key[word, 0.0]
    _, out, source = _less(rt_rules, word, clean_path, clean, rate)
    clean_move = -measured_change_db(clean, out, rate, band)
    print(f"\n{word} clean: {clean_move:.2f} dB ({source})")
    assert 1.2 <= clean_move <= 2.0
    assert "measured:" in source and "reference of" in source
    for gain in (4.0, 8.0):
        path, planted = by_key[word, gain]
        excess = measured_change_db(clean, planted, rate, band)
        _, out, source = _less(rt_rules, word, path, planted, rate)
        removed = -measured_change_db(planted, out, rate, band)
        print(f"{word} +{gain:g} dB plant: excess {excess:.2f} dB, removed {removed:.2f} dB "
              f"({100 * removed / excess:.0f} %) — {source}")
        assert removed >= 0.6 * excess


def test_more_of_a_region_far_above_the_reference_adds_less(rt_rules, tracks):
    by_key, _ = tracks
    region = rt_rules.words.lookup("muddy").main
    clean = planner.content_amount(region, "more", by_key["muddy", 0.0][0])
    rich = planner.content_amount(region, "more", by_key["muddy", 8.0][0])
    assert rich.excess_db > clean.excess_db + 3.0
    assert rich.amount < clean.amount
    assert rich.amount * planner.TARGET_DB >= planner.MIN_CONTENT_ADD_DB - 1e-9


def test_history_amount_wins_over_content_and_says_so(rt_rules, tracks):
    by_key, _ = tracks
    user = f"u-{uuid.uuid4().hex[:6]}"
    rid = rt_rules.prefs.add(user, "less muddy please", {}, [], ResultParams(adjustments=[
        WordAmount(descriptor="muddy", direction="less", amount=0.7)]))
    rt_rules.prefs.rate(user, rid, 1)
    path = by_key["muddy", 8.0][0]
    move = planner.tone_move(rt_rules, user, "less muddy", Adjustment(descriptor="muddy", direction="less"),
                             input_path=str(path))
    measured = planner.content_amount(rt_rules.words.lookup("muddy").main, "less", path)
    assert measured.amount > 1.0
    assert move.amount == pytest.approx(0.7)
    assert "your liked amount wins" in move.amount_source


def test_no_audio_or_unreadable_audio_falls_back_to_the_default_and_says_so(rt_rules, tmp_path):
    adj = Adjustment(descriptor="muddy", direction="less")
    move = planner.tone_move(rt_rules, "nobody", "less muddy", adj)
    assert move.amount == pytest.approx(1.0)
    assert "default move" in move.amount_source and "no audio to measure" in move.amount_source
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((44100, 2), dtype="float32"), 44100)
    move = planner.tone_move(rt_rules, "nobody", "less muddy", adj, input_path=str(silent))
    assert move.amount == pytest.approx(1.0) and "could not be measured" in move.amount_source


def test_a_little_stays_audible_and_a_lot_doubles(rt_rules, tracks):
    path = tracks[0]["muddy", 0.0][0]
    amounts = {a: planner.tone_move(rt_rules, "nobody", "less muddy", Adjustment(descriptor="muddy", direction="less",
                                                                                amount=a), input_path=str(path)).amount
               for a in (None, "a little", "a lot")}
    assert amounts["a lot"] == pytest.approx(2 * amounts[None])
    assert planner.MIN_AUDIBLE_DB / planner.TARGET_DB - 1e-9 <= amounts["a little"] < amounts[None]


def test_engine_reasoning_names_the_measurement(rt_rules, tracks, tmp_path):
    path = tracks[0]["muddy", 8.0][0]
    state = run_turn(Engine(rt_rules), "less muddy", path, output_path=tmp_path / "o.wav")
    move = state.settings.adjustments[0]
    assert move.amount > 1.0 and "measured: 150 Hz–400 Hz is" in move.amount_source
    assert "reference of" in state.reply
