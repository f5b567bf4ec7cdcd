"""Jump-forward decoding gives llama.cpp's grammar-constrained greedy reply, asking the model far less often.

Runs the real 0.5B planner (Qwen2.5-Coder-0.5B Q4_K_M); the 1.5B one is checked by the planner
accuracy test, which goes through the same decoder.
"""

from __future__ import annotations

import pytest

from agent.llm import LlamaCppBackend
from agent.prompts import build_messages
from agent.questions import _messages as question_messages
from agent.questions import _schema as question_schema
from agent.schemas import Intent, intent_json_schema

REQUESTS = ["make this sound like it's on my AirPods, less harsh", "undo", "cut 250 Hz by 3 dB and a lot more air",
            "louder vocals please", "hazlo más cálido", "what's the weather like today?"]


@pytest.fixture(scope="module")
def backends(small_model):
    return (LlamaCppBackend(small_model, n_ctx=4096, jump_forward=True),
            LlamaCppBackend(small_model, n_ctx=4096, jump_forward=False))


def test_replies_equal_the_grammar_samplers_with_a_quarter_to_a_half_of_the_model_steps(backends):
    fast, grammar = backends
    schema = intent_json_schema()
    for request in REQUESTS:
        reply = fast.complete_json(build_messages(request), schema, max_tokens=160)
        assert reply == grammar.complete_json(build_messages(request), schema, max_tokens=160), request
        Intent.model_validate_json(reply)
        decoder = fast._jump
        assert decoder.last_tokens == len(fast._llm.tokenize(reply.encode(), add_bos=False))
        assert decoder.last_steps <= 0.6 * decoder.last_tokens, (request, decoder.last_steps, decoder.last_tokens)


def test_the_question_tools_union_schema_decodes_the_same(backends):
    fast, grammar = backends
    messages = question_messages("which of my headphones has the most bass?")
    reply = fast.complete_json(messages, question_schema(), max_tokens=160)
    assert reply == grammar.complete_json(messages, question_schema(), max_tokens=160)  # examples are compact JSON
    assert fast._jump.last_steps < fast._jump.last_tokens


def test_a_reply_cut_by_max_tokens_stops_there(backends):
    fast, _ = backends
    reply = fast.complete_json(build_messages("warmer"), intent_json_schema(), max_tokens=8)
    assert fast._jump.last_tokens <= 8 and reply.startswith('{"action":"') and not reply.endswith("}")


def test_a_prompt_too_long_for_the_context_is_an_llm_error(backends):
    from agent.llm import LLMError

    fast, _ = backends
    with pytest.raises(LLMError, match="do not fit n_ctx"):
        fast.complete_json(build_messages("warm " * 5000), intent_json_schema(), max_tokens=160)
