"""One room's speaker service: the stream playing through the live filter, and requests that change it.

:class:`Room` ties together the room's stored state (:class:`speaker.room.RoomStore`), the
:class:`speaker.stream.Player` running in a background thread, the conversation engine
(:class:`agent.engine.Engine`) and, optionally, MPD (transport) and CamillaDSP (export).

A request goes one of two ways:

- a **room command** (:mod:`speaker.commands`: volume, undo, transport, status, reset) is done here;
- anything else goes to the **agent**, in the room's context: its input is the last
  :data:`EXCERPT_S` seconds of what the speaker played (the content-aware amounts measure it), and
  its result (EQ bands and device curve, never a file) is applied live: the filter crossfades.

How the two histories fit: the room store is the truth (it survives a restart; its undo stack holds
every change, tone or volume). The agent's conversation (the thread behind "a bit more") starts at
the room's filters and builds on them; after an undo, a reset or a restart a new conversation
starts from the restored filters, so "a bit more" right after "undo" asks what to scale.

Per-stem requests ("louder vocals") need source separation of the whole track, which a live stream
cannot wait for: they are answered honestly and change nothing (``sense run`` does them on a file).
The room's loudspeaker model (``speaker_model``, from the ASR spinoramas) is the listening device:
"sound like my AirPods" renders the AirPods relative to that speaker (:mod:`knowledge.speakers`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from knowledge.fr_store import FR_GRID_HZ
from knowledge.speakers import SpeakerStore
from speaker.commands import OFF_TOPIC, Command, off_topic, parse
from speaker.room import DeviceCurve, RoomState, RoomStore
from speaker.stream import Player, PlayReport, Sink, Source
from tools.errors import SenseError, one_line
from tools.transfer import transfer_curve

log = logging.getLogger(__name__)

EXCERPT_S = 20.0
"""Seconds of recent input the agent measures for a request (the content-aware amounts)."""
MIN_EXCERPT_S = 1.0
"""Less than this much recent input counts as "nothing is playing", seconds."""
NOT_LIVE = ("I can't change single instruments on a live stream (that needs the whole track separated "
            "first); nothing changed.")


@dataclass(frozen=True)
class RoomReply:
    """What a request did in a room.

    Attributes:
        text: the one-sentence answer (what a voice front end says).
        action: the command kind (``volume_up`` …), ``tone`` (the agent changed the filter), ``question``,
            ``answer`` (the agent answered, nothing changed), ``not_live`` (a per-stem request),
            ``nothing_playing`` or ``error``.
        changed: whether the room's sound (filter or volume) changed.
        state: the room's state after the request.
        details: the agent's reasoning after its first sentence ("" for room commands).
        timings_s: seconds per stage: ``understanding`` (agent or command parse), ``filter_applied``.
        via: how the request was read: ``command`` (a room command), or the agent's path (``fast``, ``llm``,
            ``llm-repair``, ``rules``, ``answer``); "" when it never reached either.
    """

    text: str
    action: str
    changed: bool
    state: RoomState
    details: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
    via: str = ""


def _capped_summary(outcome) -> str:
    """The agent's first sentence, plus a hearing-safety note when a requested gain was capped."""
    capped = [b for call in outcome.plan if call.tool == "equalize" for b in (call.args.band_edits or []) if b.capped]
    if not capped:
        return outcome.summary
    return (f"{outcome.summary} I capped it at {capped[0].gain_db:+.0f} dB (you asked for "
            f"{capped[0].requested_gain_db:+.0f} dB) to protect your hearing and the speaker.")


class RoomSink:
    """The agent's sink for a room: the result is applied live, so no audio, trace or plot file is written."""

    name = "speaker"

    def deliver(self, delivery) -> dict[str, str]:
        return {}

    def write_trace(self, where: dict[str, str], trace: dict) -> None:
        return None

    def write_plot(self, where: dict[str, str], draw) -> None:
        return None

    def answer_place(self, input_path: str | None, output_path: str | None) -> dict[str, str]:
        return {}


def room_engine(rt):
    """The conversation engine a room uses: ``rt``'s knowledge, results applied live (:class:`RoomSink`),
    no variants (one answer to say), per-stem plans not run (the room answers :data:`NOT_LIVE`)."""
    from agent.engine import Engine

    return Engine(rt, sink=RoomSink(), variants=False, run_stems=False)


class PlaylistSource:
    """Several sound files played one after another (a :class:`speaker.stream.Source`); :meth:`skip` moves
    to the next or previous file (the "next song" of a room without MPD).

    Args:
        paths: the files, in order. Every file must have the first one's sample rate and channel count.
    Raises:
        SenseError: an empty list, or a file whose rate or channels differ (the message names it).
        AudioFileNotFoundError / AudioDecodeError: a file is missing or unreadable.
    """

    def __init__(self, paths: list[str | Path]) -> None:
        from speaker.stream import FileSource

        if not paths:
            raise SenseError("a playlist needs at least one file")
        self.sources = [FileSource(p) for p in paths]
        first = self.sources[0]
        for src in self.sources[1:]:
            if (src.sample_rate, src.channels) != (first.sample_rate, first.channels):
                raise SenseError(f"{src.path}: {src.sample_rate} Hz x {src.channels} channels, but the playlist plays "
                                 f"{first.sample_rate} Hz x {first.channels} (convert it first)")
        self.sample_rate, self.channels, self.index = first.sample_rate, first.channels, 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The file playing now."""
        return self.sources[min(self.index, len(self.sources) - 1)].name

    def read(self, frames: int) -> np.ndarray:
        with self._lock:
            while self.index < len(self.sources):
                x = self.sources[self.index].read(frames)
                if x.shape[1]:
                    return x
                self.index += 1
            return np.zeros((self.channels, 0), dtype=np.float32)

    def skip(self, delta: int) -> str | None:
        """Move ``delta`` files on (negative: back), starting that file at its beginning. Returns its name,
        or None when there is no such file (nothing changes)."""
        with self._lock:
            target = self.index + delta
            if not 0 <= target < len(self.sources):
                return None
            self.index = target
            self.sources[target]._file.seek(0)
            return self.sources[target].name

    def close(self) -> None:
        for src in self.sources:
            src.close()


class InputTap:
    """A :class:`speaker.stream.Source` wrapper that keeps the last ``seconds`` of what was read.

    Args:
        source: the real source. seconds: how much recent input to keep.
        pace: play at this many times real time (reads wait for the wall clock), e.g. 1.0 for a file
            into a file sink that should behave like a live room; None: as fast as the sink takes it
            (ALSA and a FIFO pace the stream themselves).
    """

    def __init__(self, source: Source, seconds: float = EXCERPT_S, pace: float | None = None) -> None:
        self.source, self.name = source, getattr(source, "name", "stream")
        self.sample_rate, self.channels = int(source.sample_rate), int(source.channels)
        self._ring = np.zeros((self.channels, int(seconds * self.sample_rate)), dtype=np.float32)
        self._filled, self._pos, self._lock, self.ended = 0, 0, threading.Lock(), False
        self.pace, self._frames, self._t0 = pace, 0, None

    def _wait(self) -> None:
        if self.pace is None:
            return
        if self._t0 is None:
            self._t0 = time.perf_counter()
        ahead = self._frames / (self.sample_rate * self.pace) - (time.perf_counter() - self._t0)
        if ahead > 0:
            time.sleep(ahead)

    def read(self, frames: int) -> np.ndarray:
        self._wait()
        x = self.source.read(frames)
        self._frames += x.shape[1]
        if x.shape[1] == 0:
            self.ended = True
        size = self._ring.shape[1]
        tail = x[:, -size:]
        with self._lock:
            n, pos = tail.shape[1], self._pos
            first = min(n, size - pos)
            self._ring[:, pos:pos + first] = tail[:, :first]
            self._ring[:, :n - first] = tail[:, first:]
            self._pos, self._filled = (pos + n) % size, min(self._filled + n, size)
        return x

    def recent(self) -> np.ndarray:
        """The kept input, oldest first, float32, shape (channels, samples) (fewer early in a stream)."""
        with self._lock:
            ordered = np.concatenate([self._ring[:, self._pos:], self._ring[:, :self._pos]], axis=1)
            return ordered[:, ordered.shape[1] - self._filled:].copy()

    def close(self) -> None:
        self.source.close()


class Room:
    """One room: its stored state, what it plays, and the requests that change it.

    Args:
        name: the room's name (as in the room store).
        store: the room store (shared by every room of one service).
        engine: the conversation engine, or a zero-argument callable that loads it on first use
            (loading the knowledge stores and the planner takes seconds).
        speakers: the loudspeaker store (needed when the room names a ``speaker_model``).
        transport: an :class:`speaker.mpd.MpdTransport` for pause/next/previous/..., or None.
        camilladsp_url: ``ws://host:port`` of a running CamillaDSP to push every change to, or None.
        user: whose preferences the agent uses.
    """

    def __init__(self, name: str, store: RoomStore, engine, *, speakers: SpeakerStore | None = None,
                 transport=None, camilladsp_url: str | None = None, user: str = "default") -> None:
        self.name, self.store, self.user = name, store, user
        self._engine, self.speakers, self.transport = engine, speakers, transport
        self.camilladsp_url = camilladsp_url
        self._lock = threading.RLock()  # one request at a time per room
        self._player: Player | None = None
        self._tap: InputTap | None = None
        self._thread: threading.Thread | None = None
        self._report: PlayReport | None = None
        self._play_error: str | None = None
        self.started_at = time.monotonic()  # when play() last started (time.monotonic)
        self._conversation = uuid.uuid4().hex[:12]  # this Room's conversations with the agent
        self._epoch = 0  # the agent conversation: a new one after an undo / reset / restart
        self._vocabulary = None  # the agent's closed vocabulary, built on first use (vocabulary())
        self._base: RoomState = store.load(name)

    # --- what plays ---------------------------------------------------------------------------

    @property
    def state(self) -> RoomState:
        """The room's stored state now."""
        return self.store.load(self.name)

    @property
    def playing(self) -> bool:
        """Whether a stream is playing through the room's filter now."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def sample_rate(self) -> int:
        """The playing stream's rate, Hz (48000 when nothing plays: the export default)."""
        return self._tap.sample_rate if self._tap is not None else 48000

    def play(self, source: Source, sink: Sink, *, max_seconds: float | None = None, title: str | None = None,
             block_frames: int = 4096, pace: float | None = None) -> None:
        """Start playing ``source`` through the room's filter into ``sink`` in a background thread.

        Args:
            source, sink: see :class:`speaker.stream.Player`. max_seconds: most input to play.
            title: what to show as playing (default the source's name). block_frames: frames per step.
            pace: times real time to play at (see :class:`InputTap`); None: as fast as the sink takes.

        Raises:
            SenseError: something already plays in this room (stop it first).
        """
        with self._lock:
            if self.playing:
                raise SenseError(f"room {self.name!r} is already playing; stop it first")
            self._tap = InputTap(source, pace=pace)
            self._player = Player(self._tap, sink, self.state, block_frames=block_frames)
            self._report, self._play_error = None, None
            self.store.set_now_playing(self.name, title or getattr(source, "name", "stream"))
            self._thread = threading.Thread(target=self._run, args=(max_seconds,), name=f"room-{self.name}",
                                            daemon=True)
            self.started_at = time.monotonic()
            self._thread.start()

    def _run(self, max_seconds: float | None) -> None:
        try:
            self._report = self._player.run(max_seconds=max_seconds)
        except SenseError as exc:
            self._play_error = one_line(exc)
            log.error("room %s: playback stopped: %s", self.name, self._play_error)
        finally:
            self.store.set_now_playing(self.name, None)

    def wait(self, timeout_s: float | None = None) -> PlayReport | None:
        """Wait for the stream to end. Returns its report (None while it still plays or if it failed).

        Raises:
            SenseError: playback stopped with an error (its one-line message).
        """
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._play_error:
            raise SenseError(f"room {self.name!r}: playback stopped: {self._play_error}")
        return self._report

    def stop(self) -> PlayReport | None:
        """Stop playback after the current block (the sink is closed complete) and wait for it."""
        if self._player is not None:
            self._player.stop()
        return self.wait()

    @property
    def output_latency_s(self) -> float:
        """Seconds from a change to it being heard: one source block plus the live filter's block."""
        if self._player is None or self._tap is None:
            return 0.0
        return (self._player.block_frames + self._player.latency) / self._tap.sample_rate

    def duck(self, gain_db: float, seconds: float) -> None:
        """Lower the music by ``gain_db`` (<= 0) for ``seconds`` (a spoken answer), then ramp back to the
        stored volume. Nothing is stored or logged; a change meanwhile is kept (the stored state is re-applied)."""
        if self._player is None or not self.playing or gain_db >= 0:
            return
        state = self.state
        self._player.apply(state.changed(volume_db=state.volume_db + gain_db))
        timer = threading.Timer(seconds, lambda: self._player is not None and self._player.apply(self.state))
        timer.daemon = True
        timer.start()

    def recent_input(self) -> np.ndarray | None:
        """The last :data:`EXCERPT_S` s the speaker played, float32 (channels, samples), or None when
        nothing plays (or less than :data:`MIN_EXCERPT_S` s was heard)."""
        if self._tap is None or not self.playing:
            return None
        x = self._tap.recent()
        return x if x.shape[1] >= MIN_EXCERPT_S * self._tap.sample_rate else None

    # --- requests -----------------------------------------------------------------------------

    @property
    def engine(self):
        """The conversation engine (loaded on first use when a loader was given)."""
        if callable(self._engine) and not hasattr(self._engine, "turn"):
            self._engine = self._engine()
        return self._engine

    def vocabulary(self):
        """The agent's closed vocabulary (:func:`agent.engine.vocabulary` of the engine's runtime), built once."""
        if self._vocabulary is None:
            from agent.engine import vocabulary

            self._vocabulary = vocabulary(self.engine.rt)
        return self._vocabulary

    def handle(self, text: str) -> RoomReply:
        """Do what ``text`` asks in this room (a room command, or a request for the agent) and log it.

        Returns:
            The :class:`RoomReply`; bad or unclear requests get an answer and change nothing.
        """
        with self._lock:
            t0 = time.perf_counter()
            command = parse(text)
            try:
                reply = self._command(command) if command is not None else self._request(text)
            except SenseError as exc:
                reply = RoomReply(f"Sorry, that failed: {one_line(exc)}", "error", False, self.state)
            timings = {"understanding": time.perf_counter() - t0} if command is not None else {}
            reply = RoomReply(reply.text, reply.action, reply.changed, reply.state, reply.details,
                              {**timings, **reply.timings_s}, "command" if command is not None else reply.via)
            if not reply.changed:
                self.store.note(self.name, reply.action, f"{text!r}: {reply.text}")
            return reply

    def _commit(self, state: RoomState, reason: str) -> tuple[RoomState, float]:
        """Store ``state`` (undoable), play it, push it to CamillaDSP. Returns (stored, seconds to apply)."""
        stored = self.store.apply(self.name, state, reason)
        return stored, self._apply_live(stored)

    def _apply_live(self, state: RoomState) -> float:
        t0 = time.perf_counter()
        if self._player is not None and self.playing:
            self._player.apply(state)
        if self.camilladsp_url:
            from speaker.export import push_room

            push_room(state, self.sample_rate, self.camilladsp_url)
        return time.perf_counter() - t0

    def _thread_id(self) -> str:
        """The agent conversation's id: unique to this Room object (an engine may serve several rooms, or the
        same room name in several stores) and to its epoch."""
        return f"room:{self.name}:{self._conversation}:{self._epoch}"

    def _new_conversation(self, base: RoomState) -> None:
        """Start a new agent conversation on top of ``base``'s filters (after undo, reset, a stem request)."""
        self._epoch += 1
        self._base = base

    def _request(self, text: str) -> RoomReply:
        """A request for the agent, on what plays now; its filter is applied live."""
        state = self.state
        excerpt = self.recent_input()
        if excerpt is None:
            return RoomReply(f"Nothing is playing in the {self.name}, so there is nothing to change yet.",
                             "nothing_playing", False, state)
        t0 = time.perf_counter()
        if off_topic(text, self.vocabulary()):
            return RoomReply(OFF_TOPIC, "answer", False, state, "", {"understanding": time.perf_counter() - t0}, "room")
        with tempfile.TemporaryDirectory(prefix="sense-room-") as tmp:
            wav = Path(tmp) / "playing.wav"
            sf.write(wav, excerpt.T, self._tap.sample_rate, subtype="FLOAT")
            outcome = self.engine.turn(self._thread_id(), text, wav, user=self.user, output_path=Path(tmp) / "out.wav")
        from agent.planner import needs_stems, plan_filters

        timings = {"understanding": float(sum(outcome.timings_s.values()))}
        via = outcome.understood.path if outcome.understood is not None else ""
        if needs_stems(outcome.plan):
            self._new_conversation(state)
            return RoomReply(NOT_LIVE, "not_live", False, state, "Use `sense run FILE --request …` for per-stem changes.",
                             timings, via)
        if outcome.status != "processed":
            return RoomReply(outcome.summary, outcome.status, False, state, outcome.details, timings, via)
        fir_db, note = self._device_curve(outcome)
        new = state.changed(filters=[*self._base.filters, *plan_filters(outcome.plan)],
                            fir_db=fir_db if fir_db is not None else self._base.fir_db)
        stored, seconds = self._commit(new, text)
        details = outcome.details.replace(", since I don't know what you listen on", "") if note else outcome.details
        return RoomReply(_capped_summary(outcome), "tone", True, stored, "\n".join(x for x in (details, note) if x),
                         {**timings, "filter_applied": seconds}, via)

    def _device_curve(self, outcome) -> tuple[DeviceCurve | None, str]:
        """The device-transfer curve of the agent's result, relative to the room's loudspeaker when it has one.

        Returns:
            (curve or None when the result has no device, a reasoning line about the loudspeaker or "").
        """
        call = next((c for c in outcome.plan if c.tool == "device_transfer"), None)
        if call is None:
            return None, ""
        args, rt = call.args, self.engine.rt
        target, class_target = rt.store.curve(args.target), rt.store.target_for(args.target)
        model = self.state.speaker_model
        if model is not None and self.speakers is not None:
            speaker = self.speakers.resolve(model)
            reference, note = class_target.db + speaker.deviation_db, (
                f"Relative to this room's {speaker.name} (its listening window vs the flat target, ASR "
                f"measurement; not extended below its {speaker.bass_limit_hz:.0f} Hz limit).")
        elif args.reference_kind == "device":
            reference, note = rt.store.curve(args.reference).db, ""
        else:
            reference, note = class_target.db, ""
        curve = transfer_curve(FR_GRID_HZ, target.db, reference, smoothing=args.smoothing_octaves,
                               max_boost_db=args.max_boost_db)
        return DeviceCurve(frequency_hz=FR_GRID_HZ.tolist(), gain_db=curve.tolist()), note

    # --- room commands ------------------------------------------------------------------------

    def _command(self, command: Command) -> RoomReply:
        kind = command.kind
        if kind == "undo":
            return self.undo()
        if kind in ("volume_up", "volume_down", "volume_max", "volume_set", "mute"):
            return self._volume(command)
        if kind == "reset":
            stored, seconds = self._commit(self.state.changed(filters=[], fir_db=None), "reset")
            self._new_conversation(stored)
            return RoomReply("Back to the sound as mastered: no EQ, no device curve.", kind, True, stored,
                             timings_s={"filter_applied": seconds})
        if kind in ("now_playing", "status"):
            return RoomReply(self._describe(kind), kind, False, self.state)
        return self._transport(kind)

    def undo(self) -> RoomReply:
        """Go back one change (tone or volume), exactly; says what it restored."""
        restored = self.store.undo(self.name, "undo")
        if restored is None:
            return RoomReply("There is nothing to undo.", "undo", False, self.state)
        seconds = self._apply_live(restored)
        self._new_conversation(restored)
        return RoomReply(f"Undone: {self._settings_phrase(restored)}.", "undo", True, restored,
                         timings_s={"filter_applied": seconds})

    def set_volume(self, volume_db: float, reason: str = "volume") -> RoomReply:
        """Set the room's digital volume, dB, never above its ceiling (and say so when capped)."""
        stored, capped = self.store.set_volume(self.name, volume_db, reason)
        seconds = self._apply_live(stored)
        text = (f"Volume at the {stored.ceiling_db:+.0f} dB ceiling: I keep it there to protect your hearing."
                if capped else f"Volume {stored.volume_db:+.0f} dB.")
        return RoomReply(text, "volume", True, stored, timings_s={"filter_applied": seconds})

    def _volume(self, command: Command) -> RoomReply:
        from speaker.commands import VOLUME_STEP_DB
        from speaker.room import MIN_VOLUME_DB

        state = self.state
        if command.kind in ("volume_up", "volume_down") and self.transport is not None:
            sign = 1 if command.kind == "volume_up" else -1
            percent = self.transport.volume_step(sign * 5 * int(command.value or 1))
            return RoomReply(f"Volume {percent} %.", command.kind, True, state)
        wanted = {"volume_up": state.volume_db + VOLUME_STEP_DB * (command.value or 1),
                  "volume_down": state.volume_db - VOLUME_STEP_DB * (command.value or 1),
                  "volume_max": state.ceiling_db + 40.0,  # "all the way": as far as the ceiling lets it
                  "volume_set": command.value, "mute": MIN_VOLUME_DB}[command.kind]
        reply = self.set_volume(wanted, command.matched or command.kind)
        text = "Muted; say undo to bring it back." if command.kind == "mute" else reply.text
        return RoomReply(text, command.kind, True, reply.state, timings_s=reply.timings_s)

    def _transport(self, kind: str) -> RoomReply:
        if self.transport is not None:
            return RoomReply(self.transport.run(kind), kind, kind != "play", self.state)
        if kind == "stop" and self.playing:
            self.stop()
            return RoomReply("Stopped.", kind, True, self.state)
        playlist = getattr(self._tap, "source", None)
        if kind in ("next", "previous") and isinstance(playlist, PlaylistSource) and self.playing:
            name = playlist.skip(1 if kind == "next" else -1)
            if name is None:
                return RoomReply(f"There is no {kind} song in this playlist.", kind, False, self.state)
            state = self.store.set_now_playing(self.name, name)
            return RoomReply(f"{'Next' if kind == 'next' else 'Previous'} song: {Path(name).stem}.", kind, True, state)
        return RoomReply(f"I can't {'skip' if kind in ('next', 'previous') else kind} here: this room plays a stream "
                         "without a music player (start the speaker with --mpd).", kind, False, self.state)

    def _settings_phrase(self, state: RoomState) -> str:
        parts = [f"{len(state.filters)} EQ band{'s' if len(state.filters) != 1 else ''}" if state.filters else "no EQ"]
        if state.fir_db is not None:
            parts.append("a device curve")
        parts.append(f"volume {state.volume_db:+.0f} dB")
        return ", ".join(parts)

    def _describe(self, kind: str) -> str:
        state = self.state
        if kind == "now_playing":
            if self.transport is not None:
                return self.transport.run("now_playing")
            return f"Playing {state.now_playing}." if state.now_playing else f"Nothing is playing in the {self.name}."
        speaker = f", on a {state.speaker_model}" if state.speaker_model else ""
        return f"The {self.name} has {self._settings_phrase(state)}{speaker}."
