"""Play a stream through a room's live DSP: source -> :class:`tools.live.LiveFilter` -> sink.

Sources give float32 blocks of shape (channels, frames): :class:`FileSource` (any file soundfile
reads: WAV, FLAC, Ogg, MP3 ...), :class:`PcmSource` (raw s16le/f32le PCM on a binary stream, e.g.
MPD's ``pipe`` output on stdin) and :class:`ArraySource` (samples in memory, optionally looped).
Sinks take the filtered blocks: :class:`WavSink` (a WAV file, written under a hidden temp name and
renamed into place on close, so a crash never leaves half a file under the final name),
:class:`PipeSink` (raw PCM to a binary stream or a FIFO such as Snapcast's ``/tmp/snapfifo``) and
:class:`AplaySink` (ALSA through ``aplay``). A pipe or ``aplay`` blocks when its reader is behind,
which paces the player at the audio rate; a file sink runs as fast as the CPU allows.

:class:`Player` runs the loop. Its output is exactly as long as its input, gapless: the filter's
latency (one internal block) is dropped at the start and its :meth:`~tools.live.LiveFilter.flush`
appended at the end. :meth:`Player.apply` may be called from any thread while :meth:`Player.run`
plays: the room's new filters crossfade in (50 ms) and its volume ramps (50 ms) under the ceiling.

Command line: ``python -m speaker.stream INPUT --output OUT.wav [--room NAME] [--db PATH]`` plays a
file (or raw PCM on stdin, ``-``) through a room's stored state; see ``--help``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import soundfile as sf

from speaker.room import RoomState, RoomStore, default_state, default_store_path
from tools.atomic import finish_temp, new_temp, publish
from tools.audio_io import AudioDecodeError, AudioFileNotFoundError
from tools.errors import OutputExistsError, SenseError, one_line
from tools.live import DEFAULT_BLOCK_SIZE, DEFAULT_FADE_S, DEFAULT_RAMP_S, LiveFilter, total_fir
from tools.transfer import minimum_phase_fir

PCM_FORMATS: dict[str, np.dtype] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
"""Raw PCM sample formats: signed 16-bit and 32-bit float, little-endian, channels interleaved."""
APLAY_FORMATS = {"s16le": "S16_LE", "f32le": "FLOAT_LE"}
MAX_CHANNELS = 8
"""Most channels a stream may have."""


class StreamError(SenseError):
    """A stream cannot be played: bad source parameters, an output that cannot be opened or went away."""


class SinkError(StreamError, OSError):
    """The output failed: ``aplay`` missing or exiting with an error, a FIFO's reader gone, a bad path."""


def _check_format(sample_rate: int, channels: int) -> None:
    if not 1000 <= int(sample_rate) <= 768_000:
        raise StreamError(f"sample rate must be 1000-768000 Hz, got {sample_rate}")
    if not 1 <= int(channels) <= MAX_CHANNELS:
        raise StreamError(f"channels must be 1-{MAX_CHANNELS}, got {channels}")


# --- sources ------------------------------------------------------------------------------------


class Source(Protocol):
    """Where the player reads audio from.

    Attributes:
        sample_rate: Hz.
        channels: channel count.
        name: what is playing (a file name, ``stdin`` ...).
    """

    sample_rate: int
    channels: int
    name: str

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames, float32 (channels, n); fewer only at the end, n == 0 when it is over."""

    def close(self) -> None:
        """Release the source."""


class FileSource:
    """A sound file read block by block (soundfile: WAV, FLAC, Ogg Vorbis, MP3, AIFF ...).

    Args:
        path: the file.
    Raises:
        AudioFileNotFoundError: no such file. AudioDecodeError: not audio, or too many channels.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AudioFileNotFoundError(f"{self.path}: no such audio file")
        try:
            self._file = sf.SoundFile(self.path)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioDecodeError(f"{self.path}: not a readable audio file ({one_line(exc)})") from None
        self.sample_rate, self.channels, self.name = int(self._file.samplerate), int(self._file.channels), self.path.name
        try:
            _check_format(self.sample_rate, self.channels)
        except StreamError as exc:
            self._file.close()
            raise AudioDecodeError(f"{self.path}: {exc}") from None

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames, float32 (channels, n); n == 0 at the end.

        Raises:
            AudioDecodeError: the file is damaged at this point.
        """
        try:
            data = self._file.read(int(frames), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioDecodeError(f"{self.path}: cannot decode ({one_line(exc)})") from None
        return np.ascontiguousarray(data.T)

    def close(self) -> None:
        self._file.close()


class PcmSource:
    """Raw interleaved PCM on a binary stream (stdin, a pipe, a socket file): MPD's ``pipe`` output.

    Args:
        stream: readable binary stream (e.g. ``sys.stdin.buffer``); never closed by this class.
        sample_rate: Hz. channels: 1-8. fmt: ``s16le`` or ``f32le`` (see :data:`PCM_FORMATS`).
        name: what to call it in logs.
    Raises:
        StreamError: bad sample rate, channel count or format.
    """

    def __init__(self, stream: BinaryIO, sample_rate: int, channels: int, fmt: str = "s16le",
                 name: str = "stdin") -> None:
        _check_format(sample_rate, channels)
        if fmt not in PCM_FORMATS:
            raise StreamError(f"PCM format must be one of {sorted(PCM_FORMATS)}, got {fmt!r}")
        self._stream, self._dtype = stream, PCM_FORMATS[fmt]
        self.sample_rate, self.channels, self.name = int(sample_rate), int(channels), name
        self.dropped_bytes = 0
        """Bytes of an incomplete last frame at the end of the stream (not played)."""

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames, float32 (channels, n) in [-1, 1] for s16le; blocks until they arrive
        or the stream ends (n == 0 after the end)."""
        frame_bytes = self._dtype.itemsize * self.channels
        want, chunks, got = int(frames) * frame_bytes, [], 0
        while got < want:
            chunk = self._stream.read(want - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        data = b"".join(chunks)
        whole = len(data) // frame_bytes * frame_bytes
        self.dropped_bytes += len(data) - whole
        x = np.frombuffer(data[:whole], dtype=self._dtype).reshape(-1, self.channels).T
        if self._dtype.kind == "i":
            return (x.astype(np.float32) / 32768.0).astype(np.float32)
        return np.ascontiguousarray(x, dtype=np.float32)

    def close(self) -> None:
        """Nothing to release (the caller owns the stream)."""


class ArraySource:
    """Samples in memory, played once or looped to a given length.

    Args:
        samples: float array (channels, n), n >= 1.
        sample_rate: Hz.
        frames: total frames to play (the samples are looped to fill it); default one pass.
        name: what to call it.
    Raises:
        StreamError: bad shape, rate or frames.
    """

    def __init__(self, samples: np.ndarray, sample_rate: int, frames: int | None = None, name: str = "array") -> None:
        self._x = np.asarray(samples, dtype=np.float32)
        if self._x.ndim != 2 or self._x.shape[1] == 0:
            raise StreamError(f"samples must have shape (channels, n >= 1), got {self._x.shape}")
        _check_format(sample_rate, self._x.shape[0])
        if frames is not None and frames < 0:
            raise StreamError(f"frames must be >= 0, got {frames}")
        self.sample_rate, self.channels, self.name = int(sample_rate), self._x.shape[0], name
        self.frames = self._x.shape[1] if frames is None else int(frames)
        self._pos = 0

    def read(self, frames: int) -> np.ndarray:
        """The next up to ``frames`` frames of the (looped) samples, float32 (channels, n)."""
        n = max(0, min(int(frames), self.frames - self._pos))
        idx = (self._pos + np.arange(n)) % self._x.shape[1]
        self._pos += n
        return self._x[:, idx]

    def close(self) -> None:
        """Nothing to release."""


# --- sinks --------------------------------------------------------------------------------------


class Sink(Protocol):
    """Where the player writes: ``open`` once, ``write`` blocks, then ``close`` (done) or ``abort`` (failed)."""

    def open(self, sample_rate: int, channels: int) -> None:
        """Start the output for this rate (Hz) and channel count."""

    def write(self, block: np.ndarray) -> None:
        """Output float32 (channels, n) samples in [-1, 1]."""

    def close(self) -> None:
        """Finish the output (all written samples delivered / the file in place)."""

    def abort(self) -> None:
        """Give up: leave nothing half-written under a final name; never raises."""


class WavSink:
    """A WAV file, written under a hidden temp name in the same folder and moved into place on close.

    A crash (even ``kill -9``) leaves no file under ``path``; at most a hidden ``.NAME.*.part``.

    Args:
        path: the WAV file to make.
        subtype: soundfile subtype: ``PCM_16``, ``PCM_24`` (default) or ``FLOAT``.
        overwrite: replace an existing ``path`` (default: refuse).
    Raises (from open/close):
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        SinkError: the folder does not exist or the file cannot be written.
    """

    def __init__(self, path: str | os.PathLike, subtype: str = "PCM_24", overwrite: bool = False) -> None:
        if subtype not in ("PCM_16", "PCM_24", "FLOAT"):
            raise SinkError(f"WAV subtype must be PCM_16, PCM_24 or FLOAT, got {subtype!r}")
        self.path, self.subtype, self.overwrite = Path(path), subtype, overwrite
        self._file: sf.SoundFile | None = None
        self._tmp: Path | None = None
        self.frames = 0

    def open(self, sample_rate: int, channels: int) -> None:
        if not self.path.parent.is_dir():
            raise SinkError(f"{self.path}: folder {self.path.parent} does not exist")
        if self.path.exists() and not self.overwrite:
            raise OutputExistsError(f"{self.path}: already exists; not overwriting (use --force)")
        self._tmp = new_temp(self.path.parent, self.path.name)
        try:
            self._file = sf.SoundFile(self._tmp, "w", int(sample_rate), int(channels), self.subtype, format="WAV")
        except (sf.LibsndfileError, RuntimeError) as exc:
            self._tmp.unlink(missing_ok=True)
            raise SinkError(f"{self.path}: cannot write ({one_line(exc)})") from None

    def write(self, block: np.ndarray) -> None:
        try:
            self._file.write(np.ascontiguousarray(block.T))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise SinkError(f"{self.path}: cannot write ({one_line(exc)})") from None
        self.frames += block.shape[1]

    def close(self) -> None:
        """Finish the file, fsync it and move it into place (atomically; never over a file that appeared
        meanwhile unless ``overwrite``)."""
        self._file.close()
        try:
            finish_temp(self._tmp)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        publish(self._tmp, self.path, self.overwrite)

    def abort(self) -> None:
        if self._file is not None and not self._file.closed:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - aborting: the temp file goes anyway
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


def _to_pcm(block: np.ndarray, fmt: str) -> bytes:
    """float32 (channels, n) -> interleaved little-endian bytes (s16le: clipped, rounded, x32767)."""
    x = np.clip(block, -1.0, 1.0).T
    if fmt == "s16le":
        return np.rint(x * 32767.0).astype("<i2").tobytes()
    return np.ascontiguousarray(x, dtype="<f4").tobytes()


class PipeSink:
    """Raw interleaved PCM to a binary stream or a FIFO (e.g. Snapcast's ``/tmp/snapfifo``).

    Opening a FIFO path blocks until a reader opens it (as Snapcast's server does).

    Args:
        target: a writable binary stream (flushed, never closed here) or the path of an existing FIFO.
        fmt: ``s16le`` (default, what snapserver's pipe source expects) or ``f32le``.
    Raises (from open/write):
        SinkError: the path is not a FIFO, or the reader went away.
    """

    def __init__(self, target: BinaryIO | str | os.PathLike, fmt: str = "s16le") -> None:
        if fmt not in PCM_FORMATS:
            raise SinkError(f"PCM format must be one of {sorted(PCM_FORMATS)}, got {fmt!r}")
        self._target, self.fmt = target, fmt
        self._fh: BinaryIO | None = None
        self._owned = isinstance(target, (str, os.PathLike))
        self.bytes_written = 0

    def open(self, sample_rate: int, channels: int) -> None:
        if not self._owned:
            self._fh = self._target
            return
        path = Path(self._target)
        try:
            if not stat.S_ISFIFO(path.stat().st_mode):
                raise SinkError(f"{path}: not a FIFO (make one with mkfifo, or write a WAV with --output)")
            self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()/abort()
        except OSError as exc:
            raise SinkError(f"{path}: cannot open the FIFO ({one_line(exc)})") from None

    def write(self, block: np.ndarray) -> None:
        data = _to_pcm(block, self.fmt)
        try:
            self._fh.write(data)
        except (BrokenPipeError, ConnectionError, ValueError) as exc:
            raise SinkError(f"the reader of {self._target} went away ({one_line(exc)})") from None
        self.bytes_written += len(data)

    def close(self) -> None:
        try:
            self._fh.flush()
            if self._owned:
                self._fh.close()
        except (BrokenPipeError, ConnectionError) as exc:
            raise SinkError(f"the reader of {self._target} went away ({one_line(exc)})") from None

    def abort(self) -> None:
        if self._owned and self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass


class AplaySink:
    """ALSA playback through ``aplay -t raw -f S16_LE -r RATE -c CH -D DEVICE`` (alsa-utils).

    ``aplay`` reads at the audio rate, so writes block and pace the player in real time.

    Args:
        device: ALSA device (``default``, ``hw:0,0``, ``null`` ...).
        aplay: the program (default ``aplay`` on PATH).
        fmt: ``s16le`` (default) or ``f32le``.
    Raises (from open/write/close):
        SinkError: ``aplay`` not installed, or it exits with an error (its message included).
    """

    def __init__(self, device: str = "default", aplay: str = "aplay", fmt: str = "s16le") -> None:
        if fmt not in PCM_FORMATS:
            raise SinkError(f"PCM format must be one of {sorted(PCM_FORMATS)}, got {fmt!r}")
        self.device, self.aplay, self.fmt = device, aplay, fmt
        self._proc: subprocess.Popen | None = None
        self._err = None
        self.returncode: int | None = None

    def command(self, sample_rate: int, channels: int) -> list[str]:
        """The aplay command line for this stream."""
        exe = shutil.which(self.aplay)
        if exe is None:
            raise SinkError(f"{self.aplay} not found: install alsa-utils (Debian: apt-get install alsa-utils)")
        return [exe, "-q", "-t", "raw", "-f", APLAY_FORMATS[self.fmt], "-r", str(int(sample_rate)),
                "-c", str(int(channels)), "-D", self.device]

    def open(self, sample_rate: int, channels: int) -> None:
        cmd = self.command(sample_rate, channels)
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)

    def _failure(self, what: str) -> SinkError:
        self._err.seek(0)
        lines = self._err.read().decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else "no message"
        return SinkError(f"aplay -D {self.device} {what}: {detail}")

    def write(self, block: np.ndarray) -> None:
        try:
            self._proc.stdin.write(_to_pcm(block, self.fmt))
        except (BrokenPipeError, ValueError):
            self._proc.wait()
            raise self._failure(f"stopped (exit {self._proc.returncode})") from None

    def close(self) -> None:
        """Let aplay play what it holds and exit; raises SinkError when it exits non-zero."""
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        self.returncode = self._proc.wait()
        try:
            if self.returncode != 0:
                raise self._failure(f"failed (exit {self.returncode})")
        finally:
            self._err.close()

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._err is not None:
            self._err.close()


# --- the player ---------------------------------------------------------------------------------


def state_fir(state: RoomState, sample_rate: float) -> np.ndarray:
    """The room's total filter as one FIR: its EQ bands, then its device curve (minimum phase).

    Args:
        state: the room (``filters`` and ``fir_db`` are used).
        sample_rate: Hz.
    Returns:
        float64 array (taps,) for :class:`tools.live.LiveFilter` (``[1.0]`` for a flat room).
    """
    curve = None
    if state.fir_db is not None:
        curve = minimum_phase_fir(np.asarray(state.fir_db.frequency_hz), np.asarray(state.fir_db.gain_db), sample_rate)
    return total_fir(state.filters, sample_rate, curve)


@dataclass(frozen=True)
class AppliedChange:
    """One :meth:`Player.apply` as it took effect.

    Attributes:
        input_frame: input frames the filter had taken when the change was made (the change is heard from
            this input sample on, up to one internal block earlier, then crossfades/ramps).
        volume_db: the volume applied, dB (the state's, under its ceiling).
        filter_changed: whether the filter changed (else only the volume).
    """

    input_frame: int
    volume_db: float
    filter_changed: bool


@dataclass(frozen=True)
class PlayReport:
    """What :meth:`Player.run` played.

    Attributes:
        frames_in: frames read from the source. frames_out: frames written to the sink (== frames_in).
        sample_rate: Hz. channels: count. blocks: source blocks read.
        stopped: True when :meth:`Player.stop` ended it early.
        nonfinite: NaN/infinite input samples replaced by 0.
        changes: the changes applied while it played, in order.
    """

    frames_in: int
    frames_out: int
    sample_rate: int
    channels: int
    blocks: int
    stopped: bool
    nonfinite: int
    changes: tuple[AppliedChange, ...]

    @property
    def seconds(self) -> float:
        """Duration played, seconds."""
        return self.frames_out / self.sample_rate


class Player:
    """Plays ``source`` through a room's live filter into ``sink``; another thread may :meth:`apply`.

    Args:
        source: where samples come from (its rate and channels set the stream's).
        sink: where they go (opened by :meth:`run`).
        state: the room's settings to start with.
        block_frames: frames read from the source per step (latency of a change, at most).
        block_size: LiveFilter's internal block (its latency), samples.
        fade_s: crossfade time of a filter change, s. ramp_s: volume ramp time, s.
    Raises:
        StreamError: bad block sizes.
    """

    def __init__(self, source: Source, sink: Sink, state: RoomState, *, block_frames: int = DEFAULT_BLOCK_SIZE,
                 block_size: int = DEFAULT_BLOCK_SIZE, fade_s: float = DEFAULT_FADE_S,
                 ramp_s: float = DEFAULT_RAMP_S) -> None:
        if block_frames < 1 or block_size < 16:
            raise StreamError(f"need block_frames >= 1 and block_size >= 16, got {block_frames}, {block_size}")
        self.source, self.sink, self.block_frames = source, sink, int(block_frames)
        self.sample_rate, self.channels = int(source.sample_rate), int(source.channels)
        self._live = LiveFilter(state_fir(state, self.sample_rate), self.sample_rate, self.channels,
                                block_size=block_size, fade_s=fade_s, ramp_s=ramp_s,
                                gain_db=state.volume_db, ceiling_db=state.ceiling_db)
        self._state = state
        self._lock = threading.Lock()  # the filter: process() vs set_filter()/set_volume()
        self._apply_lock = threading.Lock()  # one apply at a time (its FIR is designed outside _lock)
        self._stop = threading.Event()
        self._frames_in = 0
        self._changes: list[AppliedChange] = []
        self._ran = False

    @property
    def state(self) -> RoomState:
        """The room state playing now (the last applied)."""
        return self._state

    @property
    def latency(self) -> int:
        """Samples from a sample read to the same sample written (the filter's block)."""
        return self._live.latency

    @property
    def frames_in(self) -> int:
        """Input frames filtered so far."""
        return self._frames_in

    def apply(self, state: RoomState) -> float:
        """Switch to ``state`` while playing (thread-safe): a new filter crossfades in, the volume ramps.

        The FIR is designed in the caller's thread (tens of ms for a device curve), then swapped in
        between two blocks. A state with the same filters and curve changes only the volume.

        Returns:
            The volume applied, dB (never above ``state.ceiling_db``).
        """
        with self._apply_lock:
            same = state.filters == self._state.filters and state.fir_db == self._state.fir_db
            fir = None if same else state_fir(state, self.sample_rate)
            with self._lock:
                if fir is not None:
                    self._live.set_filter(fir)
                self._live.ceiling_db = float(state.ceiling_db)
                applied = self._live.set_volume(state.volume_db)
                self._changes.append(AppliedChange(self._frames_in, applied, fir is not None))
                self._state = state
        return applied

    def stop(self) -> None:
        """Ask :meth:`run` to end after the current block (thread-safe); the output is still complete."""
        self._stop.set()

    def _step(self, want: int, to_drop: int) -> tuple[int, int, int]:
        """Read, filter and write one block. Returns (frames read, frames still to drop, nonfinite count)."""
        x = self.source.read(want)
        n = x.shape[1]
        if n == 0:
            return 0, to_drop, 0
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        with self._lock:
            y = self._live.process(x)
            self._frames_in += n
        cut = min(to_drop, n)
        if n > cut:
            self.sink.write(y[:, cut:])
        return n, to_drop - cut, bad

    def run(self, max_seconds: float | None = None,
            on_block: Callable[[int, int], None] | None = None) -> PlayReport:
        """Play until the source ends, ``max_seconds`` of input are played, or :meth:`stop`.

        Args:
            max_seconds: most input to play, seconds (None: all).
            on_block: called after each block as ``on_block(blocks_done, input_frames_done)`` in this thread.
        Returns:
            PlayReport; ``frames_out == frames_in`` (the output is the input's length, no gap).
        Raises:
            StreamError: run twice, or negative max_seconds. SinkError/AudioDecodeError from the sink/source
            (the sink is aborted: no half file is left under a final name).
        """
        if self._ran:
            raise StreamError("a Player plays once; make a new one")
        if max_seconds is not None and not max_seconds >= 0:
            raise StreamError(f"max_seconds must be >= 0, got {max_seconds}")
        self._ran = True
        limit = None if max_seconds is None else round(max_seconds * self.sample_rate)
        to_drop, blocks, bad = self.latency, 0, 0
        self.sink.open(self.sample_rate, self.channels)
        try:
            while not self._stop.is_set() and (limit is None or self._frames_in < limit):
                want = self.block_frames if limit is None else min(self.block_frames, limit - self._frames_in)
                n, to_drop, nonfinite = self._step(want, to_drop)
                if n == 0:
                    break
                blocks, bad = blocks + 1, bad + nonfinite
                if on_block is not None:
                    on_block(blocks, self._frames_in)
            with self._lock:
                tail = self._live.flush()[:, to_drop:]
            self.sink.write(tail)
            self.sink.close()
        except BaseException:
            self.sink.abort()
            raise
        out = self._frames_in  # everything read came out: (process outputs + flush) minus the latency
        return PlayReport(self._frames_in, out, self.sample_rate, self.channels, blocks, self._stop.is_set(),
                          bad, tuple(self._changes))


# --- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m speaker.stream",
        description="Play audio through a room's stored SENSE speaker settings (EQ, device curve, volume "
                    "under its ceiling) into a WAV file, a FIFO (e.g. Snapcast's) or ALSA via aplay.",
        epilog="Examples:\n  python -m speaker.stream song.ogg --output out.wav --room kitchen\n"
               "  mpd-pipe | python -m speaker.stream - --rate 44100 --channels 2 --fifo /tmp/snapfifo\n"
               "A new room plays flat at -12 dB under a -6 dB ceiling.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="audio file (WAV, FLAC, Ogg, MP3 ...), or - for raw PCM on stdin")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--output", "-o", metavar="OUT.wav", type=Path, help="write a WAV file (never INPUT)")
    out.add_argument("--fifo", metavar="PATH", type=Path, help="write raw s16le PCM to this FIFO (e.g. /tmp/snapfifo)")
    out.add_argument("--aplay", metavar="DEVICE", help="play through aplay on this ALSA device (e.g. default)")
    p.add_argument("--room", default="default", help="room whose settings to use (default: default)")
    p.add_argument("--db", type=Path, default=None, help="room store (default: SENSE_HOME/speaker.sqlite)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    p.add_argument("--seconds", type=float, default=None, help="play at most this many seconds of INPUT")
    p.add_argument("--subtype", default="PCM_24", choices=["PCM_16", "PCM_24", "FLOAT"], help="WAV sample format")
    p.add_argument("--rate", type=int, help="sample rate of raw PCM on stdin, Hz")
    p.add_argument("--channels", type=int, default=2, help="channels of raw PCM on stdin (default 2)")
    p.add_argument("--pcm-format", default="s16le", choices=sorted(PCM_FORMATS), help="raw PCM format on stdin")
    return p


def _room_state(room: str, db: Path | None) -> RoomState:
    """The room's stored state, or the default one when there is no store yet (no file is created)."""
    path = db if db is not None else default_store_path()
    if not path.exists():
        return default_state(room)
    with RoomStore(path) as store:
        return store.load(room)


def _check_output(args: argparse.Namespace) -> None:
    """Refuse to write over INPUT (even with --force) or over an existing --output without --force."""
    out = args.output
    if out is None:
        return
    if args.input != "-":
        same = Path(args.input).resolve() == out.resolve()
        if not same and out.exists() and Path(args.input).exists():
            same = os.path.samefile(args.input, out)  # a hard link or another path to the same file
        if same:
            raise OutputExistsError(f"{out}: is the input; choose another --output")
    if out.exists() and not args.force:
        raise OutputExistsError(f"{out}: already exists; not overwriting (use --force)")


def _open(args: argparse.Namespace) -> tuple[Source, Sink]:
    if args.input == "-":
        if args.rate is None:
            raise StreamError("raw PCM on stdin needs --rate (and --channels, --pcm-format)")
        source: Source = PcmSource(sys.stdin.buffer, args.rate, args.channels, args.pcm_format)
    else:
        source = FileSource(args.input)
    if args.output is not None:
        return source, WavSink(args.output, subtype=args.subtype, overwrite=args.force)
    if args.fifo is not None:
        return source, PipeSink(args.fifo)
    return source, AplaySink(args.aplay)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry. Returns the exit status (0 ok, 1 error with a one-line message, 130 Ctrl-C)."""
    args = _parser().parse_args(argv)
    try:
        _check_output(args)
        state = _room_state(args.room, args.db)
        source, sink = _open(args)
        try:
            report = Player(source, sink, state).run(max_seconds=args.seconds)
        finally:
            source.close()
    except SenseError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped (no output file is left behind)", file=sys.stderr)
        return 130
    target = args.output or args.fifo or f"aplay -D {args.aplay}"
    print(f"played {report.seconds:.2f} s of {source.name} through room {state.room!r} "
          f"({len(state.filters)} filters{', device curve' if state.fir_db else ''}, "
          f"volume {state.volume_db:+.1f} dB, ceiling {state.ceiling_db:+.1f} dB) into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
