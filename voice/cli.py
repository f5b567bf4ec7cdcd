"""``sense voice`` (say it, hear the music change) and ``sense wyoming`` (SENSE as Wyoming services).

    # the whole loop with no microphone or speaker: music and a spoken request in, music and answer out
    sense voice --request out/request.wav --play song.ogg --output out/room.wav --answer out/answer.wav
    # a real room: microphone (sounddevice) and ALSA, wake word "okay nabu"
    sense voice --mic --play song.ogg --room kitchen
    sense wyoming --uri tcp://127.0.0.1:10700 --room kitchen
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from agent.cli import ModelOpt, NoLLMOpt, UrlOpt, console, err, one_line_errors
from speaker.cli import RoomOpt, DbOpt, build_room, open_sink, open_source

TtsOpt = Annotated[str, typer.Option("--tts", help="Spoken answers: auto (Piper joe if installed, else espeak-ng), piper, espeak or none.")]
WakeOpt = Annotated[str, typer.Option("--wake", help="Wake word: okay_nabu, hey_jarvis, hey_mycroft or alexa.")]
NoWakeOpt = Annotated[bool, typer.Option("--no-wake", help="No wake word: every utterance is a request (push-to-talk).")]


def load_voice(room, *, tts: str, wake: str | None):
    """A :class:`voice.pipeline.VoiceAssistant` for ``room`` with Whisper, the TTS backend and the wake word."""
    from voice.asr import SpeechToText
    from voice.pipeline import VoiceAssistant

    with err.status("Loading Whisper base, the voice and the wake word…"):
        speech = None
        if tts != "none":
            from voice.tts import TextToSpeech

            speech = TextToSpeech(backend=tts)
        detector = None
        if wake is not None:
            from voice.wake import WakeWordDetector

            detector = WakeWordDetector(wake)
        return VoiceAssistant(room, SpeechToText(), speech, wake=detector).prepare()


def read_request(path: Path) -> np.ndarray:
    """A spoken request file as float32 16 kHz mono (any rate and channel count soundfile reads)."""
    import soundfile as sf
    import soxr

    from voice.pipeline import ASR_RATE

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    return mono if rate == ASR_RATE else soxr.resample(mono, rate, ASR_RATE).astype(np.float32)


def _print_turn(turn) -> None:
    if turn is None:
        console.print("(no wake word heard: nothing done)")
        return
    lat = turn.latency_s
    order = ("endpointing", "speech_to_text", "understanding", "filter_applied", "to_changed_audio", "answer_first_audio")
    console.print(f"heard [bold]{turn.transcript!r}[/bold] → {turn.answer_text}", highlight=False)
    console.print("  latency " + ", ".join(f"{k} {lat[k]:.2f} s" for k in order if k in lat), highlight=False)


def _write_answers(path: Path, answers: list, force: bool) -> None:
    import soundfile as sf

    from tools.atomic import replace_file, write_new_file

    rate = answers[0].sample_rate
    gap = np.zeros(int(0.3 * rate), dtype=np.float32)
    audio = np.concatenate([x for a in answers for x in (a.samples.astype(np.float32), gap)])
    write = (lambda tmp: sf.write(tmp, audio, rate, subtype="PCM_16", format="WAV"))
    (replace_file if force else write_new_file)(path, write)
    console.print(f"answer → {path} ({len(audio) / rate:.1f} s)")


def _hear_all(assistant, requests: list[Path], at: float, live: str | None) -> list:
    """Hear the live input (``mic`` / ``stdin``) or each request file (the first after ``at`` s of music);
    print each turn. Returns the spoken answers."""
    import time

    answers = []
    if live is not None:
        from voice.mic import listen_microphone, listen_stdin

        for turn in assistant.listen(listen_microphone() if live == "mic" else listen_stdin()):
            _print_turn(turn)
    for path in requests:
        time.sleep(max(0.0, at - (time.monotonic() - assistant.room.started_at)))
        turn = assistant.hear(read_request(path))
        _print_turn(turn)
        if turn is not None and turn.answer is not None:
            answers.append(turn.answer)
    return answers


def voice(
    request: Annotated[Optional[list[Path]], typer.Option("--request", help="A spoken request (WAV/FLAC/...); repeat for several.")] = None,
    mic: Annotated[bool, typer.Option("--mic", help="Listen on the microphone (needs sounddevice and PortAudio).")] = False,
    stdin: Annotated[bool, typer.Option("--stdin", help="Listen to raw 16 kHz mono s16le PCM on stdin (arecord).")] = False,
    play: Annotated[Optional[list[str]], typer.Option("--play", help="Music the room plays (files, in order).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the room's output to this WAV.")] = None,
    aplay: Annotated[Optional[str], typer.Option("--aplay", help="ALSA device for the room's output (default when no --output).")] = None,
    answer: Annotated[Optional[Path], typer.Option("--answer", help="Write the spoken answers to this WAV.")] = None,
    at: Annotated[float, typer.Option("--at", help="Seconds of music before the first request is heard.")] = 3.0,
    seconds: Annotated[float, typer.Option("--seconds", help="Music to play in all, s (the output's length).")] = 20.0,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output and --answer.")] = False,
    room: RoomOpt = "default", db: DbOpt = None, tts: TtsOpt = "auto", wake: WakeOpt = "okay_nabu",
    no_wake: NoWakeOpt = False,
    mpd: Annotated[Optional[str], typer.Option("--mpd", help="MPD at HOST:PORT for pause/next/volume.")] = None,
    speaker_model: Annotated[Optional[str], typer.Option("--speaker-model", help="The room's loudspeaker.")] = None,
    camilladsp: Annotated[Optional[str], typer.Option("--camilladsp", help="Push every change to CamillaDSP at ws://HOST:PORT.")] = None,
    no_llm: NoLLMOpt = False, model: ModelOpt = None, llm_url: UrlOpt = None,
) -> None:
    """Voice control of a room: wake word → end of speech → Whisper → the room's agent → a spoken answer.

    With --request files the whole loop runs without a microphone or speaker: the music plays into
    --output at real time, each request is heard after --at seconds, the change is applied live, and
    the answers go to --answer.
    """
    from tools.errors import SenseError

    with one_line_errors():
        if not request and not mic and not stdin:
            raise SenseError("give --request FILE (a spoken request), --mic or --stdin")
        if not play:
            raise SenseError("give --play MUSIC (what the room plays)")
        the_room = build_room(room, db, no_llm=no_llm, model=model, llm_url=llm_url, mpd=mpd,
                              camilladsp=camilladsp, speaker_model=speaker_model)
        assistant = load_voice(the_room, tts=tts, wake=None if no_wake else wake)
        with err.status("Loading the room's agent…"):
            _ = the_room.engine
        the_room.play(open_source(play, None, 2), open_sink(output, None, aplay, force), max_seconds=seconds,
                      pace=1.0)
        answers = _hear_all(assistant, request or [], at, live="mic" if mic else "stdin" if stdin else None)
        report = the_room.wait()
        if report is not None:
            console.print(f"room {room!r}: played {report.seconds:.1f} s with {len(report.changes)} live changes"
                          + (f" → {output}" if output else ""))
        if answer is not None and answers:
            _write_answers(answer, answers, force)


def wyoming(
    uri: Annotated[str, typer.Option("--uri", help="tcp://HOST:PORT, unix://PATH or stdio://")] = "tcp://127.0.0.1:10700",
    play: Annotated[Optional[list[str]], typer.Option("--play", help="Music the room plays while serving (files).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the room's output to this WAV.")] = None,
    aplay: Annotated[Optional[str], typer.Option("--aplay", help="ALSA device for the room's output.")] = None,
    room: RoomOpt = "default", db: DbOpt = None, tts: TtsOpt = "auto",
    mpd: Annotated[Optional[str], typer.Option("--mpd", help="MPD at HOST:PORT for pause/next/volume.")] = None,
    no_llm: NoLLMOpt = False, model: ModelOpt = None, llm_url: UrlOpt = None,
) -> None:
    """Serve SENSE as Wyoming services: describe, transcribe (Whisper), synthesize (Piper/espeak) and
    transcript → handled (the request applied to the room)."""
    import asyncio
    import logging

    from voice.wyoming_server import serve

    logging.basicConfig(level=logging.WARNING)
    with one_line_errors():
        the_room = build_room(room, db, no_llm=no_llm, model=model, llm_url=llm_url, mpd=mpd, camilladsp=None,
                              speaker_model=None)
        assistant = load_voice(the_room, tts=tts, wake=None)
        _ = the_room.engine
        if play:
            the_room.play(open_source(play, None, 2), open_sink(output, None, aplay, False), pace=1.0)
        if not uri.startswith("stdio"):
            err.print(f"SENSE Wyoming services on {uri} (room {room!r}); Ctrl-C stops")
        try:
            asyncio.run(serve(assistant, uri))
        except KeyboardInterrupt:
            pass
        finally:
            the_room.stop()
