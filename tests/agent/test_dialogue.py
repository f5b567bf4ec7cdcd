"""The dialogue manager: answers to questions, additive follow-ups, corrections, device roles, stems vs
mix, what cannot be used — every failure the conversation issue lists has a test here (rules or a
scripted LLM), on a real track."""

from __future__ import annotations

import json
import uuid

import pytest

from agent.dialogue import named_in
from agent.engine import Engine
from agent.runtime import Runtime
from tests.agent.turns import read, run_turn, words
from tools.analysis import band_energy_change_db


class ScriptedLLM:
    """Test double for the planner LLM: answers every request with the intent scripted for it."""

    name, load_seconds = "scripted", 0.0

    def __init__(self, intents: dict[str, dict]):
        self.intents = intents

    def complete_json(self, messages, schema, max_tokens=200):
        full = {"action": "process", "target_device": None, "listening_device": None, "adjustments": [],
                "band_edits": [], "stem_edits": [], "follow_up": "none"}
        return json.dumps({**full, **self.intents[messages[-1]["content"]]})


def scripted_engine(rt_rules, intents: dict[str, dict]) -> Engine:
    rt = Runtime(rt_rules.store, rt_rules.devices, rt_rules.prior, rt_rules.prefs, ScriptedLLM(intents))
    return Engine(rt, fast_path=False)


def conversation(engine, audio, tmp_path, *requests, **kw):
    thread = uuid.uuid4().hex
    return [run_turn(engine, r, audio, thread, output_path=tmp_path / f"t{i}.wav", **kw) for i, r in enumerate(requests)]


# --- replies to a clarifying question ---------------------------------------------------------

def test_a_name_part_answers_the_question(engine, excerpt, tmp_path):
    asked, answered = conversation(engine, excerpt, tmp_path, "make it sound like Apple headphones", "the Max")
    assert asked.status == "question" and "Apple AirPods Max" in asked.reply
    assert answered.status == "processed" and answered.device == "Apple AirPods Max"
    assert answered.understood.path == "answer"


def test_an_ordinal_picks_the_model_named_in_that_place(engine, excerpt, tmp_path):
    asked, answered = conversation(engine, excerpt, tmp_path, "how would it sound on Sony?", "the second one")
    second = named_in(asked.reply, engine.rt.store.devices())[1]
    assert answered.status == "processed" and answered.device == second


def test_a_type_answers_and_the_request_keeps_its_words(engine, excerpt, tmp_path):
    asked, answered = conversation(engine, excerpt, tmp_path, "on my Sony XM4 but with less bass", "the over-ear ones")
    assert asked.status == "question"
    assert answered.device == "Sony WH-1000XM4" and [d for _, d in words(answered)] == ["less"]


def test_never_mind_drops_the_question_and_does_the_rest(engine, excerpt, tmp_path):
    asked, rest = conversation(engine, excerpt, tmp_path, "make it sound like a Zorblax 3000", "never mind, just make it warmer")
    assert asked.status == "question"
    assert rest.status == "processed" and rest.device is None and words(rest) == [("warm", "more")]


def test_a_new_request_instead_of_an_answer_is_read_as_a_request(engine, excerpt, tmp_path):
    _, new = conversation(engine, excerpt, tmp_path, "make it sound like my Sony XM4", "less harsh please")
    assert new.status == "processed" and new.device is None and words(new) == [("harsh", "less")]


# --- amounts add up ---------------------------------------------------------------------------

def test_even_warmer_adds_to_the_amount_and_moves_further(engine, excerpt, tmp_path):
    first, second = conversation(engine, excerpt, tmp_path, "make it warmer", "even warmer")
    a1, a2 = first.settings.adjustments[0].amount, second.settings.adjustments[0].amount
    assert a2 == pytest.approx(2 * a1, rel=0.01)
    before, rate = read(first.outputs["audio"])
    after, _ = read(second.outputs["audio"])
    assert band_energy_change_db(before, after, rate)["bass"] > 0.3


def test_a_little_more_of_a_word_adds_half_the_default(engine, excerpt, tmp_path):
    first, second = conversation(engine, excerpt, tmp_path, "more relaxed please", "a little more relaxed")
    a1, a2 = first.settings.adjustments[0].amount, second.settings.adjustments[0].amount
    assert a2 == pytest.approx(1.5 * a1, rel=0.01)


def test_the_opposite_direction_subtracts(engine, excerpt, tmp_path):
    first, second = conversation(engine, excerpt, tmp_path, "a lot brighter", "a little less bright")
    assert second.settings.adjustments[0].direction == "more"
    assert second.settings.adjustments[0].amount == pytest.approx(0.75 * first.settings.adjustments[0].amount, rel=0.01)


def test_instead_replaces_the_words_and_a_correction_starts_from_before(engine, excerpt, tmp_path):
    turns = conversation(engine, excerpt, tmp_path, "more relaxed please", "hmm, actually make it brighter instead")
    assert words(turns[1]) == [("bright", "more")]
    turns = conversation(engine, excerpt, tmp_path, "just a touch brighter", "no, a lot brighter")
    assert turns[1].settings.adjustments[0].amount == pytest.approx(4 * turns[0].settings.adjustments[0].amount, rel=0.01)


def test_redo_after_undo(engine, excerpt, tmp_path):
    turns = conversation(engine, excerpt, tmp_path, "warmer", "now brighter too", "undo", "redo")
    assert [w for w, _ in words(turns[2])] == ["warm"]
    assert [w for w, _ in words(turns[3])] == ["warm", "bright"]


# --- device roles -----------------------------------------------------------------------------

@pytest.mark.parametrize("request_text", [
    "I'm listening on my Sony WH-1000XM4 - make it sound like AirPods Max",
    "I'm wearing my Sony WH-1000XM4. Let me hear it like on AirPods Max",
])
def test_listening_device_named_first_is_not_the_target(engine, excerpt, tmp_path, request_text):
    (turn,) = conversation(engine, excerpt, tmp_path, request_text)
    assert turn.device == "Apple AirPods Max" and turn.settings.listening.name == "Sony WH-1000XM4"
    transfer = turn.plan[0].args
    assert (transfer.reference, transfer.reference_kind) == ("Sony WH-1000XM4", "device")


def test_llm_swapped_roles_are_put_right(rt_rules, excerpt, tmp_path):
    request = "I'm listening on my Sony WH-1000XM4 - make it sound like AirPods Max"
    engine = scripted_engine(rt_rules, {request: {"target_device": "Sony WH-1000XM4", "listening_device": "AirPods Max"}})
    (turn,) = conversation(engine, excerpt, tmp_path, request)
    assert turn.device == "Apple AirPods Max" and turn.settings.listening.name == "Sony WH-1000XM4"


def test_compare_with_a_device_renders_that_device(engine, excerpt, tmp_path):
    turns = conversation(engine, excerpt, tmp_path, "play it like it's coming out of the airpods pro second generation",
                         "compare with the first gen airpods pro")
    assert turns[0].device == "Apple AirPods Pro (2nd generation)"
    assert turns[1].status == "processed" and turns[1].device == "Apple AirPods Pro"


def test_llm_reading_compare_with_a_device_as_the_original_is_put_right(rt_rules, excerpt, tmp_path):
    request = "compare with the first gen airpods pro"
    engine = scripted_engine(rt_rules, {request: {"action": "follow_up", "follow_up": "compare"}})
    (turn,) = conversation(engine, excerpt, tmp_path, request)
    assert turn.status == "processed" and turn.device == "Apple AirPods Pro"


def test_a_listening_device_in_passing_does_not_block_a_tone_change(engine, excerpt, tmp_path):
    (turn,) = conversation(engine, excerpt, tmp_path, "make it warmer, I'm on my laptop")
    assert turn.status == "processed" and words(turn) == [("warm", "more")]
    assert "laptop" in turn.reply and turn.settings.listening is None


def test_an_unknown_listening_device_still_asks_when_a_transfer_needs_it(engine, excerpt, tmp_path):
    asked, answered = conversation(engine, excerpt, tmp_path,
                                   "I'm listening on Sennheiser HD 600; make it sound like AirPods Max",
                                   "forget my headphones, just AirPods Max")
    assert asked.status == "question" and "HD 600" in asked.reply
    assert answered.status == "processed" and answered.device == "Apple AirPods Max"
    assert answered.settings.listening is None


def test_i_have_corrects_the_target_my_airpods(engine, excerpt, tmp_path):
    turns = conversation(engine, excerpt, tmp_path, "what would this sound like on my AirPods?",
                         "actually I have the AirPods Pro 2")
    assert turns[1].device == "Apple AirPods Pro (2nd generation)"


# --- stems and the mix ------------------------------------------------------------------------

def test_tone_words_go_to_the_stem_their_clause_names(engine, excerpt, tmp_path):
    (turn,) = conversation(engine, excerpt, tmp_path, "make the vocals warmer and the whole thing less harsh")
    assert words(turn) == [("harsh", "less")]
    assert [(m.descriptor, m.direction) for m in turn.settings.stems["vocals"].tone] == [("warm", "more")]
    assert [c.tool for c in turn.plan] == ["separate", "stem_eq", "remix", "equalize", "finalize"]


@pytest.mark.parametrize("request_text, word, stem", [
    ("make the drums punchier", "punchy", "drums"), ("give the strings more air", "air", "strings")])
def test_instrument_tone_words_go_to_the_whole_mix(engine, excerpt, tmp_path, request_text, word, stem):
    (turn,) = conversation(engine, excerpt, tmp_path, request_text)
    assert turn.status == "processed" and not turn.settings.stems
    assert [c.tool for c in turn.plan] == ["equalize", "finalize"]
    assert turn.plan[0].args.descriptor.startswith(word[:4]) and stem in turn.reply


def test_a_voice_mentioned_only_to_protect_it_is_not_muted(rt_rules, excerpt, tmp_path):
    request = "make it brighter but keep the voice as it is"
    engine = scripted_engine(rt_rules, {request: {
        "adjustments": [{"descriptor": "bright", "direction": "more", "amount": None}],
        "stem_edits": [{"stem": "vocals", "operation": "mute", "amount": None, "gain_db": None}]}})
    (turn,) = conversation(engine, excerpt, tmp_path, request)
    assert turn.status == "processed" and not turn.settings.stems and words(turn) == [("bright", "more")]


def test_bring_her_up_is_the_singer_not_an_invented_word(rt_rules, excerpt, tmp_path):
    request = "bring her up"
    engine = scripted_engine(rt_rules, {request: {"adjustments": [{"descriptor": "presence", "direction": "more",
                                                                   "amount": None}]}})
    (turn,) = conversation(engine, excerpt, tmp_path, request)
    assert turn.status == "processed" and words(turn) == []
    assert turn.settings.stems["vocals"].gain_db > 0


# --- numbers ----------------------------------------------------------------------------------

def test_a_word_without_a_number_is_no_zero_db_band_edit(rt_rules, excerpt, tmp_path):
    request = "the low end is really muddy, can you clean it up?"
    engine = scripted_engine(rt_rules, {request: {
        "adjustments": [{"descriptor": "muddy", "direction": "less", "amount": None}],
        "band_edits": [{"frequency_hz": None, "band": "low mids", "gain_db": 0}]}})
    (turn,) = conversation(engine, excerpt, tmp_path, request)
    assert turn.status == "processed" and turn.settings.band_edits == [] and words(turn) == [("muddy", "less")]
    assert "dropped band edits" in " ".join(turn.understood.notes)


@pytest.mark.parametrize("request_text", ["give me +30 dB of treble", "boost the treble by 30 decibels"])
def test_a_number_over_the_cap_is_capped_not_refused(engine, excerpt, tmp_path, request_text):
    (turn,) = conversation(engine, excerpt, tmp_path, request_text)
    assert turn.status == "processed"
    move = turn.settings.band_edits[0]
    assert (move.requested_gain_db, move.gain_db, move.capped) == (30.0, 12.0, True)
    assert "capped it at +12 dB" in turn.reply


def test_llm_words_the_request_does_not_say_are_dropped(rt_rules, excerpt, tmp_path):
    request = "make it warmer"
    engine = scripted_engine(rt_rules, {request: {"adjustments": [
        {"descriptor": "warm", "direction": "more", "amount": None},
        {"descriptor": "sparkle", "direction": "more", "amount": None}]}})
    (turn,) = conversation(engine, excerpt, tmp_path, request)
    assert words(turn) == [("warm", "more")]


# --- a turn never crashes ---------------------------------------------------------------------

def test_a_failing_backend_falls_back_to_the_rules(rt_rules, excerpt, tmp_path):
    from agent.llm import LLMError

    class Broken:
        name, load_seconds = "broken", 0.0

        def complete_json(self, messages, schema, max_tokens=200):
            raise LLMError("llama.cpp failed on this prompt: could not broadcast input array from shape (208,) into shape (0,)")

    engine = Engine(Runtime(rt_rules.store, rt_rules.devices, rt_rules.prior, rt_rules.prefs, Broken()), fast_path=False)
    (turn,) = conversation(engine, excerpt, tmp_path, "give me +4 dB of treble")
    assert turn.status == "processed" and turn.understood.path == "rules"
    assert turn.settings.band_edits[0].gain_db == 4.0


# --- more of how people talk ------------------------------------------------------------------

def test_an_answer_that_fits_several_candidates_narrows_the_question(engine, excerpt, tmp_path):
    asked, narrowed, answered = conversation(engine, excerpt, tmp_path, "make it sound like the Galaxy Buds",
                                             "the pro ones", "the second one")
    assert asked.status == narrowed.status == "question"
    named = named_in(narrowed.reply, engine.rt.store.devices())
    assert len(named) >= 2 and all("Pro" in n for n in named)
    assert answered.status == "processed" and answered.device == named[1]


def test_an_unknown_device_in_passing_does_not_block_a_tone_change(engine, excerpt, tmp_path):
    (turn,) = conversation(engine, excerpt, tmp_path, "sounds too boomy on my car speakers")
    assert turn.status == "processed" and turn.device is None and [d for _, d in words(turn)] == ["less"]
    assert "car speakers" in turn.reply
    (asked,) = conversation(engine, excerpt, tmp_path, "make it sound like a Zorblax 3000, less harsh")
    assert asked.status == "question"  # a device to sound like is asked about


def test_thanks_changes_nothing_and_invites_a_rating(engine, excerpt, tmp_path):
    first, thanks = conversation(engine, excerpt, tmp_path, "less harsh", "perfect, thanks")
    assert thanks.status == "answer" and "Rate it" in thanks.reply
    assert thanks.settings == first.settings


def test_undo_two_steps(engine, excerpt, tmp_path):
    turns = conversation(engine, excerpt, tmp_path, "warmer", "brighter too", "less boomy too", "go back two steps")
    assert [w for w, _ in words(turns[3])] == ["warm"]


def test_louder_explains_the_loudness_match(engine, excerpt, tmp_path):
    (turn,) = conversation(engine, excerpt, tmp_path, "louder")
    assert turn.status == "answer" and "loudness of your original" in turn.reply and "louder vocals" in turn.reply


def test_without_audio_nothing_is_processed_but_the_conversation_goes_on(engine, excerpt, tmp_path):
    thread = uuid.uuid4().hex
    turns = [engine.turn(thread, r, None) for r in ("warmer", "a bit more", "undo", "redo", "use the neural model")]
    assert all(t.status == "answer" and not t.outputs for t in turns)
    assert "give me an audio file" in turns[1].reply
    assert turns[1].settings.adjustments[0].amount == pytest.approx(1.5 * turns[0].settings.adjustments[0].amount)
    processed = engine.turn(thread, "a bit more", excerpt, output_path=tmp_path / "late.wav")
    assert processed.status == "processed" and processed.settings.adjustments[0].descriptor == "warm"


# --- sound words (expert vocabulary) ----------------------------------------------------------

@pytest.mark.parametrize("request_text, word, direction", [
    ("clean up the low mids", "low mids", "less"), ("more top end please", "highs", "more"),
    ("tame the sibilance", "sibilant", "less"), ("the top end is piercing", "piercing", "less"),
    ("it sounds a bit boxy", "boxy", "less"), ("più caldo, per favore", "warm", "more"),
    ("moins brillant", "bright", "less"), ("weniger scharf", "harsh", "less"), ("menos graves", "low end", "less"),
])
def test_sound_words_as_people_say_them_move_their_region(engine, excerpt, tmp_path, request_text, word, direction):
    from eval.words import measured_change_db

    (turn,) = conversation(engine, excerpt, tmp_path, request_text)
    assert turn.status == "processed" and words(turn) == [(word, direction)], (turn.reply, words(turn))
    meaning = engine.rt.words.lookup(word)
    before, rate = read(excerpt)
    after, _ = read(turn.outputs["audio"])
    change = measured_change_db(before, after, rate, (meaning.main.low_hz, meaning.main.high_hz))
    assert (1 if direction == "more" else -1) * meaning.main.sign * change >= 1.0, change


def test_warmer_but_not_muddy_keeps_the_mud_region_level(engine, excerpt, tmp_path):
    from eval.words import measured_change_db

    (turn,) = conversation(engine, excerpt, tmp_path, "make it warmer but not muddy")
    assert words(turn) == [("warm", "more")] and turn.settings.limits == ["muddy"]
    warm_call = next(c for c in turn.plan if c.tool == "equalize" and c.args.descriptor == "warm")
    assert warm_call.args.kept_out and "muddy" in warm_call.args.kept_out
    before, rate = read(excerpt)
    after, _ = read(turn.outputs["audio"])
    mud = engine.rt.words.lookup("muddy").main
    assert measured_change_db(before, after, rate, (mud.low_hz, mud.high_hz)) <= 0.5
    assert measured_change_db(before, after, rate, (100.0, 150.0)) >= 1.0
    assert "kept out of" in turn.reply


def test_a_band_named_without_a_number_is_a_move_not_zero_db(rt_rules, excerpt, tmp_path):
    request = "clean up the low mids"
    engine = scripted_engine(rt_rules, {request: {"band_edits": [{"frequency_hz": None, "band": "low mids", "gain_db": 0}]}})
    (turn,) = conversation(engine, excerpt, tmp_path, request)
    assert turn.settings.band_edits == [] and words(turn) == [("low mids", "less")]
    assert "As you asked" not in turn.reply and "low mids +0.0 dB" not in turn.reply


def test_the_reply_says_which_source_decided(engine, excerpt, tmp_path):
    (turn,) = conversation(engine, excerpt, tmp_path, "less boomy")
    assert "expert term \"boomy\"" in turn.reply and "contributors" in turn.reply
    trace = json.loads(open(turn.outputs["trace"]).read())
    assert trace["adjustments"][0]["source"] == "expert" and "contributors" in trace["adjustments"][0]["why"]
