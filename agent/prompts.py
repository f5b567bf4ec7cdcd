"""The planner LLM's instructions and worked examples (few-shot chat turns)."""

from __future__ import annotations

import json

from agent.schemas import Intent

SYSTEM = (
    "You read requests to an audio assistant and extract their meaning as JSON. "
    "action: 'process' when the person wants the audio changed (a device sound and/or tone), "
    "'follow_up' when they react to the last result (more, less, too much, undo, redo, reset, start over), "
    "'question' when they ask about headphones, the track, sound words or what was changed, without asking "
    "for a change ('do the AirPods Max have more bass than the QC45?', 'how loud is this?'), "
    "'off_topic' when it is not about the sound of the audio. "
    "target_device: the headphone/earbud/speaker they want it to sound like, copied as they wrote it, else null. "
    "listening_device: the device they say they listen on or wear, else null (it may be named first: "
    "'I'm wearing X, let me hear it like on Y' has target Y, listening X). "
    "adjustments: each tone change as a sound word (harsh, warm, bright, bass, muddy, boomy, airy, ...) or a "
    "band named without a number (low end, low mids, mids, top end, air) with direction more or less; "
    "'warmer' means warm/more, 'too bright' means bright/less, 'cut the bass' means bass/less, 'clean up the "
    "low mids' means low mids/less; direction not for a word they want to avoid ('warmer but not muddy': "
    "muddy/not). amount only when they say how much ('a little', 'a lot'), else null. "
    "Write descriptors in English, translating other languages. "
    "band_edits: only when the person gives a number of dB (never without one): frequency_hz if they name one, else band "
    "(sub, bass, low mids, mids, presence, treble, air), and gain_db as said (negative for cut/reduce). "
    "stem_edits: only when they name a part of the mix: vocals (voice, singer), drums (percussion), "
    "bass (bass guitar, bass line; plain 'more bass' is a tone word, not a stem) or other (guitars, piano, keys, synths); "
    "operation louder, quieter, mute (remove it; 'karaoke' or 'instrumental' mutes vocals), solo (only that part; "
    "'a cappella' solos vocals), or tone when the tone words are about that part only. "
    "follow_up 'compare' when they want to hear or compare with the original, 'accept' when they only say "
    "it is good or thank you. "
    "A part mentioned only to keep it as it is gets no stem edit. "
    "Never invent a device, word or number the person did not say."
)

EXAMPLES: list[tuple[str, dict]] = [
    (
        "make the vocals less harsh",
        {"action": "process", "adjustments": [{"descriptor": "harsh", "direction": "less", "amount": None}],
         "stem_edits": [{"stem": "vocals", "operation": "tone"}]},
    ),
    (
        "karaoke version please, and the drums a bit quieter",
        {"action": "process", "stem_edits": [{"stem": "vocals", "operation": "mute"},
                                             {"stem": "drums", "operation": "quieter", "amount": "a little"}]},
    ),
    (
        "turn up the bass guitar",
        {"action": "process", "stem_edits": [{"stem": "bass", "operation": "louder"}]},
    ),
    (
        "make this sound like it's on my Pixel Buds, less shrill",
        {"action": "process", "target_device": "Pixel Buds", "listening_device": None,
         "adjustments": [{"descriptor": "shrill", "direction": "less", "amount": None}], "band_edits": [],
         "follow_up": "none"},
    ),
    (
        "warmer please, and a lot more bass",
        {"action": "process", "target_device": None, "listening_device": None,
         "adjustments": [{"descriptor": "warm", "direction": "more", "amount": None},
                         {"descriptor": "bass", "direction": "more", "amount": "a lot"}], "band_edits": [],
         "follow_up": "none"},
    ),
    (
        "how would this sound on Beyerdynamic DT 770 headphones? I'm listening on my Galaxy Buds",
        {"action": "process", "target_device": "Beyerdynamic DT 770", "listening_device": "Galaxy Buds",
         "adjustments": [], "band_edits": [], "follow_up": "none"},
    ),
    (
        "it's a little too boomy",
        {"action": "process", "target_device": None, "listening_device": None,
         "adjustments": [{"descriptor": "boomy", "direction": "less", "amount": "a little"}], "band_edits": [],
         "follow_up": "none"},
    ),
    (
        "clean up the low mids, warmer but not muddy",
        {"action": "process", "target_device": None, "listening_device": None,
         "adjustments": [{"descriptor": "low mids", "direction": "less", "amount": None},
                         {"descriptor": "warm", "direction": "more", "amount": None},
                         {"descriptor": "muddy", "direction": "not", "amount": None}], "band_edits": [],
         "follow_up": "none"},
    ),
    (
        "cut 300 Hz by 2 dB and give me +3 dB of treble",
        {"action": "process", "target_device": None, "listening_device": None, "adjustments": [],
         "band_edits": [{"frequency_hz": 300, "band": None, "gain_db": -2},
                        {"frequency_hz": None, "band": "treble", "gain_db": 3}], "follow_up": "none"},
    ),
    (
        "a bit more",
        {"action": "follow_up", "target_device": None, "listening_device": None, "adjustments": [], "band_edits": [], "follow_up": "more"},
    ),
    (
        "that's too much",
        {"action": "follow_up", "target_device": None, "listening_device": None, "adjustments": [], "band_edits": [], "follow_up": "less"},
    ),
    (
        "undo that",
        {"action": "follow_up", "target_device": None, "listening_device": None, "adjustments": [], "band_edits": [], "follow_up": "undo"},
    ),
    (
        "go back to the original",
        {"action": "follow_up", "target_device": None, "listening_device": None, "adjustments": [], "band_edits": [],
         "follow_up": "reset"},
    ),
    (
        "let me hear the original again",
        {"action": "follow_up", "target_device": None, "listening_device": None, "adjustments": [], "band_edits": [],
         "follow_up": "compare"},
    ),
    (
        "does the Sony WH-1000XM5 have more bass than the AirPods Max?",
        {"action": "question", "target_device": None, "listening_device": None, "adjustments": [], "band_edits": [],
         "follow_up": "none"},
    ),
    (
        "what's the capital of France?",
        {"action": "off_topic", "target_device": None, "listening_device": None, "adjustments": [], "band_edits": [], "follow_up": "none"},
    ),
]


def build_messages(request: str) -> list[dict]:
    """Chat messages for one request: system text, the worked examples, then the request.

    The fixed prefix (system + examples) is identical on every call, so llama.cpp reuses its
    KV cache and only the request's tokens are processed.
    """
    messages = [{"role": "system", "content": SYSTEM}]
    for text, answer in EXAMPLES:
        messages.append({"role": "user", "content": text})
        full = Intent.model_validate(answer).model_dump()  # every key, in the schema's order
        messages.append({"role": "assistant", "content": json.dumps(full, separators=(",", ":"), ensure_ascii=False)})
    messages.append({"role": "user", "content": request})
    return messages
