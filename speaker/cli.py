"""``sense speaker``: run a room's speaker service, talk to it, list loudspeaker models, export its filter.

    sense speaker serve song.ogg --room kitchen --output out.wav --realtime     # a room, no sound card
    sense speaker serve - --rate 44100 --fifo /tmp/snapfifo --mpd 127.0.0.1:6600  # MPD pipe -> Snapcast
    sense speaker say "it's too boomy" --room kitchen                          # to a running service
    sense speaker models | sense speaker set-model "KEF LS50" --room kitchen
    sense speaker export kitchen.yml --room kitchen [--camilladsp ws://127.0.0.1:1234]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli import ModelOpt, NoLLMOpt, UrlOpt, console, err, one_line_errors

speaker_app = typer.Typer(help="Home speaker: play through a room's live SENSE filter and change it by request.",
                          no_args_is_help=True)
DEFAULT_PORT = 8765
RoomOpt = Annotated[str, typer.Option("--room", help="The room (its settings, undo stack and log).")]
DbOpt = Annotated[Optional[Path], typer.Option("--db", help="Room store (default SENSE_HOME/speaker.sqlite).")]
ApiOpt = Annotated[str, typer.Option("--api", help="The speaker service's control API.")]


def open_sink(output: Path | None, fifo: Path | None, aplay: str | None, force: bool):
    """The sink for ``serve``/``voice``: a WAV file, a FIFO, or aplay (default device when none is given)."""
    from speaker.stream import AplaySink, PipeSink, WavSink

    if output is not None:
        return WavSink(output, overwrite=force)
    if fifo is not None:
        return PipeSink(fifo)
    return AplaySink(aplay or "default")


def open_source(inputs: list[str], rate: int | None, channels: int):
    """A playlist of files, or raw s16le PCM on stdin for ``-`` (needs ``rate``)."""
    import sys

    from speaker.service import PlaylistSource
    from speaker.stream import PcmSource, StreamError

    if inputs == ["-"]:
        if rate is None:
            raise StreamError("raw PCM on stdin needs --rate (and --channels)")
        return PcmSource(sys.stdin.buffer, rate, channels, "s16le")
    return PlaylistSource(inputs)


def build_room(room: str, db: Path | None, *, no_llm: bool, model, llm_url, mpd: str | None,
               camilladsp: str | None, speaker_model: str | None):
    """A :class:`speaker.service.Room` with its store, engine loader, speakers, MPD and CamillaDSP."""
    from agent.runtime import Runtime
    from knowledge.speakers import SpeakerStore
    from speaker.room import RoomStore
    from speaker.service import Room, room_engine

    store, speakers = RoomStore(db), SpeakerStore.load()
    if speaker_model is not None:
        name = speakers.resolve(speaker_model).name
        store.apply(room, store.load(room).changed(speaker_model=name), f"speaker model {name}")
    transport = None
    if mpd is not None:
        from speaker.mpd import MpdTransport

        host, _, port = mpd.rpartition(":")
        transport = MpdTransport(host or "127.0.0.1", int(port or 6600))
    engine = lambda: room_engine(Runtime.load(model=model, llm_url=llm_url, use_llm=not no_llm))  # noqa: E731
    return Room(room, store, engine, speakers=speakers, transport=transport, camilladsp_url=camilladsp)


def start_api(rooms: dict, port: int):
    """Serve the control API on 127.0.0.1:``port`` in a daemon thread. Returns the uvicorn server."""
    import threading

    import uvicorn

    from speaker.api import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(rooms), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, name="speaker-api", daemon=True).start()
    return server


@speaker_app.command()
def serve(
    inputs: Annotated[list[str], typer.Argument(help="Sound files to play in order, or - for raw s16le PCM on stdin (MPD's pipe output).")],
    room: RoomOpt = "default",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the room's output to this WAV file.")] = None,
    fifo: Annotated[Optional[Path], typer.Option("--fifo", help="Write raw s16le PCM to this FIFO (Snapcast).")] = None,
    aplay: Annotated[Optional[str], typer.Option("--aplay", help="ALSA device for aplay (the default output).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output file.")] = False,
    rate: Annotated[Optional[int], typer.Option("--rate", help="Sample rate of PCM on stdin, Hz.")] = None,
    channels: Annotated[int, typer.Option("--channels", help="Channels of PCM on stdin.")] = 2,
    port: Annotated[int, typer.Option("--port", help="Control API port on 127.0.0.1 (0: none).")] = DEFAULT_PORT,
    mpd: Annotated[Optional[str], typer.Option("--mpd", help="MPD at HOST:PORT for pause/next/volume.")] = None,
    camilladsp: Annotated[Optional[str], typer.Option("--camilladsp", help="Push every change to CamillaDSP at ws://HOST:PORT.")] = None,
    speaker_model: Annotated[Optional[str], typer.Option("--speaker-model", help="The room's loudspeaker (see `sense speaker models`).")] = None,
    seconds: Annotated[Optional[float], typer.Option("--seconds", help="Play at most this many seconds.")] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Play a file into --output at real time (like a room).")] = False,
    db: DbOpt = None, no_llm: NoLLMOpt = False, model: ModelOpt = None, llm_url: UrlOpt = None,
) -> None:
    """Play INPUTS through the room's live filter; requests arrive on the control API (and `sense voice`)."""
    with one_line_errors():
        the_room = build_room(room, db, no_llm=no_llm, model=model, llm_url=llm_url, mpd=mpd,
                              camilladsp=camilladsp, speaker_model=speaker_model)
        server = start_api({room: the_room}, port) if port else None
        the_room.play(open_source(inputs, rate, channels), open_sink(output, fifo, aplay, force), max_seconds=seconds,
                      pace=1.0 if realtime else None)
        if server:
            console.print(f"room {room!r} playing; control API on http://127.0.0.1:{port}/rooms/{room} (Ctrl-C stops)")
        try:
            report = the_room.wait()
        except KeyboardInterrupt:
            report = the_room.stop()
        if report is not None:
            console.print(f"played {report.seconds:.1f} s, {len(report.changes)} live changes")
        if server:
            server.should_exit = True


@speaker_app.command()
def say(text: Annotated[str, typer.Argument(help="The request, e.g. \"it's too boomy\".")],
        room: RoomOpt = "default", api: ApiOpt = f"http://127.0.0.1:{DEFAULT_PORT}") -> None:
    """Send a request to a running speaker service and print its answer."""
    import httpx

    from tools.errors import SenseError

    with one_line_errors():
        try:
            reply = httpx.post(f"{api}/rooms/{room}/request", json={"text": text}, timeout=120.0)
        except httpx.HTTPError as exc:
            raise SenseError(f"no speaker service at {api} ({exc}); start one with `sense speaker serve`") from None
        if reply.status_code != 200:
            raise SenseError(f"the speaker service said {reply.status_code}: {reply.text[:200]}")
        data = reply.json()
        console.print(f"[bold]{data['text']}[/bold]")
        if data["details"]:
            console.print(data["details"], markup=False)


@speaker_app.command()
def models() -> None:
    """List the measured loudspeaker models a room can name (ASR spinoramas)."""
    from knowledge.speakers import SpeakerStore

    with one_line_errors():
        for name in SpeakerStore.load().names():
            console.print(name, markup=False)


@speaker_app.command("set-model")
def set_model(name: Annotated[str, typer.Argument(help="Loudspeaker model (close names resolve).")],
              room: RoomOpt = "default", db: DbOpt = None) -> None:
    """Name the room's loudspeaker: device renderings are then made relative to it."""
    from knowledge.speakers import SpeakerStore
    from speaker.room import RoomStore

    with one_line_errors():
        speaker = SpeakerStore.load().resolve(name)
        with RoomStore(db) as store:
            store.apply(room, store.load(room).changed(speaker_model=speaker.name), f"speaker model {speaker.name}")
        console.print(f"room {room!r} plays on a {speaker.name} (low-frequency limit {speaker.bass_limit_hz:.0f} Hz)")


@speaker_app.command()
def export(path: Annotated[Path, typer.Argument(help="CamillaDSP YAML file to write (the FIR WAV goes beside it).")],
           room: RoomOpt = "default", db: DbOpt = None,
           rate: Annotated[int, typer.Option("--rate", help="CamillaDSP's sample rate, Hz.")] = 48000,
           camilladsp: Annotated[Optional[str], typer.Option("--camilladsp", help="Also push it to CamillaDSP at ws://HOST:PORT.")] = None,
           force: Annotated[bool, typer.Option("--force", help="Overwrite PATH.")] = False) -> None:
    """Write the room's current filter as a CamillaDSP config (and optionally push it with SetConfigJson)."""
    from speaker.export import push_room, write_room_yaml
    from speaker.room import RoomStore

    with one_line_errors():
        with RoomStore(db) as store:
            state = store.load(room)
        written = write_room_yaml(state, rate, path, overwrite=force)
        console.print(f"wrote {written} ({len(state.filters)} bands{', device FIR' if state.fir_db else ''})")
        if camilladsp:
            t0 = time.perf_counter()
            push_room(state, rate, camilladsp)
            console.print(f"pushed to {camilladsp} with SetConfigJson ({time.perf_counter() - t0:.2f} s)")
