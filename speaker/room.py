"""One room's speaker settings, kept in SQLite so they survive a restart or a ``kill -9``.

:class:`RoomState` is everything the live DSP of one room needs: the EQ bands, an optional
device-transfer curve, the volume under a hard ceiling, the loudspeaker model and what is playing.
:class:`RoomStore` keeps the current state of every room in one SQLite file (WAL journal,
``synchronous=FULL``), with a multi-level undo stack per room and a log of every change and the
reason for it. Each change is one transaction: after a crash the file holds either the state
before the change or the state after it, never a mix, and the log row always matches the state.

Hearing safety: ``volume_db`` is a digital gain in dB relative to the track as mastered, and it
never exceeds ``ceiling_db``. A new room starts at :data:`DEFAULT_VOLUME_DB` (-12 dB) under a
ceiling of :data:`DEFAULT_CEILING_DB` (-6 dB): 6 dB of headroom for EQ boosts before the output
clips, and no voice command ("turn it up all the way") can go past the ceiling. The ceiling itself
can be raised to at most :data:`MAX_CEILING_DB` (0 dB: never louder than the track itself).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tools.eq import Filter
from tools.errors import SenseError

DEFAULT_CEILING_DB = -6.0
"""A new room's volume ceiling, dB: 6 dB of headroom under full scale for EQ boosts."""
DEFAULT_VOLUME_DB = -12.0
"""A new room's volume, dB (6 dB under the default ceiling)."""
MAX_CEILING_DB = 0.0
"""The highest ceiling a room may have, dB: never louder than the track as mastered."""
MIN_VOLUME_DB = -90.0
"""The lowest volume, dB (inaudible); lower requests are raised to it."""
MAX_CURVE_DB = 24.0
"""Device-curve gains are clipped to +-this, dB (the range tools.transfer.minimum_phase_fir designs well)."""
UNDO_DEPTH = 100
"""Undo steps kept per room; older ones are dropped in the same transaction as a new change."""
MAX_ROOM_NAME = 64
"""Longest room name, characters."""
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS undo (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL,
                                 state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS undo_room ON undo (room, id);
CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, at TEXT NOT NULL,
                                action TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS log_room ON log (room, id);
"""


class RoomError(SenseError, ValueError):
    """Bad input for a room: an empty or too long room name, a NaN volume, an invalid state."""


class RoomStoreError(SenseError):
    """The room store file cannot be used: not a SQLite file, damaged, or written by a newer SENSE."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def check_room_name(room: str) -> str:
    """The room name stripped of surrounding blanks.

    Raises:
        RoomError: not a string, empty, longer than :data:`MAX_ROOM_NAME`, or holding control characters.
    """
    if not isinstance(room, str):
        raise RoomError(f"room name must be text, got {type(room).__name__}")
    name = room.strip()
    if not name or len(name) > MAX_ROOM_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise RoomError(f"room name must be 1-{MAX_ROOM_NAME} printable characters, got {room!r}")
    return name


class DeviceCurve(BaseModel):
    """A device-transfer curve (e.g. tools.transfer.transfer_curve's output) on a frequency grid.

    Attributes:
        frequency_hz: grid, Hz, positive and strictly increasing, >= 2 points.
        gain_db: gain at each grid point, dB, finite; clipped to +-:data:`MAX_CURVE_DB`.
    """

    model_config = ConfigDict(frozen=True)
    frequency_hz: list[float] = Field(min_length=2)
    gain_db: list[float] = Field(min_length=2)

    @field_validator("gain_db")
    @classmethod
    def _clip_gains(cls, values: list[float]) -> list[float]:
        if not all(math.isfinite(v) for v in values):
            raise ValueError("gain_db must be finite")
        return [min(max(float(v), -MAX_CURVE_DB), MAX_CURVE_DB) for v in values]

    @model_validator(mode="after")
    def _check_grid(self) -> DeviceCurve:
        f = self.frequency_hz
        if len(f) != len(self.gain_db):
            raise ValueError(f"frequency_hz has {len(f)} points but gain_db {len(self.gain_db)}")
        if not all(math.isfinite(v) and v > 0 for v in f) or any(b <= a for a, b in zip(f, f[1:])):
            raise ValueError("frequency_hz must be positive, finite and strictly increasing")
        return self


class RoomState(BaseModel):
    """Everything one room's live DSP plays with (immutable; make a changed copy with :meth:`changed`).

    Attributes:
        room: the room's name (1-64 printable characters).
        speaker_model: the room's loudspeaker model in the FR store (the listening device), or None.
        filters: EQ bands (tools.eq.Filter, each clipped to +-12 dB), applied in order.
        fir_db: a device-transfer curve applied after the bands, or None.
        volume_db: digital gain, dB, in [:data:`MIN_VOLUME_DB`, ``ceiling_db``] (clipped into it).
        ceiling_db: the hard volume ceiling, dB, <= :data:`MAX_CEILING_DB` (clipped to it).
        now_playing: what is playing (title or path), or None.
        updated_at: when these settings were stored (UTC).
    """

    model_config = ConfigDict(frozen=True)
    room: str
    speaker_model: str | None = None
    filters: list[Filter] = Field(default_factory=list)
    fir_db: DeviceCurve | None = None
    volume_db: float = DEFAULT_VOLUME_DB
    ceiling_db: float = DEFAULT_CEILING_DB
    now_playing: str | None = None
    updated_at: datetime = Field(default_factory=_now)

    @field_validator("room")
    @classmethod
    def _check_room(cls, value: str) -> str:
        return check_room_name(value)

    @model_validator(mode="before")
    @classmethod
    def _clip_levels(cls, data):
        """Clip ceiling to MAX_CEILING_DB, then volume into [MIN_VOLUME_DB, ceiling]; reject NaN."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        try:
            ceiling = float(data.get("ceiling_db", DEFAULT_CEILING_DB))
            volume = float(data.get("volume_db", DEFAULT_VOLUME_DB))
        except (TypeError, ValueError):
            raise ValueError("volume_db and ceiling_db must be numbers") from None
        if math.isnan(ceiling) or math.isnan(volume):
            raise ValueError("volume_db and ceiling_db must not be NaN")
        data["ceiling_db"] = min(max(ceiling, MIN_VOLUME_DB), MAX_CEILING_DB)
        data["volume_db"] = min(max(volume, MIN_VOLUME_DB), data["ceiling_db"])
        return data

    def changed(self, **fields) -> RoomState:
        """A validated copy with ``fields`` replaced (e.g. ``state.changed(filters=[...], volume_db=-9)``).

        Raises:
            RoomError: a field is invalid.
        """
        return _validated({**self.model_dump(), **fields})

    def settings(self) -> dict:
        """The fields that shape the sound and its history (all but ``updated_at``), JSON-able."""
        return self.model_dump(mode="json", exclude={"updated_at"})


def _validated(data: dict) -> RoomState:
    try:
        return RoomState.model_validate(data)
    except ValidationError as exc:
        raise RoomError(f"invalid room state: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def default_state(room: str) -> RoomState:
    """The state of a room never changed: no filters, no curve, -12 dB under a -6 dB ceiling, no speaker
    model, nothing playing; ``updated_at`` is 1970-01-01 (never stored).

    Raises:
        RoomError: bad room name.
    """
    return RoomState(room=check_room_name(room), updated_at=datetime(1970, 1, 1, tzinfo=timezone.utc))


def default_store_path() -> Path:
    """``SENSE_HOME/speaker.sqlite``: the default room store."""
    from knowledge.config import sense_home

    return sense_home() / "speaker.sqlite"


@dataclass(frozen=True)
class HistoryRow:
    """One log row of a room.

    Attributes:
        id: increasing row id.
        room: the room.
        at: when (UTC).
        action: ``apply``, ``volume``, ``undo``, ``now_playing`` or a caller's own word (``heard`` ...).
        reason: why, as given (e.g. the request text "it's too boomy").
        state: the room's state after the action.
    """

    id: int
    room: str
    at: datetime
    action: str
    reason: str
    state: RoomState


class RoomStore:
    """Every room's current :class:`RoomState`, undo stack and log, in one SQLite file.

    Thread-safe (one connection behind a lock) and safe across processes (SQLite locking, 30 s busy
    timeout). WAL journal with ``synchronous=FULL``: a change is on disk when its method returns.

    Args:
        path: the SQLite file (created with its folder if missing); default :func:`default_store_path`.
    Raises:
        RoomStoreError: the file is not a SQLite database, is damaged, or has a newer schema.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RoomStoreError(f"{self.path}: room store schema {version} is newer than this SENSE's "
                                     f"({SCHEMA_VERSION}); upgrade SENSE or use another --db")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise RoomStoreError(f"{self.path}: not a usable room store ({exc}); move it away or use another --db") from None

    def close(self) -> None:
        """Close the connection (further calls fail)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RoomStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock (ROLLBACK on any error)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise RoomStoreError(f"{self.path}: cannot write the room store ({exc})") from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise RoomStoreError(f"{self.path}: the change was not stored ({exc})") from None
                raise

    def _parse(self, text: str) -> RoomState:
        try:
            return RoomState.model_validate_json(text)
        except ValidationError as exc:
            raise RoomStoreError(f"{self.path}: a stored room state is damaged ({exc.errors()[0]['msg']})") from None

    def _current(self, conn: sqlite3.Connection, room: str) -> RoomState:
        row = conn.execute("SELECT state FROM rooms WHERE room = ?", (room,)).fetchone()
        return default_state(room) if row is None else self._parse(row[0])

    def _store(self, conn: sqlite3.Connection, state: RoomState, action: str, reason: str) -> None:
        """Write ``state`` as the room's current state and log it (inside a transaction)."""
        text = state.model_dump_json()
        conn.execute("INSERT INTO rooms (room, state) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET state = excluded.state",
                     (state.room, text))
        conn.execute("INSERT INTO log (room, at, action, reason, state) VALUES (?, ?, ?, ?, ?)",
                     (state.room, _now().isoformat(), action, reason, text))

    def _push_undo(self, conn: sqlite3.Connection, previous: RoomState) -> None:
        conn.execute("INSERT INTO undo (room, state) VALUES (?, ?)", (previous.room, previous.model_dump_json()))
        conn.execute("DELETE FROM undo WHERE room = ? AND id NOT IN "
                     "(SELECT id FROM undo WHERE room = ? ORDER BY id DESC LIMIT ?)",
                     (previous.room, previous.room, UNDO_DEPTH))

    def rooms(self) -> list[str]:
        """Names of the rooms with a stored state, sorted."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT room FROM rooms ORDER BY room")]

    def load(self, room: str) -> RoomState:
        """The room's current state, or :func:`default_state` for a room never changed (nothing is written).

        Raises:
            RoomError: bad room name. RoomStoreError: the stored state is damaged.
        """
        room = check_room_name(room)
        with self._lock:
            return self._current(self._conn, room)

    def apply(self, room: str, new_state: RoomState, reason: str) -> RoomState:
        """Make ``new_state`` the room's state, pushing the previous one on the undo stack (one transaction).

        Args:
            room: the room; ``new_state.room`` is replaced by it.
            new_state: the settings wanted (volume clipped to its ceiling as RoomState always is).
            reason: why, logged (e.g. the request "it's too boomy").
        Returns:
            The stored state (``updated_at`` = now).
        Raises:
            RoomError: bad room name or state. RoomStoreError: the file cannot be written.
        """
        room = check_room_name(room)
        if not isinstance(new_state, RoomState):
            raise RoomError(f"new_state must be a RoomState, got {type(new_state).__name__}")
        state = _validated({**new_state.model_dump(), "room": room, "updated_at": _now()})
        with self._transaction() as conn:
            self._push_undo(conn, self._current(conn, room))
            self._store(conn, state, "apply", str(reason))
        return state

    def set_volume(self, room: str, volume_db: float, reason: str = "volume") -> tuple[RoomState, bool]:
        """Set the room's volume (undoable like :meth:`apply`), never above its ceiling.

        Args:
            room: the room.
            volume_db: the volume wanted, dB (below :data:`MIN_VOLUME_DB` is raised to it).
            reason: why, logged.
        Returns:
            (the stored state, capped): ``capped`` is True when ``volume_db`` was above the ceiling and the
            ceiling was stored instead (say so to the listener).
        Raises:
            RoomError: NaN volume or bad room name.
        """
        room = check_room_name(room)
        volume_db = float(volume_db)
        if math.isnan(volume_db):
            raise RoomError("volume_db must be a number, got NaN")
        with self._transaction() as conn:
            previous = self._current(conn, room)
            state = previous.changed(volume_db=volume_db, updated_at=_now())
            self._push_undo(conn, previous)
            self._store(conn, state, "volume", str(reason))
        return state, volume_db > state.ceiling_db

    def undo(self, room: str, reason: str = "undo") -> RoomState | None:
        """Go back one step: the state before the last :meth:`apply` or :meth:`set_volume` (multi-level:
        each call pops one more). ``now_playing`` stays what it is now; everything else is restored exactly.

        Returns:
            The restored state, or None when there is nothing to undo (nothing is changed or logged).
        """
        room = check_room_name(room)
        with self._transaction() as conn:
            row = conn.execute("SELECT id, state FROM undo WHERE room = ? ORDER BY id DESC LIMIT 1", (room,)).fetchone()
            if row is None:
                return None
            current = self._current(conn, room)
            state = self._parse(row[1]).changed(now_playing=current.now_playing)
            conn.execute("DELETE FROM undo WHERE id = ?", (row[0],))
            self._store(conn, state, "undo", str(reason))
        return state

    def undo_preview(self, room: str) -> RoomState | None:
        """The state :meth:`undo` would restore now (nothing changes), or None when there is nothing to undo."""
        room = check_room_name(room)
        with self._lock:
            row = self._conn.execute("SELECT state FROM undo WHERE room = ? ORDER BY id DESC LIMIT 1", (room,)).fetchone()
            if row is None:
                return None
            return self._parse(row[0]).changed(now_playing=self._current(self._conn, room).now_playing)

    def undo_depth(self, room: str) -> int:
        """How many :meth:`undo` steps the room has."""
        room = check_room_name(room)
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM undo WHERE room = ?", (room,)).fetchone()[0])

    def set_now_playing(self, room: str, title: str | None) -> RoomState:
        """Record what the room plays (logged, not undoable). Returns the stored state."""
        room = check_room_name(room)
        with self._transaction() as conn:
            state = self._current(conn, room).changed(now_playing=title)
            self._store(conn, state, "now_playing", "" if title is None else str(title))
        return state

    def note(self, room: str, action: str, reason: str) -> None:
        """Log an event that changes nothing (e.g. ``note(room, "heard", "what's the weather")``).

        Raises:
            RoomError: bad room name or empty action.
        """
        room = check_room_name(room)
        if not str(action).strip():
            raise RoomError("action must not be empty")
        with self._transaction() as conn:
            state = self._current(conn, room)
            conn.execute("INSERT INTO log (room, at, action, reason, state) VALUES (?, ?, ?, ?, ?)",
                         (room, _now().isoformat(), str(action).strip(), str(reason), state.model_dump_json()))

    def history(self, room: str, n: int = 50) -> list[HistoryRow]:
        """The room's last ``n`` log rows, newest first.

        Raises:
            RoomError: bad room name or n < 1.
        """
        room = check_room_name(room)
        if n < 1:
            raise RoomError(f"n must be >= 1, got {n}")
        with self._lock:
            rows = self._conn.execute("SELECT id, room, at, action, reason, state FROM log WHERE room = ? "
                                      "ORDER BY id DESC LIMIT ?", (room, int(n))).fetchall()
        return [HistoryRow(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], self._parse(r[5])) for r in rows]

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` when the file is sound)."""
        with self._lock:
            return "; ".join(r[0] for r in self._conn.execute("PRAGMA integrity_check"))


def state_json(state: RoomState) -> str:
    """The state's settings (no timestamp) as canonical JSON: equal settings give equal text."""
    return json.dumps(state.settings(), sort_keys=True)
