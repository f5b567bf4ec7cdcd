"""``facts``: the numbers in an answer's reply, checked against truths the harness computes from the data
(device deviations and differences, loudness and true peak of the input, device counts, word regions),
and the ``questions`` conversations that use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from agent.answers import SAME_DB
from eval.scoring import fact_truth, reply_numbers, score_fact, score_facts
from eval.suite import CONVERSATIONS_DIR, Expect, SuiteError, load_conversations
from knowledge.expert import ExpertVocabulary
from tools.analysis import BANDS_HZ

QUESTIONS = CONVERSATIONS_DIR / "questions.yaml"
NO_AUDIO_TOOLS = {"device_transfer", "equalize", "separate"}


def _fact(**kw):
    return Expect.model_validate({"facts": [kw]}).facts[0]


def _ok(fact, reply: str, audio=None) -> bool:
    return score_fact(fact, reply, audio).ok


@pytest.fixture(scope="module")
def store(data_dir):
    from knowledge.fr_store import FRStore

    return FRStore.load()


def _deviation(store, name: str, band: str | tuple[float, float]) -> float:
    """The definition, written out again: mean over lo <= f < hi of FR − class target on FR_GRID_HZ
    (``band``: a band name or a (low_hz, high_hz) region)."""
    from knowledge.fr_store import FR_GRID_HZ

    lo, hi = BANDS_HZ[band] if isinstance(band, str) else band
    mask = (FR_GRID_HZ >= lo) & (FR_GRID_HZ < hi)
    return float(np.mean(store.curve(name).db[mask] - store.target_for(name).db[mask]))


# ------------------------------------------------------------------------------ reading numbers

def test_reply_numbers_ignore_signs_and_model_names():
    text = ("Yes: the Sony WH-1000XM4 have 3.1 dB more bass (+6.1 dB vs −2.0dB) than the 2nd-gen "
            "Galaxy Buds2 Pro; -14 LUFS; v1.2.3")
    assert reply_numbers(text) == [3.1, 6.1, 2.0, 14.0]
    assert reply_numbers("I know six Sony models", words=True) == [6.0]
    assert reply_numbers("I know six Sony models") == []


# ------------------------------------------------------------------------------ devices

def test_device_difference(store):
    a, b = "Sony WH-1000XM4", "Sony WH-1000XM5"
    truth = _deviation(store, a, "brilliance") - _deviation(store, b, "brilliance")
    fact = _fact(kind="device_difference", a=a, b=b, band="brilliance")
    assert fact_truth(fact) == pytest.approx(truth, abs=1e-9)
    t = abs(truth)
    assert _ok(fact, f"Yes: the {a} have {t:.1f} dB more treble than the {b}.")
    assert _ok(fact, f"The {b} are {t:.1f} dB lower in the treble.")  # sign-free
    assert _ok(fact, f"Difference: \u2212{t + 0.25:.2f} dB")  # Unicode minus, inside the tolerance
    assert not _ok(fact, f"The {a} have {t + 0.5:.1f} dB more treble.")
    assert not _ok(fact, "They are about the same.")  # no number at all
    near = f"{t - 0.1:.1f}"
    check = score_fact(fact, f"{t + 2:.1f} dB and {near} dB")
    assert check.ok and check.measured == f"{float(near):g} dB" and f"{truth:+.2f} dB" in check.expected


def test_device_deviation_and_model_digits_do_not_count(store):
    name = "Sony WF-1000XM4"
    truth = _deviation(store, name, "brilliance")  # about −8.4 dB
    fact = _fact(kind="device_deviation", device=name, band="brilliance")
    assert fact_truth(fact) == pytest.approx(truth, abs=1e-9)
    assert _ok(fact, f"The {name} sit {truth:+.1f} dB against the target in the brilliance (5 kHz–10 kHz).")
    assert _ok(fact, f"The {name} are {str(round(truth, 1)).replace('-', '−')} dB in the treble.")
    assert not _ok(fact, f"The {name} are {abs(truth) + 1:.1f} dB dark.")


def test_unknown_device_fails_with_the_reason(data_dir):
    check = score_fact(_fact(kind="device_deviation", device="Zorblax 9000", band="bass"), "+3.0 dB")
    assert not check.ok and "cannot compute" in check.measured and "Zorblax" in check.measured


# ------------------------------------------------------------------------------ the input audio

def _tone(level: float = 0.5, rate: int = 48000, seconds: float = 3.0):
    from tools.audio_io import Audio

    t = np.arange(int(rate * seconds)) / rate
    x = (level * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    return Audio(np.stack([x, x]), rate)


def test_lufs_and_true_peak_of_the_input():
    from tools.loudness import integrated_lufs, true_peak_dbtp

    audio = _tone(0.5)
    lufs, peak = integrated_lufs(audio.samples, audio.sample_rate), true_peak_dbtp(audio.samples, audio.sample_rate)
    f_lufs, f_peak = _fact(kind="lufs"), _fact(kind="true_peak")
    assert fact_truth(f_lufs, audio) == pytest.approx(lufs) and fact_truth(f_peak, audio) == pytest.approx(peak)
    reply = f"It measures {lufs:.1f} LUFS integrated, true peak {peak:.1f} dBTP; no clipping."
    assert _ok(f_lufs, reply, audio) and _ok(f_peak, reply, audio)
    assert _ok(f_lufs, f"It measures \u2212{abs(lufs):.1f} LUFS.", audio)
    assert not _ok(f_lufs, f"It measures {lufs - 1:.1f} LUFS.", audio)
    assert not _ok(f_peak, f"true peak {peak - 0.5:.1f} dBTP", audio)
    missing = score_fact(f_lufs, reply, None)
    assert not missing.ok and "no input audio" in missing.measured


# ------------------------------------------------------------------------------ counts and words

def test_device_count(store):
    sony = sum(1 for n in store.devices() if n.lower().startswith("sony"))
    over_ear = sum(1 for n in store.devices() if store.device_type(n) == "over-ear")
    fact = _fact(kind="device_count", brand="sony")
    assert fact_truth(fact) == sony
    names = ", ".join(n for n in store.devices() if n.startswith("Sony"))
    assert _ok(fact, f"I know {sony} Sony models: {names}.")
    words = "zero one two three four five six seven eight nine ten".split()
    if sony < len(words):
        assert _ok(fact, f"I know {words[sony]} Sony models: {names}.")
    assert not _ok(fact, f"I know {sony + 1} Sony models: {names}.")
    assert fact_truth(_fact(kind="device_count", type="over-ear")) == over_ear
    assert fact_truth(_fact(kind="device_count", brand="Sony", type="over-ear")) == sum(
        1 for n in store.devices() if n.startswith("Sony") and store.device_type(n) == "over-ear")


def test_word_region(data_dir):
    fact = _fact(kind="word_region", word="warmer")
    label = fact_truth(fact)
    assert label == "100 Hz–400 Hz"
    assert _ok(fact, f'"More warm" would raise the {label} region by 3 dB.')
    assert _ok(fact, "It raises 100\u00a0Hz–400\u00a0Hz.")  # a non-breaking space is a space
    assert not _ok(fact, "It raises 2 kHz–5 kHz.")
    check = score_fact(_fact(kind="word_region", word="harsh"), "harsh is about 2 kHz–5 kHz, boomy 60 Hz–250 Hz")
    assert check.ok and check.expected == "2 kHz–5 kHz" and "60 Hz–250 Hz" in check.measured


def test_score_facts_checks_each_fact_in_order(data_dir):
    expect = Expect.model_validate({"facts": [{"kind": "word_region", "word": "air"},
                                              {"kind": "word_region", "word": "boomy"}]})
    checks = score_facts(expect, "Air is 10 kHz–20 kHz.")
    assert [c.ok for c in checks] == [True, False]
    assert score_facts(Expect.model_validate({"status": "answer"}), "anything") == []


# ------------------------------------------------------------------------------ schema

BASE = {"id": "x", "category": "questions", "audio": "Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "clip": [10, 8]}


@pytest.mark.parametrize("facts, field", [
    ([{"kind": "device_difference", "a": "Sony WH-1000XM4", "b": "Sony WH-1000XM5", "band": "treble"}], "treble"),
    ([{"kind": "lufss"}], "lufss"),
    ([{"kind": "device_deviation", "band": "bass"}], "device"),
    ([{"kind": "device_count", "type": "in-ears"}], "type"),
    ([{"kind": "lufs", "tolerance": 1}], "tolerance"),
    ({"kind": "lufs"}, "facts must be a list"),
    (["lufs"], "kind"),
])
def test_fact_schema_errors_name_file_and_field(tmp_path, facts, field):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump([{**BASE, "turns": [{"say": "how loud is this?", "expect": {"facts": facts}}]}],
                                   allow_unicode=True), encoding="utf-8")
    with pytest.raises(SuiteError) as err:
        load_conversations([path])
    message = str(err.value)
    assert "broken.yaml" in message and "conversation x" in message and "facts" in message and field in message, message


def test_facts_alone_are_a_check():
    assert Expect.model_validate({"facts": [{"kind": "lufs"}]}).facts


# ------------------------------------------------------------------------------ the questions file

@pytest.fixture(scope="module")
def questions():
    return load_conversations([QUESTIONS])


def test_questions_load(questions):
    assert len(questions) >= 32 and all(c.category == "questions" for c in questions)
    assert len({c.id for c in questions}) == len(questions)
    answers = [t for c in questions for t in c.turns if t.expect.status == "answer"]
    assert len(answers) >= 32
    for turn in answers:
        assert NO_AUDIO_TOOLS <= set(turn.expect.no_tools), turn.say
    kinds = {f.kind for c in questions for t in c.turns for f in t.expect.facts}
    assert kinds == {"device_difference", "device_deviation", "lufs", "true_peak", "device_count", "word_region"}
    assert any(c.profile and c.profile.owns and any(t.expect.status == "processed" and t.expect.device
                                                    for t in c.turns) for c in questions)
    assert all(c.clip and 10 <= c.clip[1] <= 15 for c in questions)


def test_questions_name_real_devices_and_audio(questions, store, data_dir):
    load_conversations([QUESTIONS], check_audio=True)
    known = set(store.devices())
    for c in questions:
        names = list(c.profile.owns if c.profile else [])
        for t in c.turns:
            names += [t.expect.device] if isinstance(t.expect.device, str) else (t.expect.device or [])
            for f in t.expect.facts:
                names += [getattr(f, k) for k in ("a", "b", "device") if hasattr(f, k)]
        assert set(names) <= known, (c.id, set(names) - known)


def test_question_facts_compute(questions, data_dir):
    """Every fact of the file has a truth (audio facts on a stand-in clip: the runner gives the real one)."""
    audio = _tone(0.3)
    for c in questions:
        for t in c.turns:
            for f in t.expect.facts:
                value = fact_truth(f, audio)
                assert value is not None and value == value, (c.id, f)  # not NaN


def test_multi_step_devices_follow_the_data(questions, store):
    """The multi-step requests expect the owned device the data picks (most/least bass, brightest, most neutral)."""
    bands = ("sub_bass", "bass", "low_mid", "mid", "presence", "brilliance")
    rms = lambda n: float(np.sqrt(np.mean([_deviation(store, n, b) ** 2 for b in bands])))  # noqa: E731
    bright = ExpertVocabulary.load().lookup("bright").main  # "brightest" ranks by the word's expert region

    def brightest(owns: list[str]) -> list[str]:
        """Every owned device within SAME_DB of the brightest (a near-tie accepts either)."""
        level = {n: _deviation(store, n, (bright.low_hz, bright.high_hz)) for n in owns}
        return sorted(n for n in owns if max(level.values()) - level[n] < SAME_DB)

    pick = {"most bass": lambda owns: [max(owns, key=lambda n: _deviation(store, n, "bass"))],
            "least bass": lambda owns: [min(owns, key=lambda n: _deviation(store, n, "bass"))],
            "brightest": brightest,
            "most neutral": lambda owns: [min(owns, key=rms)]}
    seen = 0
    for c in questions:
        if not c.id.startswith("q-multi-"):
            continue
        for t in c.turns:
            rule = next((k for k in pick if k in t.say.lower()), None)
            if rule and t.expect.status == "processed":
                assert sorted(t.expect.device) == pick[rule](c.profile.owns), (c.id, rule)
                seen += 1
    assert seen >= 3
