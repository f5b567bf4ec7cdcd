"""The spoken-command evaluation: does a spoken request, heard over music, do the right thing in a room?

``python -m eval.voice`` renders every utterance of ``eval/voice/commands.yaml`` with every voice of
``eval/voice/voices.yaml`` (Piper joe and espeak-ng voices at several speeds), mixes it with the
music the room plays (0-10 dB below the voice, drawn per render) and room noise (pink, 30 dB below
the voice), and runs the real voice loop on it: Silero VAD endpointing, Whisper base, the room's
commands and agent, the live filter, the spoken answer. Each render is judged on

- **intent**: the room's reply action is the expected one (a room command's kind, ``tone``,
  ``answer``, ``not_live`` ...), and for a tone request the room's filter moved the named band the
  named way (>= 1 dB against 500 Hz-2 kHz), for a device request the named device was applied,
  and no filter exceeds the hearing-safety cap;
- **undo**: after a change, "undo" restores the room's filter response to within 0.1 dB;
- **latency**: end of speech to changed audio (endpointing, speech-to-text, understanding, filter
  applied incl. output block) and the spoken answer's first audio, per path (room command / the
  agent's fast path / the LLM).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

HERE = Path(__file__).resolve().parent
COMMANDS = HERE / "commands.yaml"
VOICES = HERE / "voices.yaml"


class Expect(BaseModel):
    """What an utterance must do (see commands.yaml's header)."""

    model_config = ConfigDict(extra="forbid")
    action: str | list[str]
    band: tuple[float, float] | None = None
    direction: str | None = None
    device: str | None = None
    max_gain_db: float | None = None
    changed: bool | None = None

    def actions(self) -> list[str]:
        return [self.action] if isinstance(self.action, str) else list(self.action)

    def must_change(self) -> bool:
        """Whether the room's sound must change (default: tone and volume commands do)."""
        if self.changed is not None:
            return self.changed
        return self.actions()[0] in ("tone", "volume_up", "volume_down", "volume_max", "mute", "reset", "next",
                                     "stop")


class Command(BaseModel):
    """One intent and the ways of saying it."""

    model_config = ConfigDict(extra="forbid")
    id: str
    expect: Expect
    say: list[str] = Field(min_length=1)


class VoiceSpec(BaseModel):
    """One test voice: Piper (``voice`` None: the joe voice) or an espeak-ng voice at a rate (1.0 = 175 wpm)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    backend: str
    voice: str | None = None
    rate: float = 1.0


def load_commands(path: Path = COMMANDS) -> list[Command]:
    """The command set."""
    import yaml

    return [Command.model_validate(c) for c in yaml.safe_load(path.read_text(encoding="utf-8"))["commands"]]


def load_voices(path: Path = VOICES) -> list[VoiceSpec]:
    """The test voices."""
    import yaml

    return [VoiceSpec.model_validate(v) for v in yaml.safe_load(path.read_text(encoding="utf-8"))["voices"]]
