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
