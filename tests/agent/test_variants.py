"""Variants in the conversation and the personal model driving the next request (agent.variants), on real audio."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import soundfile as sf

from agent.engine import Engine
from agent.runtime import Runtime
from agent.variants import MIN_VARIANT_DB, describe_difference, offset_filters, pick_of, prior_of
from knowledge.descriptors import AUDEALIZE_FREQS_HZ
from knowledge.population import compact_db
from tools.eq import frequency_response_db


@pytest.mark.parametrize("text, offered, index", [
    ("the second one", 3, 1), ("variant B", 3, 1), ("use c", 3, 2), ("keep A", 3, 0), ("B", 3, 1),
    ("I prefer the first one", 3, 0), ("take variant 3", 3, 2), ("the third one", 2, None), ("C", 2, None),
    ("the last one", 3, 2), ("the last one", 2, 1), ("I like the first one better", 3, 0), ("the second one is better", 3, 1),
    ("make it warmer", 3, None), ("a bit more", 3, None), ("second", 3, 1),
])
def test_pick_of_reads_ordinals_and_letters(text, offered, index):
    assert pick_of(text, offered) == index


def test_offset_filters_realise_the_offset():
    """The 40 Audealize peaking bands (Q 4.31) meet a smooth offset at the band centres within 0.2 dB."""
    offset = 1.5 * np.exp(-0.5 * (np.log2(AUDEALIZE_FREQS_HZ / 300.0) / 0.8) ** 2)  # +1.5 dB bump at 300 Hz
    response = frequency_response_db(offset_filters(offset, 1.0), AUDEALIZE_FREQS_HZ[1:-3], 48000)
    assert np.max(np.abs(response - offset[1:-3])) < 0.2
    flipped = frequency_response_db(offset_filters(offset, -2.0), AUDEALIZE_FREQS_HZ[1:-3], 48000)
    assert flipped == pytest.approx(-2.0 * response, abs=0.3)


def test_describe_difference_names_the_region():
    diff = np.where((AUDEALIZE_FREQS_HZ >= 250) & (AUDEALIZE_FREQS_HZ < 800), 1.3, 0.0)
    assert describe_difference(diff) == "more low mids (+1.3 dB at 250 Hz–800 Hz)"
    assert describe_difference(-diff).startswith("less low mids (−1.3 dB")
    assert describe_difference(np.zeros(40)) == "about the same"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, data_dir):
    """A rules-only engine with its own preference store (picks are stored)."""
    rt = Runtime.load(use_llm=False, prefs_path=tmp_path_factory.mktemp("variants") / "prefs.sqlite")
    return Engine(rt)


def _samples(path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0]


def test_variant_offer_pick_and_follow_up(fresh, excerpt, tmp_path):
    """"warmer" offers labelled, loudness-matched variants; "the second one" switches to B (same audio as the
    offered B), stores the pick, and "a bit more" starts from B."""
    user, thread = "picker", uuid.uuid4().hex
    out = fresh.turn(thread, "make it warmer", excerpt, user=user, output_path=tmp_path / "warm.wav")
    assert out.status == "processed" and out.variants is not None and 1 <= len(out.variants.options) <= 2
    applied = np.asarray(out.variants.applied_db)
    for option in out.variants.options:
        assert np.max(np.abs(compact_db(np.asarray(option.setting_db) - applied))) >= MIN_VARIANT_DB
        assert option.label != "about the same" and option.audio.endswith(f"warm-{option.letter}.wav")
    assert "Other ways people mean" in out.reply
    lufs = [out.measurements["lufs_out"]]
    b = out.variants.options[0]
    picked = fresh.turn(thread, "the second one", excerpt, user=user, output_path=tmp_path / "b.wav")
    assert picked.status == "processed" and picked.understood.path == "variant"
    move = picked.settings.adjustments[0]
    assert move.offset_db == b.offset_db and move.variant.startswith("B:")
    assert np.max(np.abs(_samples(picked.outputs["audio"]) - _samples(b.audio))) < 1e-4  # what was offered as B
    lufs.append(picked.measurements["lufs_out"])
    assert abs(lufs[0] - lufs[1]) < 0.5  # loudness-matched A/B
    evidence = fresh.rt.prefs.evidence(user)
    assert [e.kind for e in evidence] == ["pick"] and evidence[0].setting_db == pytest.approx(b.setting_db)
    more = fresh.turn(thread, "a bit more", excerpt, user=user, output_path=tmp_path / "more.wav")
    assert more.settings.adjustments[0].offset_db == b.offset_db and more.settings.adjustments[0].amount > move.amount


def test_personal_offset_drives_the_next_request(fresh, excerpt, tmp_path):
    """A person who likes variant B of "warmer" and then answers each forced choice by what is nearer that taste:
    a new conversation's "warmer" carries their offset toward it and the reasoning explains it; another
    person's does not."""
    user, liked = "leaning", None
    for k in range(4):
        thread = uuid.uuid4().hex
        out = fresh.turn(thread, "make it warmer", excerpt, user=user, output_path=tmp_path / f"w{k}.wav")
        if out.variants is None:
            break
        settings = [np.asarray(o.setting_db) for o in out.variants.options]
        nearer = 0 if liked is None else int(np.argmin([np.linalg.norm(s - liked) for s in settings]))
        liked = settings[0] if liked is None else liked
        fresh.turn(thread, ("the second one", "the third one")[nearer], excerpt, user=user, output_path=tmp_path / f"p{k}.wav")
    mine = fresh.turn(uuid.uuid4().hex, "make it warmer", excerpt, user=user, output_path=tmp_path / "mine.wav")
    other = fresh.turn(uuid.uuid4().hex, "make it warmer", excerpt, user="someone-else", output_path=tmp_path / "o.wav")
    move = mine.settings.adjustments[0]
    assert move.offset_db and move.personal and not other.settings.adjustments[0].offset_db
    assert len(fresh.rt.prefs.evidence(user)) == 4
    mean, _ = prior_of(fresh.rt)("warm")
    assert np.linalg.norm(mean + np.asarray(move.offset_db) - liked) < 0.8 * np.linalg.norm(mean - liked)
    assert "shaped to your taste" in mine.reply


def test_with_evidence_the_offer_is_a_forced_choice_around_the_personal_setting(fresh, excerpt, tmp_path):
    """After a first pick, "warmer" offers B and C = A ± PROBE_STEP_DB (RMS dB) around the person's own setting,
    labelled; answering "the third one" stores C over B only (the question asked was B or C)."""
    from knowledge.personal import PROBE_STEP_DB

    user = "prober"
    thread = uuid.uuid4().hex
    first = fresh.turn(thread, "make it warmer", excerpt, user=user, output_path=tmp_path / "w0.wav")
    assert first.variants is not None and first.variants.kind == "modes"
    fresh.turn(thread, "the second one", excerpt, user=user, output_path=tmp_path / "p0.wav")
    thread = uuid.uuid4().hex
    out = fresh.turn(thread, "make it warmer", excerpt, user=user, output_path=tmp_path / "w1.wav")
    offered = out.variants
    assert offered is not None and offered.kind == "probes" and len(offered.options) == 2
    applied = np.asarray(offered.applied_db)
    b, c = (np.asarray(o.setting_db) for o in offered.options)
    for s in (b, c):
        assert np.sqrt(np.mean((s - applied) ** 2)) == pytest.approx(PROBE_STEP_DB, abs=1e-6)
    assert np.allclose((b + c) / 2, applied, atol=1e-6)
    assert offered.options[0].label != offered.options[1].label and "which is closer" in out.reply
    fresh.turn(thread, "the third one", excerpt, user=user, output_path=tmp_path / "p1.wav")
    last = fresh.rt.prefs.evidence(user)[-1]
    assert last.kind == "pick" and last.setting_db == pytest.approx(list(c)) and last.rejected_db == [pytest.approx(list(b))]
