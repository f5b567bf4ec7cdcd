"""Browser sessions of the web UI: their folders and expiry, and the checks an upload must pass.

One conversation per browser session (its own LangGraph ``thread_id``) and one private folder
``SENSE_HOME/app-sessions/<session id>/`` that holds the session's uploads and results; the folder
is dropped when the session ends or has been idle for :data:`SESSION_TTL_S`, and folders left by a
stopped server expire after :data:`STALE_AFTER_S`. The session id is 128 random bits: it is the only
name under which the session's files can be fetched, and no other session is ever shown it.
Uploads are checked before the agent sees them (audio extension, size, duration, decodable);
every problem is an :class:`UploadProblem` whose message is shown to the person.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from tools.atomic import write_new_file
from tools.audio_io import MAX_PROCESSED_CHANNELS, AudioError, load_audio
from tools.errors import SenseError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
DEFAULT_MAX_UPLOAD_MB = 100.0
DEFAULT_MAX_DURATION_S = 600.0
MB = 1024 * 1024
"""Bytes in the app's "MB" (what Gradio's own size message calls "Mb")."""
#: Session folders older than this are left-overs of a stopped server, s.
STALE_AFTER_S = 24 * 3600
#: A live session idle (no event) for this long is dropped with its folder, s.
SESSION_TTL_S = 6 * 3600
#: How often a live server looks for expired sessions and stale folders, s (on the next event after it).
SWEEP_EVERY_S = 60.0


class UploadProblem(SenseError):
    """An upload the app refuses; the message is shown to the person as is."""


@dataclass(frozen=True)
class Limits:
    """What an upload may be.

    Attributes:
        max_upload_mb: largest file, MB (2^20 bytes); Gradio refuses bigger uploads before they arrive
            (in the browser, before sending; on the server for API clients).
        max_duration_s: longest audio, seconds.
    """

    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_duration_s: float = DEFAULT_MAX_DURATION_S


@dataclass
class Session:
    """One browser session: its conversation, files and user.

    Attributes:
        id: random 128-bit hex id (never derived from anything the browser sends).
        folder: ``SENSE_HOME/app-sessions/<id>``: the session's uploads, results and exports.
        user: whose preferences and devices: the logged-in user, else ``web-<id prefix>``.
        thread: the LangGraph thread id of the conversation ("new chat" starts another).
        history: the chat, in Gradio's messages format.
        source: the session's copy of the audio being worked on.
        adopted: Gradio upload path → the session's copy (so a file is checked and copied once).
        listening: the device the person listens on, passed to every turn, or None.
        result: the last processed result on show (paths, record id), or None.
        shown_original: the input file the "Original" player shows, or None.
        last_active: time of the session's last event (``time.time()``, s); it expires
            :data:`SESSION_TTL_S` after it.
    """

    id: str
    folder: Path
    user: str
    thread: str
    history: list[dict] = field(default_factory=list)
    source: Path | None = None
    adopted: dict[str, Path] = field(default_factory=dict)
    listening: str | None = None
    result: dict | None = None
    shown_original: str | None = None
    last_active: float = field(default_factory=time.time)


def assistant(text: str, title: str | None = None) -> dict:
    """An assistant chat message in Gradio's messages format (with a collapsible ``title`` if given)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if title:
        message["metadata"] = {"title": title, "status": "done"}
    return message


def duration_text(seconds: float) -> str:
    """``m:ss`` for a duration in seconds."""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def safe_name(name: str) -> str:
    """A file name safe to write in a session folder: word characters, ``-``, ``.``, spaces; ≤ 80 + suffix."""
    stem, suffix = os.path.splitext(Path(name).name)
    stem = re.sub(r"[^\w\-. ]+", "_", stem).strip(" .") or "audio"
    return stem[:80] + suffix.lower()


class SessionStore:
    """The live sessions of one app process and their folders under ``root``.

    Args:
        root: where session folders go (created; folders older than :data:`STALE_AFTER_S` are removed).
        greeting: the text of the first assistant message of every new session.
        ttl_s: a live session idle this long (seconds) is dropped with its folder.
        on_drop: called with each session dropped (the app forgets its conversation there).
    """

    def __init__(self, root: Path, greeting: str, *, ttl_s: float = SESSION_TTL_S,
                 on_drop: Callable[[Session], None] | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.greeting = greeting
        self.ttl_s = float(ttl_s)
        self.on_drop = on_drop
        self.sessions: dict[str, Session] = {}
        self._by_page: dict[str, str] = {}  # Gradio session hash (one page load) -> our session id
        self._turn_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._swept = time.time()
        self.remove_stale()

    def _new(self) -> Session:
        sid = secrets.token_hex(16)
        folder = self.root / sid
        folder.mkdir(mode=0o700, parents=True)
        session = Session(sid, folder, f"web-{sid[:12]}", thread=sid, history=[assistant(self.greeting)])
        self.sessions[sid] = session
        self._turn_locks[sid] = threading.Lock()
        return session

    def get(self, session: Session | None, page: str | None, username: str | None = None) -> Session:
        """This page's session: the one in its gr.State, else the one an earlier event of the same page
        load created (events of a fresh page can run before the first one stored its state), else a new one.
        Marks it active; every :data:`SWEEP_EVERY_S` also drops expired sessions (:meth:`expire`).

        Args:
            session: the session the page's ``gr.State`` holds, or None.
            page: Gradio's session hash of the page load, or None.
            username: the logged-in user, who then owns the session's preferences.
        """
        if time.time() - self._swept > SWEEP_EVERY_S:
            self.expire()
        with self._lock:
            if session is None or session.id not in self.sessions:
                known = self.sessions.get(self._by_page.get(page, "")) if page else None
                session = known or self._new()
            if page:
                self._by_page[page] = session.id
            session.last_active = time.time()
        if username:
            session.user = str(username)
        return session

    def turn_lock(self, session: Session) -> threading.Lock:
        """The lock that keeps one session's turns in order (different sessions run side by side)."""
        with self._lock:
            return self._turn_locks.setdefault(session.id, threading.Lock())

    def drop(self, session: Session) -> None:
        """Forget a session, delete its folder and call ``on_drop``."""
        with self._lock:
            known = self.sessions.pop(session.id, None) is not None
            self._turn_locks.pop(session.id, None)
            for page in [p for p, sid in self._by_page.items() if sid == session.id]:
                del self._by_page[page]
        shutil.rmtree(session.folder, ignore_errors=True)
        if known and self.on_drop is not None:
            self.on_drop(session)

    def expire(self, now: float | None = None) -> list[str]:
        """Drop live sessions idle longer than ``ttl_s`` and remove stale folders (:meth:`remove_stale`).

        Returns:
            The ids of the sessions dropped.
        """
        now = time.time() if now is None else now
        self._swept = now
        with self._lock:
            idle = [s for s in self.sessions.values() if now - s.last_active > self.ttl_s]
        for session in idle:
            self.drop(session)
        self.remove_stale(now=now)
        return [s.id for s in idle]

    def remove_stale(self, max_age_s: float = STALE_AFTER_S, now: float | None = None) -> list[Path]:
        """Delete folders under ``root`` that belong to no live session and were last modified more than
        ``max_age_s`` seconds ago (left-overs of a stopped server).

        Returns:
            The folders removed.
        """
        now = time.time() if now is None else now
        removed = []
        for folder in self.root.iterdir():
            try:
                if (folder.is_dir() and not folder.is_symlink() and folder.name not in self.sessions
                        and now - folder.stat().st_mtime > max_age_s):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            except OSError:
                pass
        return removed


def check_upload(path: str | Path, limits: Limits, name: str | None = None) -> float:
    """Check an upload against the limits and decode it.

    Args:
        path: the uploaded file.
        limits: what an upload may be.
        name: the name to show the person (default: the file's name).
    Returns:
        Its duration, seconds.
    Raises:
        UploadProblem: with a message for the person (no server paths in it).
    """
    path = Path(path)
    name = name or path.name
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        kinds = ", ".join(e.lstrip(".").upper() for e in AUDIO_EXTENSIONS)
        raise UploadProblem(f"**{name}** is not an audio file type I take ({kinds}).")
    try:
        st = path.stat()
    except OSError as exc:
        raise UploadProblem(f"**{name}** did not arrive (the upload is gone); send it again.") from exc
    if not stat.S_ISREG(st.st_mode):  # a folder, FIFO or device: never opened (a FIFO would block)
        raise UploadProblem(f"**{name}** is not a file I can read; send the audio file itself.")
    size = st.st_size
    if size == 0:
        raise UploadProblem(f"**{name}** is empty (0 bytes). Pick the audio file itself, or record again.")
    if size > limits.max_upload_mb * MB:
        raise UploadProblem(f"**{name}** is {size / MB:.1f} MB; the limit is {limits.max_upload_mb:g} MB. "
                            "Send a shorter excerpt or a compressed file (FLAC, OGG, MP3).")
    try:
        info = sf.info(str(path))
        duration = info.frames / info.samplerate if info.samplerate else 0.0
    except Exception as exc:  # noqa: BLE001 - any decoder error means "not audio we can read"
        raise UploadProblem(f"I can't read **{name}** as audio: it doesn't look like a {path.suffix.lstrip('.').upper()} "
                            "file (is it a renamed text or video file?). Try a WAV, FLAC, OGG or MP3.") from exc
    if duration > limits.max_duration_s:
        raise UploadProblem(f"**{name}** is {duration_text(duration)} long; the limit is "
                            f"{duration_text(limits.max_duration_s)}. Trim it and send it again.")
    try:
        audio = load_audio(path, max_channels=MAX_PROCESSED_CHANNELS)
    except AudioError as exc:
        reason = str(exc).replace(str(path), "").lstrip(": ").strip()
        raise UploadProblem(f"I can't read **{name}** as audio: {reason}.") from exc
    return audio.duration_s


def adopt(session: Session, upload: str | Path, limits: Limits) -> tuple[Path, bool]:
    """Make an uploaded file the session's current audio: check it, copy it into the session folder.

    A new file also adds a "🎵 name (m:ss)" message from the person to the chat.

    Returns:
        (the session's copy, True when it is new to this session).
    Raises:
        UploadProblem: the upload breaks a limit or is not audio.
    """
    key = str(upload)
    if key in session.adopted:
        session.source = session.adopted[key]
        return session.source, False
    name = safe_name(Path(upload).name)
    duration = check_upload(upload, limits, name)
    target = session.folder / name
    n = 0
    while target.exists():
        n += 1
        target = session.folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
    write_new_file(target, lambda tmp: shutil.copyfile(upload, tmp))  # atomic; never over a file
    session.adopted[key] = target
    session.source = target
    session.history.append({"role": "user", "content": f"🎵 {name} ({duration_text(duration)})"})
    return target, True
