"""Understand: LLM → one repair → rule-based parser; the trace says which path ran."""

from __future__ import annotations

import json

import pytest

from agent.llm import LLMError
from agent.rules import parse
from agent.understand import understand

GOOD = {"action": "process", "target_device": "AirPods", "listening_device": None,
        "adjustments": [{"descriptor": "harsh", "direction": "less", "amount": None}], "follow_up": "none"}


class FakeLLM:
    """Test double: replies from a script, records what it was asked."""

    name = "fake"
    load_seconds = 0.0

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def complete_json(self, messages, schema, max_tokens=200):
        self.calls.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


REQUEST = "make this sound like it's on my AirPods, less harsh"


def test_valid_output_takes_the_llm_path():
    u = understand(REQUEST, FakeLLM([json.dumps(GOOD)]))
    assert u.path == "llm" and u.intent.target_device == "AirPods"
    assert u.intent.adjustments[0].direction == "less"


def test_one_repair_attempt_then_valid():
    llm = FakeLLM(['{"action": "process", "adjustments": [{"descriptor": "harsh"}]}', json.dumps(GOOD)])
    u = understand(REQUEST, llm)
    assert u.path == "llm-repair" and len(llm.calls) == 2
    assert "invalid" in u.notes[0]
    assert llm.calls[1][-1]["role"] == "user" and "invalid" in llm.calls[1][-1]["content"]


def test_twice_invalid_falls_back_to_rules():
    u = understand(REQUEST, FakeLLM(["not json", '{"action": "dance"}']))
    assert u.path == "rules"
    assert u.intent.target_device == "airpods"
    assert [(a.descriptor, a.direction) for a in u.intent.adjustments] == [("harsh", "less")]


def test_unreachable_llm_falls_back_to_rules():
    u = understand("warmer please", FakeLLM([LLMError("connection refused")]))
    assert u.path == "rules" and "connection refused" in u.notes[0]
    assert u.intent.adjustments[0].descriptor == "warm"


def test_device_not_in_request_is_dropped():
    invented = {**GOOD, "target_device": "Galaxy Buds", "adjustments": []}
    u = understand("make it warmer", FakeLLM([json.dumps(invented)]))
    assert u.intent.target_device is None and "Galaxy Buds" in u.notes[0]


@pytest.mark.parametrize("request_text, expected", [
    ("make this sound like it's on my AirPods, less harsh", ("process", "airpods", [("harsh", "less")])),
    ("make it sound like my bose qc35 but with less bass", ("process", "bose qc35", [("bass", "less")])),
    ("warmer please", ("process", None, [("warm", "more")])),
    ("too bright", ("process", None, [("bright", "less")])),
    ("cut the mud a lot", ("process", None, [("mud", "less")])),
    ("what's the weather tomorrow?", ("off_topic", None, [])),
])
def test_rule_parser(request_text, expected):
    intent = parse(request_text)
    assert (intent.action, intent.target_device, [(a.descriptor, a.direction) for a in intent.adjustments]) == expected


@pytest.mark.parametrize("text, kind", [("a bit more", "more"), ("undo", "undo"), ("that's too much", "less"),
                                        ("start over", "reset"), ("more please", "more")])
def test_rule_parser_follow_ups(text, kind):
    intent = parse(text)
    assert intent.action == "follow_up" and intent.follow_up == kind


def test_numbers_come_from_the_text_not_the_llm():
    muddled = {"action": "process", "target_device": None, "listening_device": None,
               "adjustments": [{"descriptor": "bass", "direction": "more", "amount": "a lot"},
                               {"descriptor": "gain_db", "direction": "more", "amount": None},
                               {"descriptor": "8 kHz", "direction": "more", "amount": None}],
               "band_edits": [{"frequency_hz": None, "band": "bass", "gain_db": 4}], "follow_up": "none"}
    u = understand("max the bass +40 dB", FakeLLM([json.dumps(muddled)]))
    assert [(e.band, e.gain_db) for e in u.intent.band_edits] == [("bass", 40.0)]
    assert u.intent.adjustments == []
    assert "band edits read from the request's numbers" in u.notes


def test_warm_up_asks_the_planner_once_and_survives_a_down_backend():
    from agent.understand import warm_up

    llm = FakeLLM([json.dumps(GOOD)])
    assert warm_up(llm) >= 0.0 and len(llm.calls) == 1 and llm.calls[0][-1]["content"] == "warmer"
    down = FakeLLM([LLMError("connection refused")])
    assert warm_up(down) >= 0.0 and len(down.calls) == 1
    assert warm_up(None) == 0.0
