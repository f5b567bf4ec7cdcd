"""The saved KV state of the prompt prefix: a restored state must not break longer prompts.

Regression: ``Llama.load_state`` adopted the saved token ids (only the saved tokens) as its token
buffer, so in a new process every prompt longer than the saved one crashed inside llama.cpp with
"could not broadcast input array from shape (208,) into shape (0,)" (4 of 161 eval turns).
Runs the real 0.5B planner (the 1.5B one behaves the same; the bug is in the state handling).
"""

from __future__ import annotations

from agent.llm import LlamaCppBackend
from agent.prompts import build_messages
from agent.schemas import Intent, intent_json_schema


def test_restored_prefix_state_takes_longer_prompts(small_model, tmp_path):
    schema = intent_json_schema()
    first = LlamaCppBackend(small_model, n_ctx=4096, state_dir=tmp_path)
    Intent.model_validate_json(first.complete_json(build_messages("warmer"), schema, max_tokens=60))
    saved = list(tmp_path.glob("*.npz"))
    assert len(saved) == 1
    del first
    # a new process: restores the prefix, then gets requests much longer than the saved prompt
    second = LlamaCppBackend(small_model, n_ctx=4096, state_dir=tmp_path)
    long_request = ("I'm listening on my Sony WH-1000XM4 and I would like you to make this track sound like it is "
                    "playing on the Apple AirPods Max, but please also make it a little less harsh, a bit warmer, "
                    "cut 250 Hz by 3 dB and give me +4 dB of treble, and keep the vocals exactly as they are.")
    for request in ("give me +4 dB of treble", long_request, "order me a pizza with extra cheese"):
        reply = second.complete_json(build_messages(request), schema, max_tokens=120)
        assert reply.strip().startswith("{"), reply
