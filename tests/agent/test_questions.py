"""Questions answered with read-only tools: the right tool is read, the numbers are the data's, nothing is
processed, invalid tool calls are repaired once or refused, a multi-step request ranks then processes."""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest

from agent import answers, questions
from agent.engine import Engine
from agent.runtime import Runtime
from knowledge.fr_store import FR_GRID_HZ
from tests.agent.turns import run_turn
from tools.analysis import BANDS_HZ
from tools.loudness import integrated_lufs, true_peak_dbtp


@pytest.mark.parametrize("text, tool", [
    ("do the AirPods Max have more bass than the Bose QC45?", "compare_devices"),
    ("which has more treble, the Sony WH-1000XM5 or the WH-1000XM4?", "compare_devices"),
    ("is the Galaxy Buds2 Pro brighter than the AirPods Pro?", "compare_devices"),
    ("what do the Beyerdynamic DT 770 sound like?", "describe_device"),
    ("describe the Sennheiser IE 900", "describe_device"),
    ("which Sony models do you know?", "list_devices"),
    ("list the over-ear headphones you know", "list_devices"),
    ("which of my headphones is closest to neutral?", "rank_devices"),
    ("how loud is this?", "analyze_track"), ("is it clipping?", "analyze_track"),
    ("why does it sound muddy?", "analyze_track"),
    ("what would 'warmer' do?", "preview_word"), ("what's the difference between boomy and muddy?", "preview_word"),
    ("what exactly did you change?", "explain_last"), ("why did you cut 3 kHz?", "explain_last"),
    ("what would 'less sibilant' change?", "preview_word"), ("is the Sennheiser IE 900 V-shaped?", "describe_device"),
    ("how bassy are the Sony WH-1000XM5?", "describe_device"), ("is the mix muddy?", "analyze_track"),
    ("do the Samsung Galaxy Buds Pro sound harsh?", "describe_device"), ("how dynamic is this track?", "analyze_track"),
    ("what does the Bose QuietComfort 45 frequency response look like?", "describe_device"),
    ("what exactly changed?", "explain_last"), ("why does this mix sound so thin?", "analyze_track"),
    ("Do you know any Beyerdynamic headphones?", "list_devices"), ("do you have the HD 600?", "describe_device"),
])
def test_the_closed_vocabulary_reads_common_questions(text, tool):
    assert questions.is_question(text)
    assert [c.tool for c in questions.rule_calls(text)] == [tool]


@pytest.mark.parametrize("text", ["how would this sound on my AirPods?", "what would this sound like on my AirPods?",
                                  "can you make it warmer?", "make it sound like AirPods Max"])
def test_render_requests_are_no_questions(text):
    assert questions.rule_calls(text) is None or not questions.is_question(text)


def _deviation(rt, name, band):
    curve = rt.store.curve(name).db - rt.store.target_for(name).db
    lo, hi = BANDS_HZ[band]
    return float(np.mean(curve[(FR_GRID_HZ >= lo) & (FR_GRID_HZ < hi)]))


def _numbers(text):
    return [float(x.replace("−", "-")) for x in re.findall(r"[-+−]?\d+(?:\.\d+)?", text)]


def test_a_comparison_answers_with_the_data_and_processes_nothing(engine, excerpt, tmp_path):
    out = run_turn(engine, "do the AirPods Max have more bass than the Bose QC45?", excerpt, output_path=tmp_path / "q.wav")
    rt = engine.rt
    truth = _deviation(rt, "Apple AirPods Max", "bass") - _deviation(rt, "Bose QuietComfort 45", "bass")
    assert out.status == "answer" and out.plan == [] and out.settings is None
    assert any(abs(abs(n) - abs(truth)) <= 0.1 for n in _numbers(out.summary)), (truth, out.summary)
    verdict = "About the same" if abs(truth) < answers.SAME_DB else ("Yes" if truth > 0 else "No")
    assert out.summary.startswith(verdict)
    assert "rtings" in out.reply.lower() and out.asked[0]["tool"] == "compare_devices"
    assert not (tmp_path / "q.wav").exists() and (tmp_path / "q-answer.png").stat().st_size > 10_000


def test_listing_counts_what_the_store_holds(engine, excerpt):
    out = run_turn(engine, "which Sony models do you know?", excerpt)
    sony = [n for n in engine.rt.store.devices() if n.startswith("Sony")]
    assert f"I know {len(sony)} Sony models" in out.summary and all(n in out.summary for n in sony)


def test_the_track_is_measured(engine, excerpt):
    from tools.audio_io import load_audio

    out = run_turn(engine, "how loud is this?", excerpt)
    audio = load_audio(excerpt)
    assert f"{integrated_lufs(audio.samples, audio.sample_rate):.1f} LUFS" in out.summary
    assert f"{true_peak_dbtp(audio.samples, audio.sample_rate):.1f} dBTP" in out.summary
    assert run_turn(engine, "is it clipping?", excerpt).summary.startswith("No, it doesn't clip")


def test_a_word_preview_names_its_region_and_applies_nothing(engine, excerpt):
    out = run_turn(engine, "what would 'warmer' do?", excerpt)
    assert engine.rt.words.lookup("warm").main.label() in out.summary and out.settings is None


def test_what_changed_reads_the_last_result(engine, excerpt, tmp_path):
    thread = uuid.uuid4().hex
    run_turn(engine, "less harsh", excerpt, thread, output_path=tmp_path / "a.wav")
    changed = run_turn(engine, "what exactly did you change?", excerpt, thread)
    assert changed.summary.startswith("Last time: Less harsh") and "expert term" in changed.reply
    why = run_turn(engine, "why did you cut 3 kHz?", excerpt, thread)
    assert "3000 Hz" in why.summary and "less harsh" in why.summary
    assert why.settings is not None and [m.descriptor for m in why.settings.adjustments] == ["harsh"]  # unchanged


def test_whichever_of_my_headphones_ranks_then_processes(rt_rules, excerpt, tmp_path):
    user = f"owner-{uuid.uuid4().hex[:6]}"
    owned = ["Apple AirPods Max", "Sony WH-1000XM4", "Bose QuietComfort 45"]
    for name in owned:
        rt_rules.prefs.own_device(user, name)
    best = max(owned, key=lambda n: _deviation(rt_rules, n, "bass"))
    out = run_turn(Engine(rt_rules), "make it sound like whichever of my headphones has the most bass", excerpt,
                   user=user, output_path=tmp_path / "m.wav")
    assert out.status == "processed" and out.device == best
    assert any("rank_devices" in note for note in out.understood.notes)
    ranking = out.reply.split("\n")[1]  # the reply says what the first step found, with its number
    level = _deviation(rt_rules, best, "bass")
    assert best in ranking and f"{level:+.1f} dB" in ranking, ranking


class ScriptedTools:
    """A planner that reads the intent as a question, then answers the tool choice from a script."""

    name, load_seconds = "scripted", 0.0

    def __init__(self, tool_replies):
        self.tool_replies = list(tool_replies)

    def complete_json(self, messages, schema, max_tokens=200):
        if "calls" in schema.get("properties", {}):
            return self.tool_replies.pop(0)
        return json.dumps({"action": "question", "target_device": None, "listening_device": None, "adjustments": [],
                           "band_edits": [], "stem_edits": [], "follow_up": "none"})


def _engine(rt_rules, replies):
    return Engine(Runtime(rt_rules.store, rt_rules.devices, rt_rules.prior, rt_rules.prefs, ScriptedTools(replies)))


def test_an_invalid_tool_call_is_repaired_once(rt_rules, excerpt):
    good = json.dumps({"calls": [{"tool": "list_devices", "brand": "bose", "type": None, "owned": False}]})
    out = run_turn(_engine(rt_rules, ['{"calls": [{"tool": "order_pizza"}]}', good]), "hm, bose stuff you've got?", excerpt)
    assert out.status == "answer" and out.asked[0]["tool"] == "list_devices" and "Bose" in out.summary


def test_twice_invalid_is_refused_with_a_clear_answer(rt_rules, excerpt):
    out = run_turn(_engine(rt_rules, ["not json", '{"calls": []}']), "hm, bose stuff you've got?", excerpt)
    assert out.status == "answer" and out.reply == questions.REFUSAL and out.asked == []


def test_more_calls_than_the_step_limit_are_refused(rt_rules, excerpt):
    many = json.dumps({"calls": [{"tool": "analyze_track", "word": None, "focus": "all"}] * (questions.STEP_LIMIT + 1)})
    ok = json.dumps({"calls": [{"tool": "analyze_track", "word": None, "focus": "all"}] * questions.STEP_LIMIT})
    out = run_turn(_engine(rt_rules, [many, ok]), "tell me everything about this track, thrice", excerpt)
    assert len(out.asked) <= questions.STEP_LIMIT


def test_the_real_planner_repairs_malformed_tool_output(rt_llm, excerpt):
    """The real planner is given a malformed first tool call (as if it had written it) and must repair it."""

    class FirstBroken:
        name, load_seconds = "broken-then-real", 0.0

        def __init__(self):
            self.broken = False

        def complete_json(self, messages, schema, max_tokens=200):
            if "calls" in schema.get("properties", {}) and not self.broken:
                self.broken = True
                return '{"calls": [{"tool": "describe_device", "name": 7}]}'
            return rt_llm.llm.complete_json(messages, schema, max_tokens)

    rt = Runtime(rt_llm.store, rt_llm.devices, rt_llm.prior, rt_llm.prefs, FirstBroken())
    calls = questions.llm_calls("what do the Sony WH-1000XM5 sound like?", rt.llm, notes := [], [])
    assert calls and calls[0].tool in ("describe_device", "compare_devices") and "invalid tool call" in notes[0]


def test_a_device_the_question_never_names_is_dropped(rt_rules, excerpt):
    """The LLM invents a second model to compare with: the question is answered about the one it names."""
    invented = json.dumps({"calls": [{"tool": "compare_devices", "a": "Sony WH-1000XM5", "b": "Bose QuietComfort 45",
                                      "band": "bass"}]})
    out = run_turn(_engine(rt_rules, [invented]), "hmm, the sony wh-1000xm5s, lots of low end on those or not?", excerpt)
    assert out.status == "answer" and [c["tool"] for c in out.asked] == ["describe_device"]
    assert "Bose" not in out.reply and "Sony WH-1000XM5" in out.summary
    level = _deviation(rt_rules, "Sony WH-1000XM5", "bass")
    assert f"{level:+.1f} dB" in out.summary


@pytest.mark.parametrize("name, asked", [("Bose QuietComfort 45", "do the airpods max have more bass than the qc45?"),
                                         ("Bose Noise Cancelling Headphones 700", "are the xm4s bassier than the 700s?"),
                                         ("Sony WF-1000XM4", "the second one?")])
def test_devices_named_by_alias_plural_or_the_last_answer_are_grounded(name, asked):
    assert questions.device_grounded(name, asked, answered=["Sony WF-1000XM4", "Sony WF-1000XM5"])
    assert not questions.device_grounded("Bose QuietComfort 45", "how bassy are the sony wh-1000xm5?")


def test_a_shape_word_gets_a_verdict_by_its_stated_rule(engine, excerpt):
    """"is X V-shaped?" answers Yes exactly when the shape words say V-shaped, and states the rule."""
    for name in ("Sennheiser IE 900", "Sony WH-1000XM4"):
        out = run_turn(engine, f"is the {name} V-shaped?", excerpt)
        shape = answers.shape(engine.rt, name)
        expected = "Yes" if "V-shaped" in answers.shape_words(shape.means) else "No"
        assert out.summary.startswith(expected) and answers.SHAPE_RULES["V-shaped"] in out.summary


def test_one_model_is_one_model(engine, excerpt):
    out = run_turn(engine, "which Shure models do you know?", excerpt)
    count = out.asked[0]["facts"]["count"]
    assert out.summary.startswith(f"I know {count} Shure {'model' if count == 1 else 'models'}:"), out.summary


def test_which_has_more_is_answered_with_a_name(engine, excerpt):
    out = run_turn(engine, "which has more sub-bass, the Jabra Elite 85t or the Jabra Elite 75t?", excerpt)
    lead = max(("Jabra Elite 85t", "Jabra Elite 75t"), key=lambda n: _deviation(engine.rt, n, "sub_bass"))
    assert out.summary.startswith(f"Relative to their targets the {lead} have"), out.summary
    yes_no = run_turn(engine, "do the Jabra Elite 85t have more sub-bass than the Jabra Elite 75t?", excerpt)
    assert yes_no.summary.split(":")[0] in ("Yes", "No", "About the same")


def _neutral(rt, name):
    return float(np.sqrt(np.mean([_deviation(rt, name, b) ** 2 for b in BANDS_HZ if b != "air"])))


def test_which_is_closer_to_neutral_of_two(engine, excerpt):
    out = run_turn(engine, "which is closer to neutral, the Sony WF-1000XM5 or the Sony WF-1000XM4?", excerpt)
    closer = min(("Sony WF-1000XM5", "Sony WF-1000XM4"), key=lambda n: _neutral(engine.rt, n))
    assert out.summary.startswith(f"The {closer} are closer to neutral: {_neutral(engine.rt, closer):.1f} dB RMS")


def test_follow_ups_ask_about_the_models_the_last_answer_named(engine, excerpt, tmp_path):
    """"which of those has the most bass?" ranks the listed models only; "what about treble?" compares the same
    two; "use that one" renders the one the answer named first."""
    thread = uuid.uuid4().hex
    listed = run_turn(engine, "which Samsung earbuds do you know?", excerpt, thread=thread).asked[0]["facts"]["devices"]
    out = run_turn(engine, "which of those has the most bass?", excerpt, thread=thread)
    assert out.asked[0]["tool"] == "rank_devices"
    assert out.asked[0]["facts"]["best"] == max(listed, key=lambda n: _deviation(engine.rt, n, "bass"))
    thread = uuid.uuid4().hex
    run_turn(engine, "does the AKG K371 have less bass than the Beyerdynamic DT 770?", excerpt, thread=thread)
    out = run_turn(engine, "what about treble?", excerpt, thread=thread)
    assert out.asked[0]["tool"] == "compare_devices" and out.asked[0]["args"]["band"] == "treble"
    assert {out.asked[0]["facts"]["a"], out.asked[0]["facts"]["b"]} == {"AKG K371", "Beyerdynamic DT 770 250 Ohm"}
    more = max(("AKG K371", "Beyerdynamic DT 770 250 Ohm"), key=lambda n: _deviation(engine.rt, n, "brilliance"))
    assert out.summary.startswith(f"Relative to their targets the {more} have")
    out = run_turn(engine, "use that one", excerpt, thread=thread, output_path=tmp_path / "u.wav")
    assert out.status == "processed" and out.device == more


def test_fix_it_applies_what_the_answer_proposed(engine, excerpt, tmp_path):
    thread = uuid.uuid4().hex
    asked = run_turn(engine, "is this track too bright?", excerpt, thread=thread)
    assert asked.status == "answer" and asked.asked[0]["tool"] == "analyze_track"
    out = run_turn(engine, "then fix it", excerpt, thread=thread, output_path=tmp_path / "f.wav")
    if '"less bright"' in asked.summary:
        assert out.status == "processed" and out.measurements["band_energy_change_db"]["brilliance"] < -1
    else:  # the region did not stand out: nothing was proposed, nothing is processed
        assert out.status != "processed"


def test_too_loud_is_answered_against_streaming_loudness(engine, excerpt):
    import soundfile as sf

    out = run_turn(engine, "is this mastered too loud?", excerpt)
    samples, rate = sf.read(excerpt, dtype="float32", always_2d=True)
    lufs = integrated_lufs(samples.T, rate)
    assert out.asked[0]["args"]["focus"] == "loudness"
    assert f"{lufs:.1f} LUFS integrated: {abs(lufs + 14):.1f} dB {'louder' if lufs > -14 else 'quieter'}" in out.summary


def test_words_and_flags_the_question_never_says_are_dropped(rt_rules, excerpt):
    preview = json.dumps({"calls": [{"tool": "preview_word", "word": "presence", "other": "EQ"}]})
    out = run_turn(_engine(rt_rules, [preview]), "hm, 'presence' in EQ terms, meaning?", excerpt)
    assert out.asked[0]["args"]["other"] is None and "presence" in out.summary
    invented = json.dumps({"calls": [{"tool": "analyze_track", "word": "mana", "focus": "all"},
                                     {"tool": "list_devices", "brand": "Sony", "type": "in-ear", "owned": True}]})
    out = run_turn(_engine(rt_rules, [invented]), "hm, this track and sony stuff, thoughts?", excerpt)
    assert out.asked[0]["args"]["word"] is None
    assert out.asked[1]["args"] == {"brand": "Sony", "type": None, "owned": False}


def test_a_word_the_vocabulary_only_guesses_is_not_explained(rt_rules, excerpt):
    """"favourite" is no sound word: the nearest crowd word by embedding is a guess, so no curve is shown."""
    guess = json.dumps({"calls": [{"tool": "preview_word", "word": "favourite", "other": None}]})
    out = run_turn(_engine(rt_rules, [guess]), "what's your favourite?", excerpt)
    assert out.status == "answer" and "don't know \"favourite\" as a sound word" in out.reply
    assert rt_rules.words.lookup("favourite").via == "embedding"


def test_a_ranking_within_a_brand(engine, excerpt):
    from knowledge.expert import ExpertVocabulary

    out = run_turn(engine, "which of the Sennheiser models is brightest?", excerpt)
    bright = ExpertVocabulary.load().lookup("bright").main
    region = (FR_GRID_HZ >= bright.low_hz) & (FR_GRID_HZ < bright.high_hz)
    level = {n: float(np.mean((engine.rt.store.curve(n).db - engine.rt.store.target_for(n).db)[region]))
             for n in engine.rt.store.devices() if n.startswith("Sennheiser")}
    assert out.asked[0]["facts"]["ranking"][0] == max(level, key=level.get)
    assert set(out.asked[0]["facts"]["ranking"]) == set(level)


def test_a_word_preview_shows_its_amounts(engine, excerpt):
    """"what would less boomy do?": the EQ at a little / the default / a lot, each larger, in the asked direction."""
    out = run_turn(engine, "what would 'less boomy' do?", excerpt)
    peaks = out.asked[0]["facts"]["eq_peak_db"]
    assert list(peaks) == ["a little", "the default", "a lot"] and peaks["a little"] < peaks["the default"] < peaks["a lot"]
    assert "a little 1.5 dB" in out.reply and "a lot 6.0 dB" in out.reply and 'Say "less boomy"' in out.reply
