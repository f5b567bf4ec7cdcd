"""The schema's prefix follower: which partial replies are valid, complete, and what they force."""

from __future__ import annotations

import json

import pytest

from agent.json_prefix import JsonPrefix, SchemaNotSupported
from agent.questions import _schema as question_schema
from agent.schemas import Intent, intent_json_schema

REPLIES = [
    {"action": "process", "target_device": "AirPods", "listening_device": None,
     "adjustments": [{"descriptor": "harsh", "direction": "less", "amount": None}], "band_edits": [],
     "stem_edits": [], "follow_up": "none"},
    {"action": "process", "target_device": None, "listening_device": "Sony WH-1000XM4", "adjustments": [],
     "band_edits": [{"frequency_hz": 250, "band": None, "gain_db": -3.5}, {"frequency_hz": None, "band": "air",
                                                                          "gain_db": 1e1}],
     "stem_edits": [{"stem": "vocals", "operation": "louder", "amount": "a lot", "gain_db": None}],
     "follow_up": "none"},
    {"action": "follow_up", "target_device": "caf\u00e9 \"quoted\" \\ \u00fc", "listening_device": None,
     "adjustments": [], "band_edits": [], "stem_edits": [], "follow_up": "undo"},
]


@pytest.fixture(scope="module")
def intent() -> JsonPrefix:
    return JsonPrefix(intent_json_schema())


@pytest.mark.parametrize("reply", REPLIES)
def test_every_prefix_of_a_valid_reply_is_valid_and_only_the_whole_is_complete(intent, reply):
    text = json.dumps(reply, separators=(",", ":"), ensure_ascii=False)
    Intent.model_validate_json(text)
    for end in range(len(text)):
        state = intent.state(text[:end])
        assert state.valid and not state.complete, text[:end]
        assert text[end:].startswith(state.forced), (text[:end], state.forced)
    assert intent.state(text).complete


def test_forced_text_is_the_schema_up_to_the_next_choice(intent):
    assert intent.forced_run("") == '{"action":"'
    assert intent.forced_run('{"action":"pro') == 'cess","target_device":'
    assert intent.forced_run('{"action":"process","target_device":') == ""  # a name or null
    assert intent.forced_run('{"action":"process","target_device":n') == 'ull,"listening_device":'
    assert intent.forced_run('{"action":"off_topic","target_device":null,"listening_device":null,"adjustments":[{') \
        == '"descriptor":"'
    # a number may go on: nothing is forced after its digits, the comma comes once the model ends it
    assert intent.forced_run('{"action":"process","target_device":null,"listening_device":null,"adjustments":[],'
                             '"band_edits":[{"frequency_hz":25') == ""


@pytest.mark.parametrize("text", ['{"action":"proceed"', '{"action": "process"', '{"target_device":null',
                                  '{"action":"process","target_device":nul,', '{"action":"process"}', "[", "x"])
def test_text_outside_the_schema_or_not_compact_is_invalid(intent, text):
    assert not intent.state(text).valid


def test_lists_keep_their_length_limits():
    prefix = JsonPrefix(question_schema())
    assert not prefix.state('{"calls":[]').valid  # minItems 1
    call = '{"tool":"explain_last","frequency_hz":null}'
    assert prefix.state('{"calls":[' + ",".join([call] * 3)).forced == "]"  # maxItems 3
    assert prefix.state('{"calls":[' + call + "]}").complete


def test_union_of_tools_forces_what_the_chosen_tool_fixes():
    prefix = JsonPrefix(question_schema())
    assert prefix.forced_run("") == '{"calls":[{"tool":"'
    assert prefix.forced_run('{"calls":[{"tool":"c') == 'ompare_devices","a":"'
    assert prefix.forced_run('{"calls":[{"tool":"list_devices","brand":null,"type":null,"owned":t') == 'rue}'


def test_schemas_with_optional_keys_are_refused():
    with pytest.raises(SchemaNotSupported, match="not supported"):
        JsonPrefix({"type": "object", "properties": {"a": {"type": "string"}}, "required": []})
    with pytest.raises(SchemaNotSupported, match="local definition"):
        JsonPrefix({"$ref": "#/$defs/Missing"})
