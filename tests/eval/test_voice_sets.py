"""The spoken-command sets of ``python -m eval.voice``: sizes the issue asks for, and the paraphrase set
really needs the LLM (no room command and no rule reads it)."""

from __future__ import annotations

from agent.understand import understand
from eval.voice import COMMANDS, load_commands
from speaker.commands import parse


def test_the_main_set_has_60_utterances_of_30_commands():
    commands = load_commands()
    assert len(commands) >= 30 and sum(len(c.say) for c in commands) >= 60


def test_the_paraphrase_set_is_read_by_no_room_command_and_no_rule():
    paraphrases = load_commands(COMMANDS.with_name("paraphrases.yaml"))
    assert paraphrases
    for command in paraphrases:
        for said in command.say:
            assert parse(said) is None, said
            assert understand(said, None).path != "fast", said
