"""Per-stem requests: parsing, the oracle test of the per-stem path on MUSDB, and full turns."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from agent import dialogue, planner, rules
from agent.executor import execute
from agent.settings import StemMove
from eval.separation import band_power
from tests.agent.turns import run_turn
from tools.levels import power_db, rms_db
from tools.separate import STEMS, Separation

PARSES = [
    ("make the vocals less harsh", [("vocals", "tone", None, None)], [("harsh", "less")]),
    ("karaoke version please", [("vocals", "mute", None, None)], []),
    ("give me an instrumental version", [("vocals", "mute", None, None)], []),
    ("a cappella please", [("vocals", "solo", None, None)], []),
    ("only the drums", [("drums", "solo", None, None)], []),
    ("quieter drums", [("drums", "quieter", None, None)], []),
    ("the vocals are too quiet", [("vocals", "louder", None, None)], []),
    ("turn up the bass guitar", [("bass", "louder", None, None)], []),
    ("more bass", [], [("bass", "more")]),  # plain "bass" is a tone word, not the bass stem
    ("turn the drums down a bit and make the bass guitar louder",
     [("drums", "quieter", "a little", None), ("bass", "louder", None, None)], []),
    ("drums down 3 dB", [("drums", "quieter", None, -3.0)], []),
    ("vocals +4 dB", [("vocals", "louder", None, 4.0)], []),
    ("mute the guitars", [("other", "mute", None, None)], []),
    ("brighter vocals and quieter drums", [("vocals", "tone", None, None), ("drums", "quieter", None, None)],
     [("bright", "more")]),
]


@pytest.mark.parametrize("request_text,stems,words", PARSES)
def test_rule_parser_reads_stem_requests(request_text, stems, words):
    intent = rules.parse(request_text)
    assert intent.action == "process"
    assert [(e.stem, e.operation, e.amount, e.gain_db) for e in intent.stem_edits] == stems
    assert [(a.descriptor, a.direction) for a in intent.adjustments] == words


def stem_change_levels_db(original: dict[str, np.ndarray], output_stems: dict[str, np.ndarray],
                          sample_rate: int) -> dict[str, float]:
    """How much each stem changed in 2–5 kHz: energy of (stem as output − stem as input) there, dB."""
    return {k: power_db(band_power(output_stems[k] - original[k], sample_rate)) for k in original}


@pytest.fixture(scope="module")
def musdb(data_dir):
    """The MUSDB sample's true stems, all scaled so their sum peaks at -3 dBFS (no limiting)."""
    folder = data_dir / "stems/musdb_sample"
    stems = {k: sf.read(folder / f"{k}.wav", dtype="float32")[0].T for k in STEMS}
    mix = sum(stems.values())
    scale = np.float32(10 ** (-3 / 20) / np.abs(mix).max())
    return {k: v * scale for k, v in stems.items()}, mix * scale, 44100


def test_oracle_vocals_less_harsh_changes_the_vocal_stem_6_db_more_than_the_rest(rt_rules, musdb):
    stems, mix, rate = musdb
    request = "make the vocals less harsh"
    intent = rules.parse(request)
    decision = dialogue.read_turn(rt_rules, dialogue.Conversation(), intent, dialogue.TurnInput(request, "oracle"))
    plan = planner.build_plan(rt_rules, decision.conversation.settings)
    assert [c.tool for c in plan] == ["separate", "stem_eq", "remix", "finalize"]
    ex = execute(rt_rules, plan, mix, rate, separation=Separation(stems, "oracle", "the true stems"))
    fin = ex.facts["finalize"]
    assert fin["limiter_gain_reduction_max_db"] < 0.1
    gain = np.float32(10 ** (fin["gain_db"] / 20))
    np.testing.assert_allclose(sum(ex.stems.values()) * gain, ex.samples, atol=2e-3)
    changes = stem_change_levels_db(stems, {k: v * gain for k, v in ex.stems.items()}, rate)
    print("\noracle 2–5 kHz change levels, dB:", {k: round(v, 1) for k, v in changes.items()})
    vocal = changes["vocals"]
    assert all(vocal - changes[k] >= 6.0 for k in ("drums", "bass", "other"))
    # and the vocal stem's own 2–5 kHz energy really went down
    assert power_db(band_power(ex.stems["vocals"], rate)) - power_db(band_power(stems["vocals"], rate)) < -2.0


def test_unprocessed_oracle_remix_is_the_mix(rt_rules, musdb):
    stems, mix, rate = musdb
    plan = [*planner._stem_calls(rt_rules, {"drums": StemMove()}), *planner.build_plan(rt_rules, dialogue.Settings())]
    ex = execute(rt_rules, plan, mix, rate, separation=Separation(stems, "oracle", "the true stems"))
    residual = sum(ex.stems.values()) - mix
    assert rms_db(residual) - rms_db(mix) < -60.0


def test_quieter_drums_then_more_then_karaoke(engine, excerpt, tmp_path):
    thread = "stems"
    state = run_turn(engine, "quieter drums", excerpt, thread=thread, output_path=tmp_path / "a.wav")
    assert state.status == "processed"
    assert [c.tool for c in state.plan] == ["separate", "stem_gain", "remix", "finalize"]
    drums = state.execution.facts["stems"]["drums"]
    assert drums["level_change_db"] == pytest.approx(-6.0, abs=0.05)
    assert "drum stem -6.0 dB" in state.reply and "classical" in state.reply
    assert all(c["ok"] for c in state.checks)

    state = run_turn(engine, "a bit more", excerpt, thread=thread, output_path=tmp_path / "b.wav")
    assert state.execution.facts["stems"]["drums"]["level_change_db"] == pytest.approx(-9.0, abs=0.05)

    state = run_turn(engine, "karaoke version", excerpt, thread=thread, output_path=tmp_path / "c.wav")
    stems = state.execution.facts["stems"]
    assert stems["vocals"]["muted"] and stems["drums"]["level_change_db"] == pytest.approx(-9.0, abs=0.05)
    assert "removed the vocal stem (karaoke)" in state.reply
    assert abs(state.measurements["lufs_out"] - state.measurements["lufs_in"]) < 0.5


def test_stem_boost_is_capped_at_12_db(engine, excerpt, tmp_path):
    state = run_turn(engine, "turn up the bass guitar by 20 dB", excerpt, output_path=tmp_path / "a.wav")
    bass = state.execution.facts["stems"]["bass"]
    assert bass["level_change_db"] == pytest.approx(12.0, abs=0.05)
    assert "capped at +12 dB" in state.reply
    assert state.measurements["true_peak_dbtp"] <= -1.0 + 1e-3


@pytest.fixture(scope="module")
def hybrid_here():
    from tools.separate import spleeter_weights

    if spleeter_weights() is None:
        pytest.skip("the converted Spleeter weights are missing: run `make setup`")


def test_karaoke_with_the_hybrid_takes_the_voice_down_and_keeps_the_band(hybrid_here, data_dir):
    """The voice ≥ 12 dB down (measured 12.0 dB through the agent's path, loudness-matching gain included; with
    Spleeter's own mask power 9.2 dB, the classical backend 1.6 dB): see tools.spleeter.VOCALS_MASK_POWER."""
    from eval.separation import karaoke, musdb_sample

    stems, _mix, rate = musdb_sample()
    rows = karaoke(stems, rate, ["spleeter"])
    left = rows["Spleeter hybrid backend"]
    print(f"\nkaraoke, true stems' levels in the output re the mix (dB): {rows}")
    assert left["vocals"] <= -12.0
    assert all(abs(left[k]) < 2.0 for k in ("drums", "bass", "other"))  # the band stays


def test_vocals_less_harsh_with_the_hybrid_stays_in_the_vocals(hybrid_here, data_dir):
    from eval.separation import musdb_sample, vocals_less_harsh

    stems, _mix, rate = musdb_sample()
    rows = vocals_less_harsh(stems, rate, ["spleeter"])
    print(f"\nvocals less harsh, 2–5 kHz change levels (dB): {rows}")
    assert rows["Spleeter hybrid backend"]["margin_db"] >= 6.0
