"""Run the spoken-command evaluation (see :mod:`eval.voice`); ``python -m eval.voice --help``."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eval.voice import Command, Expect, VoiceSpec, load_commands, load_voices
from knowledge.fr_store import FR_GRID_HZ

ASR_RATE = 16000
LEAD_S, TAIL_S = 0.6, 1.6
"""Silence (music only) before and after each utterance, s (the tail lets the VAD see the end)."""
NOISE_BELOW_DB = 30.0
"""Room noise level under the voice, dB."""
BAND_MIN_DB = 1.0
FAST_PATHS = frozenset({"command", "room", "fast", "answer", ""})
"""Paths that never ask the LLM: room commands, the room's off-topic answer, the agent's fast path. "rules" is one
only without an LLM (with one, the LLM was asked and its reply fell back to the rules)."""


@dataclass
class Result:
    """One render of one utterance and how it went."""

    command: str
    said: str
    voice: str
    music_below_db: float
    heard: str
    action: str
    via: str
    answer: str
    intent_ok: bool
    why: str
    undo_error_db: float | None
    latency_s: dict[str, float] = field(default_factory=dict)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(n), 1.0 / n))
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def mix(speech: np.ndarray, music: np.ndarray, music_below_db: float, rng: np.random.Generator) -> np.ndarray:
    """``speech`` (16 kHz) with music ``music_below_db`` under it and pink room noise, padded with music.

    Levels are RMS over the speech; the result is scaled to peak at -3 dBFS at most.
    """
    lead, tail = int(LEAD_S * ASR_RATE), int(TAIL_S * ASR_RATE)
    n = lead + len(speech) + tail
    start = int(rng.integers(0, max(1, len(music) - n)))
    bed = np.resize(music[start:start + n], n)
    voice = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    level = _rms(speech)
    out = voice + bed * (level / _rms(bed)) * 10 ** (-music_below_db / 20)
    out = out + _pink(n, rng) * level * 10 ** (-NOISE_BELOW_DB / 20)
    return (out * min(1.0, 0.708 / float(np.max(np.abs(out))))).astype(np.float32)


def render(tts_by_voice: dict, spec: VoiceSpec, text: str) -> np.ndarray:
    """``text`` spoken by ``spec``, 16 kHz mono float32."""
    import soxr

    speech = tts_by_voice[spec.name].synthesize(text)
    return soxr.resample(speech.samples, speech.sample_rate, ASR_RATE).astype(np.float32)


def _curve(state) -> np.ndarray:
    from speaker.api import room_curve

    return np.asarray(room_curve(state)["gain_db"])


def judge(expect: Expect, turn, before) -> tuple[bool, str]:
    """Whether the turn did what ``expect`` says, and why not."""
    reply = turn.reply
    action = reply.action if reply is not None else "refused"
    if action not in expect.actions():
        return False, f"action {action}, expected {'/'.join(expect.actions())}"
    if reply is not None and reply.changed != expect.must_change():
        return False, f"changed={reply.changed}, expected {expect.must_change()}"
    if expect.band is not None:
        delta = _curve(reply.state) - _curve(before)
        band = (FR_GRID_HZ >= expect.band[0]) & (FR_GRID_HZ <= expect.band[1])
        mid = (FR_GRID_HZ >= 500) & (FR_GRID_HZ <= 2000)
        move = float(delta[band].mean() - delta[mid].mean())
        if (move if expect.direction == "up" else -move) < BAND_MIN_DB:
            return False, f"{expect.band[0]:g}-{expect.band[1]:g} Hz moved {move:+.1f} dB, expected {expect.direction}"
    if expect.device is not None and expect.device.lower() not in reply.text.lower():
        return False, f"device: {reply.text[:60]!r} does not name {expect.device}"
    if expect.max_gain_db is not None and any(f.gain_db > expect.max_gain_db + 1e-6 for f in reply.state.filters):
        return False, f"a filter above {expect.max_gain_db} dB"
    return True, ""


def _undo_error(room, before) -> float:
    """After a tone change: say undo, return the largest deviation of the restored curve from before, dB."""
    room.handle("undo")
    return float(np.max(np.abs(_curve(room.state) - _curve(before))))


class NullSink:
    """A room output that discards the audio (the evaluation measures the room's filter, not a file)."""

    def open(self, sample_rate: int, channels: int) -> None:
        return None

    def write(self, block: np.ndarray) -> None:
        return None

    def close(self) -> None:
        return None

    def abort(self) -> None:
        return None


@dataclass
class Bench:
    """What every render shares: the engine, the speech models, the music, the room store."""

    engine: object
    asr: object
    tts_by_voice: dict
    track: Path
    music16k: np.ndarray
    folder: Path
    sounds_like: object = None

    def assistant(self, room):
        """A :class:`voice.pipeline.VoiceAssistant` for ``room`` sharing the loaded models (no spoken answer)."""
        from voice.pipeline import VoiceAssistant

        voice = VoiceAssistant(room, self.asr)
        if self.sounds_like is None:
            self.sounds_like = voice.prepare()._sounds_like
        voice._sounds_like = self.sounds_like
        return voice

    @classmethod
    def load(cls, voices: list[VoiceSpec], use_llm: bool, track: Path) -> Bench:
        import soundfile as sf
        import soxr

        from agent.runtime import Runtime
        from speaker.service import room_engine
        from voice.asr import SpeechToText
        from voice.tts import TextToSpeech

        tts = {v.name: TextToSpeech(backend=v.backend, voice=v.voice, rate=v.rate) for v in voices}
        audio, rate = sf.read(track, dtype="float32", always_2d=True)
        music = soxr.resample(audio.mean(axis=1), rate, ASR_RATE).astype(np.float32)
        return cls(room_engine(Runtime.load(use_llm=use_llm)), SpeechToText(), tts, track, music,
                   Path(tempfile.mkdtemp(prefix="sense-voice-eval-")))


def run_one(bench: Bench, store, index: int, command: Command, said: str, spec: VoiceSpec,
            rng: np.random.Generator) -> Result:
    """Render ``said`` in ``spec``'s voice over music, hear it in a fresh playing room, judge it."""
    from speaker.service import PlaylistSource, Room

    below = float(rng.uniform(0.0, 10.0))
    clip = mix(render(bench.tts_by_voice, spec, said), bench.music16k, below, rng)
    room = Room(f"eval-{index}", store, bench.engine)
    room.play(PlaylistSource([bench.track, bench.track]), NullSink(), pace=20.0)
    while room.recent_input() is None:
        time.sleep(0.005)
    try:
        before = room.state
        turn = bench.assistant(room).hear(clip)
        ok, why = judge(command.expect, turn, before)
        undo = _undo_error(room, before) if ok and turn.reply.action == "tone" else None
    finally:
        room.stop()
    reply = turn.reply
    return Result(command.id, said, spec.name, round(below, 1), turn.transcript, reply.action if reply else "refused",
                  reply.via if reply else "", turn.answer_text, ok, why, undo,
                  {k: round(v, 4) for k, v in turn.latency_s.items()})


def evaluate(commands: list[Command], voices: list[VoiceSpec], *, use_llm: bool, track: Path, seed: int = 0,
             progress: bool = True) -> list[Result]:
    """Every utterance in every voice (see :func:`run_one`)."""
    from tqdm import tqdm

    from speaker.room import RoomStore

    bench = Bench.load(voices, use_llm, track)
    rng = np.random.default_rng(seed)
    items = [(c, said, v) for c in commands for said in c.say for v in voices]
    results = []
    with RoomStore(bench.folder / "rooms.sqlite") as store:
        for i, (command, said, spec) in enumerate(tqdm(items, desc="spoken commands", disable=not progress)):
            results.append(run_one(bench, store, i, command, said, spec, rng))
    return results


LATENCY_KEYS = ("endpointing", "speech_to_text", "understanding", "filter_applied", "to_changed_audio",
                "answer_first_audio")


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else float("nan")


def summarise(results: list[Result], llm: bool = True) -> dict:
    """Intent accuracy (overall, per voice), undo error, and latency p50/p95 per path (fast / llm; ``llm``: whether
    the agent had an LLM, so that "rules" replies count as the LLM path)."""
    voices = sorted({r.voice for r in results})
    fast = FAST_PATHS if llm else FAST_PATHS | {"rules"}
    paths = {"fast": [r for r in results if r.via in fast], "llm": [r for r in results if r.via not in fast]}
    undo = [r.undo_error_db for r in results if r.undo_error_db is not None]
    return {
        "renders": len(results), "utterances": len({r.said for r in results}),
        "commands": len({r.command for r in results}), "voices": voices,
        "intent_ok": sum(r.intent_ok for r in results),
        "intent_rate": round(sum(r.intent_ok for r in results) / max(1, len(results)), 4),
        "per_voice": {v: round(np.mean([r.intent_ok for r in results if r.voice == v]), 4) for v in voices},
        "undo_checked": len(undo), "undo_max_error_db": round(max(undo), 4) if undo else None,
        "latency_s": {path: {"n": len(rows), **{k: {"p50": _pct([r.latency_s[k] for r in rows if k in r.latency_s], 50),
                                                     "p95": _pct([r.latency_s[k] for r in rows if k in r.latency_s], 95)}
                                                 for k in LATENCY_KEYS}}
                      for path, rows in paths.items() if rows},
        "failures": [f"{r.voice}: {r.said!r} heard {r.heard!r}: {r.why}" for r in results if not r.intent_ok],
    }


def markdown(summary: dict, seconds: float) -> str:
    """The intent and latency tables for docs/VOICE.md."""
    lines = [f"{summary['renders']} renders ({summary['utterances']} utterances of {summary['commands']} commands x "
             f"{len(summary['voices'])} voices), music 0-10 dB below the voice plus room noise; {seconds:.0f} s.", "",
             "| voice | right intent |", "|---|---|"]
    lines += [f"| {v} | {100 * rate:.1f} % |" for v, rate in summary["per_voice"].items()]
    lines += [f"| **all** | **{100 * summary['intent_rate']:.1f} %** ({summary['intent_ok']}/{summary['renders']}) |", "",
              f"Undo after a change: largest deviation of the restored response {summary['undo_max_error_db']} dB "
              f"({summary['undo_checked']} changes).", "",
              "| path | n | " + " | ".join(LATENCY_KEYS) + " |", "|---|---|" + "---|" * len(LATENCY_KEYS)]
    for path, row in summary["latency_s"].items():
        cells = [f"{row[k]['p50']:.2f} / {row[k]['p95']:.2f}" for k in LATENCY_KEYS]
        lines.append(f"| {path} | {row['n']} | " + " | ".join(cells) + " |")
    lines += ["", "Latency cells: p50 / p95 seconds; `to_changed_audio` = endpointing + speech-to-text + "
              "understanding + filter applied (incl. one output block)."]
    return "\n".join(lines)


def write_report(folder: Path, results: list[Result], summary: dict) -> Path:
    """``report.json`` (every render and the summary) in ``folder``."""
    from tools.atomic import replace_file

    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"summary": summary, "results": [asdict(r) for r in results]}, indent=1)
    return replace_file(folder / "report.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
