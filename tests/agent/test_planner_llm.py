"""The real planner LLM (Qwen2.5-Coder-1.5B Q4_K_M, llama.cpp) extracts intents from a test set.

Acceptance: device, descriptor and direction right for >= 90 % of >= 20 requests. Devices are
judged after resolution through the device index; words after mapping through the word→EQ prior
(so "bass" and "bassy" count as the same descriptor).
"""

from __future__ import annotations

from agent.understand import understand

CASES = [
    ("make this sound like it's on my AirPods, less harsh", "process", "Apple AirPods", [("harsh", "less")]),
    ("make it warmer", "process", None, [("warm", "more")]),
    ("less muddy please", "process", None, [("muddy", "less")]),
    ("can you make it brighter", "process", None, [("bright", "more")]),
    ("more bass", "process", None, [("bass", "more")]),
    ("how would this sound on Bose QC35 headphones?", "process", "Bose QuietComfort 35 II", []),
    ("play it like on my Sony WH-1000XM4 but less boomy", "process", "Sony WH-1000XM4", [("boomy", "less")]),
    ("simulate the Galaxy Buds2 Pro", "process", "Samsung Galaxy Buds2 Pro", []),
    ("make it sound like Pixel Buds Pro with a lot more bass", "process", "Google Pixel Buds Pro", [("bass", "more")]),
    ("it's too bright", "process", None, [("bright", "less")]),
    ("tame the harshness", "process", None, [("harsh", "less")]),
    ("what's the weather like today?", "off_topic", None, []),
    ("tell me a joke", "off_topic", None, []),
    ("a bit more", "follow_up", None, []),
    ("undo", "follow_up", None, []),
    ("that's too much", "follow_up", None, []),
    ("make it sound like AirPods Max", "process", "Apple AirPods Max", []),
    ("warmer and less shrill", "process", None, [("warm", "more"), ("shrill", "less")]),
    ("how does it sound on AirPods Pro 2?", "process", "Apple AirPods Pro (2nd generation)", []),
    ("less bass please", "process", None, [("bass", "less")]),
    ("make it punchier", "process", None, [("punchy", "more")]),
    ("make it more airy", "process", None, [("airy", "more")]),
    ("could you make it sound less tinny", "process", None, [("tinny", "less")]),
    ("hazlo más cálido", "process", None, [("warm", "more")]),
    ("mach es weniger scharf", "process", None, [("harsh", "less")]),
    ("go back to the original", "follow_up", None, []),
]


def _judge(rt, case) -> tuple[bool, str]:
    request, action, device, adjustments = case
    u = understand(request, rt.llm)
    intent = u.intent
    got_device = None
    if intent.target_device:
        res = rt.devices.resolve(intent.target_device)
        got_device = res.device if res.status == "resolved" else f"?{intent.target_device}"
    words = lambda pairs: sorted((rt.prior.lookup(w).word, d) for w, d in pairs)  # noqa: E731
    got = words([(a.descriptor, a.direction) for a in intent.adjustments])
    ok = intent.action == action and got_device == device and got == words(adjustments)
    return ok, f"{request!r}: {u.path} action={intent.action} device={got_device} words={got}"


def test_real_planner_intent_accuracy(rt_llm):
    results = [_judge(rt_llm, case) for case in CASES]
    wrong = [line for ok, line in results if not ok]
    accuracy = 1 - len(wrong) / len(CASES)
    print(f"\nplanner intent accuracy {accuracy:.1%} over {len(CASES)} requests; wrong: {wrong}")
    assert len(CASES) >= 20
    assert accuracy >= 0.9, wrong


STEM_CASES = [
    ("make the vocals less harsh", [("vocals", "tone")], [("harsh", "less")]),
    ("karaoke version please", [("vocals", "mute")], []),
    ("quieter drums", [("drums", "quieter")], []),
    ("turn up the bass guitar", [("bass", "louder")], []),
    ("can you make the singer louder", [("vocals", "louder")], []),
    ("remove the drums", [("drums", "mute")], []),
    ("only the vocals please", [("vocals", "solo")], []),
    ("the drums are way too loud", [("drums", "quieter")], []),
    ("make the vocals brighter", [("vocals", "tone")], [("bright", "more")]),
    ("give me an instrumental version", [("vocals", "mute")], []),
]


def test_real_planner_stem_intents(rt_llm):
    """Stem, operation and tone words right for >= 80 % of stem requests; plain "more bass" stays a tone word."""
    wrong = []
    for request, stems, words in STEM_CASES:
        u = understand(request, rt_llm.llm)
        got = sorted((e.stem, e.operation) for e in u.intent.stem_edits)
        got_words = sorted((rt_llm.prior.lookup(a.descriptor).word, a.direction) for a in u.intent.adjustments)
        want_words = sorted((rt_llm.prior.lookup(w).word, d) for w, d in words)
        if u.intent.action != "process" or got != sorted(stems) or got_words != want_words:
            wrong.append(f"{request!r}: {u.path} stems={got} words={got_words}")
    accuracy = 1 - len(wrong) / len(STEM_CASES)
    print(f"\nplanner stem-intent accuracy {accuracy:.1%} over {len(STEM_CASES)} requests; wrong: {wrong}")
    assert accuracy >= 0.8, wrong
    assert not understand("more bass", rt_llm.llm).intent.stem_edits
