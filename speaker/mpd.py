"""MPD transport for the home speaker: "pause", "next song", "volume down", "what's playing".

:class:`MpdTransport` is a small typed client over python-mpd2 (``mpd.MPDClient``) that speaks the
MPD protocol (https://mpd.readthedocs.io/en/latest/protocol.html) to a Music Player Daemon. It keeps
one TCP connection behind a lock and opens it lazily, so a speaker starts even while MPD is down;
MPD closes idle connections (``connection_timeout``, 60 s by default), so a command that finds the
connection gone reconnects once and is sent again. Every method reads the player's state back from
MPD after the command and returns it (:class:`MpdStatus`), so callers report what MPD measured, not
what they asked for. :meth:`MpdTransport.run` maps a spoken room command (the kinds in
:data:`TRANSPORT_COMMANDS`) to MPD and returns one short sentence for the spoken answer.

Volume: MPD's volume (0-100 %) needs a mixer. An output without one (a ``null``, ``pipe`` or
``fifo`` output with no ``mixer_type``) reports no volume; ``mixer_type "software"`` in its
``audio_output`` block gives one that scales the samples.

:func:`spawn_test_mpd` starts a throwaway MPD (Debian's ``/usr/bin/mpd``) on a free loopback port
with a ``null``, ``pipe`` or ``fifo`` output and a given list of sound files in its queue, for
tests and demos:

    python -m speaker.mpd --spawn /tmp/mpd-demo song1.ogg song2.flac   # until Ctrl-C
    python -m speaker.mpd --port 6600 next                             # one command -> "Next song: ..."

Errors are :class:`MpdError` with a one-line message: MPD unreachable (refused, unknown host,
timeout), a command MPD rejects (its own message), no mixer for a volume change.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mpd

from tools.errors import SenseError, one_line

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6600
"""MPD's standard TCP port."""
DEFAULT_TIMEOUT_S = 3.0
"""Seconds to wait for MPD to connect or answer one command."""
PROTOCOL_DOCS = "https://mpd.readthedocs.io/en/latest/protocol.html"
FIFO_FORMAT = "44100:16:2"
"""Sample format of a spawned MPD's pipe/fifo output: 44.1 kHz, signed 16-bit little-endian, stereo."""
MPD_BINARY = "/usr/bin/mpd"

PlayState = Literal["play", "pause", "stop"]
OutputKind = Literal["null", "pipe", "fifo"]

TRANSPORT_COMMANDS: Mapping[str, str] = {
    "play": "play (or resume when paused)",
    "pause": "pause 1",
    "stop": "stop",
    "next": "next",
    "previous": "previous",
    "volume_up": "setvol (+5 %)",
    "volume_down": "setvol (-5 %)",
    "now_playing": "currentsong + status",
    "status": "status",
}
"""Room command kinds :meth:`MpdTransport.run` understands -> the MPD protocol command it sends."""
VOLUME_STEP_PERCENT = 5
"""One "louder"/"quieter" through :meth:`MpdTransport.run`, percent of MPD's volume."""


class MpdError(SenseError):
    """MPD cannot be reached, rejected a command, or cannot do it (no mixer); one line that says why."""


@dataclass(frozen=True)
class NowPlaying:
    """The current song in MPD's queue (``currentsong``).

    Attributes:
        file: its URI relative to MPD's music directory.
        title: its title tag, else the file name without extension (underscores as spaces).
        artist: its artist tag, or None. album: its album tag, or None.
        position: its 0-based position in the queue. duration_s: its length, s (None if unknown).
    """

    file: str
    title: str
    artist: str | None = None
    album: str | None = None
    position: int | None = None
    duration_s: float | None = None

    @property
    def label(self) -> str:
        """"title by artist", or just the title."""
        return f"{self.title} by {self.artist}" if self.artist else self.title


@dataclass(frozen=True)
class MpdStatus:
    """MPD's player state (``status``).

    Attributes:
        state: "play", "pause" or "stop".
        volume: 0-100 %, or None when the output has no mixer.
        position: 0-based queue position of the current song, or None (empty queue / none chosen).
        elapsed_s: seconds into the current song, or None. duration_s: its length, s, or None.
        queue_length: songs in the queue. error: MPD's last player error (a file it could not decode), or None.
    """

    state: PlayState
    volume: int | None
    position: int | None = None
    elapsed_s: float | None = None
    duration_s: float | None = None
    queue_length: int = 0
    error: str | None = None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _first(value: Any) -> str | None:
    """A tag value as one string (MPD repeats tags; python-mpd2 then gives a list)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def parse_status(raw: Mapping[str, Any]) -> MpdStatus:
    """An :class:`MpdStatus` from the fields of MPD's ``status`` answer (volume -1 or absent = no mixer)."""
    volume = _int(raw.get("volume"))
    duration = _float(raw.get("duration"))
    if duration is None and ":" in str(raw.get("time", "")):
        duration = _float(str(raw["time"]).split(":")[1])
    state = raw.get("state", "stop")
    return MpdStatus(state=state if state in ("play", "pause") else "stop",
                     volume=volume if volume is not None and volume >= 0 else None,
                     position=_int(raw.get("song")), elapsed_s=_float(raw.get("elapsed")), duration_s=duration,
                     queue_length=_int(raw.get("playlistlength")) or 0, error=_first(raw.get("error")))


def parse_song(raw: Mapping[str, Any]) -> NowPlaying | None:
    """A :class:`NowPlaying` from MPD's ``currentsong`` answer, None when it is empty."""
    file = _first(raw.get("file"))
    if file is None:
        return None
    title = _first(raw.get("title")) or Path(file).stem.replace("_", " ").strip() or file
    duration = _float(raw.get("duration"))
    if duration is None:
        duration = _float(raw.get("time"))
    return NowPlaying(file=file, title=title, artist=_first(raw.get("artist")), album=_first(raw.get("album")),
                      position=_int(raw.get("pos")), duration_s=duration)


def _clock(seconds: float | None) -> str:
    seconds = int(seconds or 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


class MpdTransport:
    """Pause, play, skip and change the volume of an MPD over TCP (protocol: :data:`PROTOCOL_DOCS`).

    Thread-safe: one connection behind a lock, opened on first use, reopened once when MPD has
    closed it. Every transport method returns the :class:`MpdStatus` read back after the command.

    Args:
        host: MPD's address (a name, IPv4/IPv6 address, or a Unix socket path).
        port: its TCP port. timeout_s: seconds to connect or to wait for one answer.
    Raises (every method):
        MpdError: MPD unreachable or not answering within ``timeout_s``; a command it rejected
            (with MPD's message, e.g. "Bad song index"); no mixer for a volume change.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.host, self.port, self.timeout_s = host, int(port), float(timeout_s)
        self._client: mpd.MPDClient | None = None
        self._lock = threading.RLock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"MpdTransport({self.address})"

    # --- connection ---------------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> MpdError:
        if isinstance(exc, ConnectionRefusedError):
            why = "connection refused (is mpd running? check bind_to_address and port in mpd.conf)"
        elif isinstance(exc, socket.gaierror):
            why = f"unknown host ({one_line(exc)})"
        elif isinstance(exc, TimeoutError):
            why = f"no answer within {self.timeout_s:g} s"
        elif isinstance(exc, mpd.ProtocolError):
            why = f"not an MPD server ({one_line(exc)})"
        else:
            why = one_line(exc)
        return MpdError(f"cannot reach MPD at {self.address}: {why}")

    def _connect(self) -> mpd.MPDClient:
        client = mpd.MPDClient()
        client.timeout = self.timeout_s
        try:
            client.connect(self.host, self.port)
        except (OSError, mpd.MPDError) as exc:
            raise self._unreachable(exc) from None
        return client

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            except (OSError, mpd.MPDError):
                pass
            self._client = None

    def close(self) -> None:
        """Close the connection (the next command opens a new one)."""
        with self._lock:
            self._drop()

    def __enter__(self) -> MpdTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, command: str, *args: Any) -> Any:
        """Send one MPD protocol command (python-mpd2 name, e.g. ``"setvol", 40``) and return its parsed answer.

        A connection MPD has closed (idle timeout, restart) is reopened and the command sent once more.

        Raises:
            MpdError: unreachable, timed out, or ``"MPD refused <command>: <MPD's message>"``.
        """
        with self._lock:
            for attempt in (0, 1):
                reused = self._client is not None
                if self._client is None:
                    self._client = self._connect()
                try:
                    return getattr(self._client, command)(*args)
                except mpd.CommandError as exc:
                    raise MpdError(f"MPD refused {command}: {exc.msg or one_line(exc)}") from None
                except TimeoutError as exc:
                    self._drop()
                    raise self._unreachable(exc) from None
                except (mpd.ConnectionError, OSError) as exc:
                    self._drop()
                    if not reused or attempt == 1:
                        raise self._unreachable(exc) from None
        raise AssertionError("unreachable")

    # --- transport ----------------------------------------------------------------------------

    def status(self) -> MpdStatus:
        """The player's state now (``status``)."""
        return parse_status(self.call("status"))

    def now_playing(self) -> NowPlaying | None:
        """The current song (``currentsong``), or None when the queue has none chosen."""
        return parse_song(self.call("currentsong"))

    def play(self, position: int | None = None) -> MpdStatus:
        """Start playing: resume when paused, else ``play`` (from ``position`` in the queue, 0-based, if given)."""
        with self._lock:
            if position is None and self.status().state == "pause":
                self.call("pause", 0)
            elif position is None:
                self.call("play")
            else:
                self.call("play", int(position))
            return self.status()

    def pause(self) -> MpdStatus:
        """Pause (``pause 1``; a no-op when stopped or already paused)."""
        self.call("pause", 1)
        return self.status()

    def stop(self) -> MpdStatus:
        """Stop playback (``stop``)."""
        self.call("stop")
        return self.status()

    def next(self) -> MpdStatus:
        """The next song in the queue (``next``); after the last one MPD stops. MpdError when stopped."""
        self.call("next")
        return self.status()

    def previous(self) -> MpdStatus:
        """The previous song (``previous``); on the first one MPD restarts it. MpdError when stopped."""
        self.call("previous")
        return self.status()

    def set_volume(self, percent: int) -> int:
        """Set the volume to ``percent`` (clamped to 0-100, ``setvol``); returns the volume MPD reports after it."""
        with self._lock:
            if self.status().volume is None:
                raise self._no_mixer()
            self.call("setvol", max(0, min(100, int(round(percent)))))
            after = self.status().volume
            if after is None:
                raise self._no_mixer()
            return after

    def volume_step(self, delta_percent: int) -> int:
        """Change the volume by ``delta_percent`` points (the result clamped to 0-100); returns MPD's new volume, %.

        Raises:
            MpdError: the output has no mixer (set ``mixer_type "software"`` in its ``audio_output``).
        """
        with self._lock:
            volume = self.status().volume
            if volume is None:
                raise self._no_mixer()
            return self.set_volume(volume + int(round(delta_percent)))

    def _no_mixer(self) -> MpdError:
        return MpdError(f"MPD at {self.address} has no volume control: add mixer_type \"software\" "
                        "to its audio_output in mpd.conf")

    # --- spoken commands ----------------------------------------------------------------------

    def run(self, command: str) -> str:
        """Do one room command (a key of :data:`TRANSPORT_COMMANDS`) and say what MPD did, in one sentence.

        Examples: "Paused.", "Next song: Vibe Ace.", "Volume 45 %.", "Nothing is playing."

        Raises:
            MpdError: an unknown command, or any error of the transport methods.
        """
        actions: dict[str, Callable[[], str]] = {
            "play": self._say_play, "pause": self._say_pause,
            "stop": lambda: "Stopped." if self.stop().state == "stop" else "MPD did not stop.",
            "next": lambda: self._say_skip(+1), "previous": lambda: self._say_skip(-1),
            "volume_up": lambda: f"Volume {self.volume_step(VOLUME_STEP_PERCENT)} %.",
            "volume_down": lambda: f"Volume {self.volume_step(-VOLUME_STEP_PERCENT)} %.",
            "now_playing": lambda: self._say_state(self.status()), "status": self._say_status,
        }
        action = actions.get(command)
        if action is None:
            raise MpdError(f"unknown MPD transport command {command!r} (one of {', '.join(TRANSPORT_COMMANDS)})")
        with self._lock:
            return action()

    def _say_state(self, status: MpdStatus) -> str:
        song = self.now_playing() if status.state != "stop" else None
        if song is None:
            return "Nothing is playing." if status.queue_length else "Nothing is playing: the MPD queue is empty."
        where = f" ({_clock(status.elapsed_s)} of {_clock(status.duration_s)})" if status.duration_s else ""
        return f"{'Playing' if status.state == 'play' else 'Paused on'} {song.label}{where}."

    def _say_play(self) -> str:
        status = self.play()
        if status.state != "play":
            return "Nothing to play: the MPD queue is empty."
        song = self.now_playing()
        return f"Playing {song.label}." if song else "Playing."

    def _say_pause(self) -> str:
        if self.status().state == "stop":
            return "Nothing is playing."
        return "Paused." if self.pause().state == "pause" else "MPD did not pause."

    def _say_skip(self, step: int) -> str:
        if self.status().state == "stop":
            return "Nothing is playing; say play first."
        status = self.next() if step > 0 else self.previous()
        if status.state == "stop":
            return "That was the last song in the queue; stopped."
        song = self.now_playing()
        return f"{'Next' if step > 0 else 'Previous'} song: {song.label if song else 'unknown'}."

    def _say_status(self) -> str:
        status = self.status()
        volume = f", volume {status.volume} %" if status.volume is not None else ""
        return f"{self._say_state(status).rstrip('.')}{volume}."


# --- a throwaway MPD for tests and demos --------------------------------------------------------


@dataclass
class SpawnedMpd:
    """A running throwaway MPD from :func:`spawn_test_mpd`.

    Attributes:
        host, port: where it listens. folder: its files (mpd.conf, log, database, music links).
        process: the ``mpd --no-daemon`` subprocess. uris: the queued songs' URIs, in queue order.
        fifo_path: the FIFO its ``fifo`` output writes raw PCM (:data:`FIFO_FORMAT`) to, or None.
    """

    host: str
    port: int
    folder: Path
    process: subprocess.Popen
    uris: list[str] = field(default_factory=list)
    fifo_path: Path | None = None

    @property
    def conf_path(self) -> Path:
        return self.folder / "mpd.conf"

    @property
    def log_path(self) -> Path:
        return self.folder / "mpd.log"

    def transport(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> MpdTransport:
        """A new :class:`MpdTransport` to this MPD."""
        return MpdTransport(self.host, self.port, timeout_s)

    def log_tail(self, lines: int = 8) -> str:
        """The last lines of its log and stderr, folded to one line (for error messages)."""
        text = ""
        for path in (self.log_path, self.folder / "mpd.stderr"):
            if path.is_file():
                text += path.read_text(errors="replace")
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "(empty log)"


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _output_block(output: OutputKind, fifo_path: Path | None, pipe_command: str) -> str:
    if output == "null":
        lines = ['type "null"', 'name "null"']
    elif output == "pipe":
        lines = ['type "pipe"', 'name "pipe"', f'command "{_quote(pipe_command)}"', f'format "{FIFO_FORMAT}"']
    elif output == "fifo":
        lines = ['type "fifo"', 'name "fifo"', f'path "{_quote(str(fifo_path))}"', f'format "{FIFO_FORMAT}"']
    else:
        raise MpdError(f"unknown MPD output {output!r} (null, pipe or fifo)")
    return "audio_output {\n" + "".join(f"    {line}\n" for line in [*lines, 'mixer_type "software"']) + "}\n"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def write_conf(folder: Path, port: int, output: OutputKind = "null", fifo_path: Path | None = None,
               pipe_command: str = "cat > /dev/null", host: str = DEFAULT_HOST) -> Path:
    """Write ``folder/mpd.conf`` for a throwaway MPD: every file inside ``folder``, loopback only, one output.

    The output has ``mixer_type "software"`` so ``setvol`` works. Returns the config's path.
    """
    paths = {"music_directory": folder / "music", "playlist_directory": folder / "playlists",
             "db_file": folder / "database", "state_file": folder / "state", "pid_file": folder / "mpd.pid",
             "log_file": folder / "mpd.log"}
    (folder / "music").mkdir(parents=True, exist_ok=True)
    (folder / "playlists").mkdir(exist_ok=True)
    text = "".join(f'{key} "{_quote(str(path))}"\n' for key, path in paths.items())
    text += (f'bind_to_address "{host}"\nport "{port}"\nzeroconf_enabled "no"\nauto_update "no"\n'
             'follow_outside_symlinks "yes"\n')
    text += 'decoder {\n    plugin "wildmidi"\n    enabled "no"\n}\n'
    text += _output_block(output, fifo_path, pipe_command)
    conf = folder / "mpd.conf"
    conf.write_text(text)
    return conf


def _link_music(music_dir: Path, music: list[Path]) -> list[str]:
    """Symlink each file into MPD's music directory; returns their URIs (names, de-duplicated)."""
    uris: list[str] = []
    for index, source in enumerate(music):
        source = Path(source).resolve()
        if not source.is_file():
            raise MpdError(f"{source}: no such music file")
        name = source.name if source.name not in uris else f"{index:02d}-{source.name}"
        link = music_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
        uris.append(name)
    return uris


def _wait_until_up(spawned: SpawnedMpd, deadline: float) -> MpdTransport:
    """Poll until MPD answers ``status``; MpdError with the log tail when it exits or the deadline passes."""
    transport = spawned.transport(timeout_s=2.0)
    while True:
        code = spawned.process.poll()
        if code is not None:
            raise MpdError(f"mpd exited with code {code} before answering on port {spawned.port}: {spawned.log_tail()}")
        try:
            transport.status()
            return transport
        except MpdError:
            if time.monotonic() > deadline:
                raise MpdError(f"mpd did not answer on {spawned.host}:{spawned.port} in time: "
                               f"{spawned.log_tail()}") from None
            time.sleep(0.05)


def _update_database(transport: MpdTransport, spawned: SpawnedMpd, deadline: float) -> None:
    """Run ``update`` and wait until no database update is running (they run one after another)."""
    transport.call("update")
    while "updating_db" in transport.call("status"):
        if time.monotonic() > deadline:
            raise MpdError(f"mpd did not finish its database update in time: {spawned.log_tail()}")
        time.sleep(0.05)


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the parent thread dies, so no mpd outlives a killed test."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start(folder: Path, binary: str) -> subprocess.Popen:
    with open(folder / "mpd.stderr", "wb") as err:
        return subprocess.Popen([binary, "--no-daemon", str(folder / "mpd.conf")], stdin=subprocess.DEVNULL,
                                stdout=err, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def spawn_test_mpd(folder: Path, music: list[Path], port: int | None = None, output: OutputKind = "null",
                   fifo_path: Path | None = None, *, pipe_command: str = "cat > /dev/null",
                   startup_timeout_s: float = 15.0) -> Iterator[SpawnedMpd]:
    """Start a throwaway MPD on 127.0.0.1 with ``music`` in its queue (stopped); terminate it on exit.

    Writes ``folder/mpd.conf`` (:func:`write_conf`), links the files into ``folder/music``, runs ``mpd
    --no-daemon``, waits until it answers, runs ``update``, waits for the database, queues the files.
    On Linux MPD also gets SIGTERM when the thread that started it ends or the process is killed:
    start it from a thread that outlives its use (the main thread in tests and demos).

    Args:
        folder: where its config, database, state, log and music links go (created).
        music: sound files MPD can decode (WAV, FLAC, Ogg, MP3 ...).
        port: TCP port; None picks a free one (and retries another when it was taken meanwhile).
        output: "null" (discards audio at the real-time pace), "pipe" (raw PCM to ``pipe_command``'s
            stdin, as fast as it reads: a file plays out in a fraction of its length) or "fifo" (raw PCM into ``fifo_path``, default ``folder/mpd.fifo``), all
            :data:`FIFO_FORMAT`, all with the software mixer.
        startup_timeout_s: seconds for MPD to answer and finish its database update.
    Raises:
        MpdError: no ``mpd`` binary, a missing music file, MPD exiting or not answering (with its log tail).
    """
    binary = MPD_BINARY if os.access(MPD_BINARY, os.X_OK) else shutil.which("mpd")
    if binary is None:
        raise MpdError("mpd is not installed (Debian: apt-get install mpd)")
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    fifo = Path(fifo_path or folder / "mpd.fifo") if output == "fifo" else None
    for attempt in range(3):
        chosen = port if port is not None else free_port()
        write_conf(folder, chosen, output, fifo, pipe_command)
        uris = _link_music(folder / "music", music)
        spawned = SpawnedMpd(DEFAULT_HOST, chosen, folder, _start(folder, binary), uris, fifo)
        try:
            deadline = time.monotonic() + startup_timeout_s
            try:
                transport = _wait_until_up(spawned, deadline)
            except MpdError:
                if port is None and attempt < 2 and spawned.process.poll() is not None:
                    continue  # the free port was taken in between: try another
                raise
            with transport:
                _update_database(transport, spawned, deadline)
                transport.call("clear")
                for uri in uris:
                    transport.call("add", uri)
            yield spawned
            return
        finally:
            _terminate(spawned.process)
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    """``python -m speaker.mpd``: send one room command to an MPD, or run a throwaway MPD until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m speaker.mpd", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", help=f"room command to send ({', '.join(TRANSPORT_COMMANDS)})")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=None,
                        help=f"MPD's port (default {DEFAULT_PORT}; a free one with --spawn)")
    parser.add_argument("--spawn", type=Path, metavar="DIR", help="start a throwaway MPD with its files in DIR")
    parser.add_argument("music", nargs="*", type=Path, default=[], help="with --spawn: files to queue")
    parser.add_argument("--output", choices=["null", "pipe", "fifo"], default="null")
    parser.add_argument("--fifo", type=Path, default=None, help="with --output fifo: the FIFO's path")
    parser.add_argument("--pipe-command", default="cat > /dev/null", help="with --output pipe: the PCM reader")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` runs the clean-up below too
    try:
        if args.spawn is None:
            if args.command not in TRANSPORT_COMMANDS or args.music:
                parser.error(f"give one command ({', '.join(TRANSPORT_COMMANDS)}), or --spawn DIR FILE...")
            print(MpdTransport(args.host, args.port or DEFAULT_PORT).run(args.command))
            return 0
        music = ([Path(args.command)] if args.command else []) + args.music
        with spawn_test_mpd(args.spawn, music, args.port, args.output, args.fifo,
                            pipe_command=args.pipe_command) as spawned:
            print(f"MPD on {spawned.host}:{spawned.port} ({args.output} output), config {spawned.conf_path}; "
                  "Ctrl-C stops it", flush=True)
            print(spawned.transport().run("play"), flush=True)
            spawned.process.wait()
    except MpdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
