"""The scripted-conversation harness: the YAML suite, the fast slice on the rule-based parser and on
the real planner LLM, schema errors, and a planted regression that must fail the run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from eval.harness import (EXIT_BAD_SUITE, EXIT_BELOW_MIN_PASS, SuiteError, eval_command, load_conversations,
                          run_conversations)

#: Every kind of request the issue ("Scripted eval conversations") names.
CATEGORIES = {"device_transfer", "descriptors", "explicit_bands", "style_2d", "follow_ups", "combinations",
              "ambiguity", "unknown_device", "off_topic", "unsafe", "multilingual", "stems"}
#: The fast slice processes 10 s of each track: enough for stable band energies, quick on 2 cores.
FAST_AUDIO_S = 10.0


@pytest.fixture(scope="module")
def suite():
    return load_conversations()


def test_suite_size_and_categories(suite):
    turns = [t for c in suite for t in c.turns]
    assert len(suite) >= 40 and len(turns) >= 120, (len(suite), len(turns))
    assert CATEGORIES <= {c.category for c in suite}, CATEGORIES - {c.category for c in suite}
    fast = [c for c in suite if c.fast]
    assert 6 <= len(fast) <= 9, [c.id for c in fast]
    fast_categories = {c.category for c in fast}
    assert {"device_transfer", "descriptors", "follow_ups", "ambiguity", "unknown_device", "off_topic"} <= fast_categories


def test_suite_speaks_like_people(suite):
    said = " | ".join(t.say.lower() for c in suite for t in c.turns)
    for word in ("harsh", "muddy", "boomy", "thin", "tinny", "warm", "bright", "air", "punch", "veiled", "sibilant"):
        assert word in said, word
    for phrase in ("a touch", "a lot", "more", "too much", "undo", "reset", "compare to the original",
                   "energetic", "relaxed", "cut 250 hz by 3 db", "+40 db", "on my sony xm4 but with less bass",
                   "galxy", "pixle", "qc35", "my airpods", "zorblax", "weather", "wärmer", "más brillante"):
        assert phrase in said, phrase
    assert any(c.profile and c.profile.owns for c in suite)
    kinds = {k for c in suite for t in c.turns for k, v in t.expect.model_dump().items() if v not in (None, [], {})}
    assert {"status", "tools", "no_tools", "device", "args", "audio", "reply_contains"} <= kinds


def _write(tmp_path: Path, conversations: list[dict], name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(conversations, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


BASE = {"id": "x", "category": "descriptors", "audio": "Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "clip": [10, 8]}


@pytest.mark.parametrize("turn, field", [
    ({"say": "less harsh", "expect": {"audio": {"presense": [-6, -1]}}}, "presense"),
    ({"say": "less harsh", "expect": {"audio": {"presence": [-1, -6]}}}, "min -1 > max -6"),
    ({"say": "less harsh", "expect": {"status": "done"}}, "status"),
    ({"say": "less harsh", "expect": {"tools": ["equaliser"]}}, "equaliser"),
    ({"say": "less harsh", "expect": {"args": {"equalize": {"filter": {"frequency": [1, 2]}}}}}, "frequency"),
    ({"say": "less harsh", "expect": {}}, "expect has no checks"),
    ({"expect": {"status": "processed"}}, "say"),
])
def test_schema_errors_name_file_and_field(tmp_path, turn, field):
    path = _write(tmp_path, [{**BASE, "turns": [turn]}], "broken.yaml")
    with pytest.raises(SuiteError) as err:
        load_conversations([path])
    message = str(err.value)
    assert "broken.yaml" in message and field in message and "conversation x" in message, message
    assert eval_command([path], report_dir=tmp_path / "r", echo=lambda *_: None) == EXIT_BAD_SUITE


def test_duplicate_ids_and_missing_audio_are_reported(tmp_path, data_dir):
    turn = {"say": "warmer", "expect": {"status": "processed"}}
    with pytest.raises(SuiteError, match="repeats"):
        load_conversations([_write(tmp_path, [{**BASE, "turns": [turn]}, {**BASE, "turns": [turn]}])])
    with pytest.raises(SuiteError, match="no file"):
        load_conversations([_write(tmp_path, [{**BASE, "audio": "nope.ogg", "turns": [turn]}], "a.yaml")],
                           check_audio=True)


def _failures(report) -> str:
    return "\n".join(f"{c.id} #{t.index} {t.say!r}: {k.name}: expected {k.expected}, measured {k.measured}"
                     for c, t, k in report.failed_checks())


def test_fast_slice_rule_based(rt_rules, tmp_path):
    report = run_conversations(runtime=rt_rules, report_dir=tmp_path, fast_only=True, progress=False,
                               max_audio_s=FAST_AUDIO_S)
    s = report.summary
    print(f"\nfast slice, rules: {s['turns']['passed']}/{s['turns']['total']} turns, "
          f"p50 {s['latency_s']['turn_p50']} s, p95 {s['latency_s']['turn_p95']} s\n{_failures(report)}")
    for name in ("report.json", "report.md", "report.png"):
        assert (tmp_path / name).stat().st_size > 500, name
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["summary"]["turns"]["total"] == sum(len(c["turns"]) for c in data["conversations"]) >= 15
    assert all(c["fast"] for c in data["conversations"])
    paths = data["summary"]["intent_paths"]  # no LLM: the fast path, answers to questions, else the rules
    assert set(paths) <= {"fast", "answer", "rules"} and sum(paths.values()) == s["turns"]["total"]
    processed = [t for c in report.conversations for t in c.turns if t.status == "processed"]
    assert processed and all(t.trace and Path(t.trace).is_file() for t in processed)
    assert all(0.0 < t.seconds < 30.0 for c in report.conversations for t in c.turns)
    assert not list(tmp_path.glob("run-*")), "temporary audio must be removed"
    md = (tmp_path / "report.md").read_text()
    assert "## Per category" in md and "p50" in md and "p95" in md
    assert report.turn_pass_rate >= 0.8, _failures(report)
    assert report.exit_code(0.8) == 0


def test_planted_regression_fails_with_a_readable_report(rt_rules, tmp_path):
    """A fixture that expects "less harsh" to RAISE 2-5 kHz (a regression written into the
    expectations) must fail the run, and report.md must say which check, expected vs measured."""
    planted = [{**BASE, "id": "planted-harsh-up", "turns": [
        {"say": "less harsh", "expect": {"status": "processed", "audio": {"presence": [1, 6]}}}]}]
    lines: list[str] = []
    code = eval_command([_write(tmp_path, planted)], report_dir=tmp_path / "report", min_pass=0.8,
                        runtime=rt_rules, progress=False, echo=lines.append)
    assert code == EXIT_BELOW_MIN_PASS
    assert any("FAIL" in line for line in lines)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "planted-harsh-up — turn 1: \"less harsh\"" in md
    row = next(line for line in md.splitlines() if "band presence" in line)
    assert re.search(r"\| ❌ band presence \(2000–5000 Hz\) \| \[\+1, \+6\] dB \| -\d+\.\d\d dB \|", row), row
    assert "plan: EQ for \"less harsh\"" in md


def test_planted_planner_regression_is_caught(rt_rules, tmp_path, monkeypatch, suite):
    """The real suite's expectations catch a planner that maps a word the wrong way round."""
    from agent import planner

    original = planner.descriptor_filters
    flip = {"more": "less", "less": "more"}
    monkeypatch.setattr(planner, "descriptor_filters",
                        lambda rt, word, direction, amount, avoid=(): original(rt, word, flip[direction], amount, avoid))
    conv = next(c for c in suite if c.id == "desc-less-harsh-more-undo")
    conv = conv.model_copy(update={"turns": conv.turns[:1]})
    report = run_conversations(runtime=rt_rules, report_dir=tmp_path, progress=False, max_audio_s=FAST_AUDIO_S,
                               conversations=[conv])
    assert report.exit_code(0.8) == EXIT_BELOW_MIN_PASS
    failed = {k.name for _, _, k in report.failed_checks()}
    assert "band presence (2000–5000 Hz)" in failed, failed


def test_fast_slice_real_planner(rt_llm, tmp_path):
    """The fast slice with the real planner LLM (the default model), as `make test` runs it."""
    report = run_conversations(runtime=rt_llm, report_dir=tmp_path, fast_only=True, progress=False,
                               max_audio_s=FAST_AUDIO_S)
    s = report.summary
    print(f"\nfast slice, {s['llm']}: {s['turns']['passed']}/{s['turns']['total']} turns, "
          f"p50 {s['latency_s']['turn_p50']} s, p95 {s['latency_s']['turn_p95']} s, "
          f"paths {s['intent_paths']}\n{_failures(report)}")
    paths = s["intent_paths"]  # closed-vocabulary turns take the fast path; the LLM reads the others
    assert paths.get("llm", 0) + paths.get("llm-repair", 0) >= 1 and sum(paths.values()) == s["turns"]["total"], paths
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.png").is_file()
    assert report.turn_pass_rate >= 0.8, _failures(report)
