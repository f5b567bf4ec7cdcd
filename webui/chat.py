"""The web UI's event handlers: :class:`SenseApp`, a thin layer over the agent.

Everything a turn does happens in :mod:`agent` (one :class:`agent.engine.Engine` per process);
this class only moves files and words between the browser and it. Preferences are per user: the
logged-in user when a password is set, else one anonymous user id per session. Turns run through
Gradio's queue (``concurrency`` at once, each session's turns in order) and report progress step by
step (:mod:`webui.results`); planner completions take turns in :class:`agent.llm_queue.PlannerQueue`,
and a turn waiting there shows "Waiting for the planner: n ahead".
"""

from __future__ import annotations

import atexit
import logging
import re
import secrets
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import gradio as gr

from agent.engine import Engine
from agent.llm_queue import PlannerQueue, queued
from knowledge.config import data_dir, sense_home
from tools.audio_io import AudioError
from tools.errors import SenseError, one_line
from webui import results
from webui.session import (SESSION_TTL_S, Limits, Session, SessionStore, UploadProblem, adopt, assistant,
                           check_upload)

log = logging.getLogger("sense.app")

DEMO_TRACK = "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
WELCOME = (
    "Hi, I'm **SENSE**. Drop a song on the right (or record one), then tell me how it should sound: "
    "*\"make this sound like it's on my AirPods, less harsh\"*, *\"warmer\"*, *\"cut 250 Hz by 3 dB\"*. "
    "Then say **more**, **less**, **undo** or **reset**, and rate what you hear. "
    "No file at hand? Click an example below the chat.\n\nEverything runs on this machine; your audio never leaves it."
)


#: Most turns at once: the engine keeps the last 6 turns' arrays (agent.nodes.Workspace), and 2 cores
#: gain nothing from more.
MAX_CONCURRENCY = 4


class SenseApp:
    """The web UI over one loaded :class:`agent.runtime.Runtime`.

    Args:
        rt: the loaded runtime (stores, LLM or rules only).
        limits: upload limits.
        sessions_root: where session folders go (default ``SENSE_HOME/app-sessions``).
        concurrency: how many turns Gradio's queue runs at once (1 … :data:`MAX_CONCURRENCY`); one
            session's turns still run in order, and planner completions one at a time: ``rt.llm`` is
            put behind its :class:`agent.llm_queue.PlannerQueue` (one per model, shared by every runtime
            that uses it) unless it already is.
        session_ttl_s: a session idle this long, seconds, is dropped with its folder.
    """

    def __init__(self, rt, *, limits: Limits = Limits(), sessions_root: Path | None = None, concurrency: int = 1,
                 session_ttl_s: float = SESSION_TTL_S):
        rt.llm = queued(rt.llm)
        self.rt = rt
        self.engine = Engine(rt)
        self.limits = limits
        self.concurrency = min(MAX_CONCURRENCY, max(1, int(concurrency)))
        self.store = SessionStore(Path(sessions_root) if sessions_root else sense_home() / "app-sessions", WELCOME,
                                  ttl_s=session_ttl_s, on_drop=self._forget_thread)
        self.planner = getattr(rt.llm, "name", None) or "rule-based parser"
        self.demo_track = self._demo_track()
        atexit.register(self.close)

    @property
    def root(self) -> Path:
        """The folder that holds the session folders."""
        return self.store.root

    @property
    def sessions(self) -> dict[str, Session]:
        """Live sessions by id."""
        return self.store.sessions

    # --- sessions ------------------------------------------------------------------------------

    def _session(self, session: Session | None, request: gr.Request | None) -> Session:
        """This page's session (see :meth:`webui.session.SessionStore.get`)."""
        page = getattr(request, "session_hash", None) if request is not None else None
        username = getattr(request, "username", None) if request is not None else None
        return self.store.get(session, page, username)

    def forget(self, session: Session | None) -> None:
        """Gradio's State delete callback: the tab closed; drop the folder and the conversation."""
        if isinstance(session, Session):
            self.store.drop(session)

    def _forget_thread(self, session: Session) -> None:
        """The store dropped ``session`` (closed or expired): delete its conversation too."""
        try:
            self.engine.forget(session.thread)
        except Exception:  # noqa: BLE001 - cleanup must not fail the server
            log.debug("could not delete thread %s", session.thread, exc_info=True)

    def close(self) -> None:
        """Drop every session of this process (conversations live in memory only, so their files go too)."""
        for session in list(self.sessions.values()):
            self.forget(session)

    def _demo_track(self) -> Path | None:
        try:
            path = data_dir() / "music" / DEMO_TRACK
        except Exception:  # noqa: BLE001 - the examples are optional
            return None
        return path if path.is_file() else None

    # --- uploads -------------------------------------------------------------------------------

    def check_upload(self, path: str | Path, name: str | None = None) -> float:
        """:func:`webui.session.check_upload` against this app's limits: the duration, s; UploadProblem if refused."""
        return check_upload(path, self.limits, name)

    def adopt(self, session: Session, upload: str | Path) -> tuple[Path, bool]:
        """:func:`webui.session.adopt` with this app's limits: (the session's copy, whether it is new)."""
        return adopt(session, upload, self.limits)

    def _adopt_or_explain(self, session: Session, upload: str | None) -> str | None:
        """:meth:`adopt` the upload (if any); None when fine, else what to tell the person.

        A path inside another session's folder (an API client can name any file Gradio may serve) is refused.
        """
        if not upload:
            return None
        try:
            self._own_or_outside(session, Path(upload))
            self.adopt(session, upload)
        except UploadProblem as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. the disk is full: a message, never a traceback
            log.exception("upload failed")
            return f"I couldn't take that file ({type(exc).__name__}). Please try again."
        return None

    def _own_or_outside(self, session: Session, path: Path) -> None:
        """Raise :class:`UploadProblem` when ``path`` lies in the sessions' folder but not in ``session``'s own."""
        try:
            resolved = path.resolve()
        except OSError as exc:
            raise UploadProblem(f"I can't open **{path.name}**.") from exc
        root, own = self.root.resolve(), session.folder.resolve()
        if resolved.is_relative_to(root) and not resolved.is_relative_to(own):
            log.warning("session %s named a file of another session", session.id[:8])
            raise UploadProblem(f"**{path.name}** is not one of your files.")

    def _planner_watch(self, progress):
        """While a turn waits for the planner, show how many requests are ahead of it."""
        if not isinstance(self.rt.llm, PlannerQueue):
            return nullcontext()

        def report(ahead: int) -> None:
            progress(0.08, desc=f"Waiting for the planner: {ahead} ahead…" if ahead
                     else "Understanding your request… (local LLM)")

        return self.rt.llm.watch(report)

    # --- outputs of an event -------------------------------------------------------------------

    def _outputs(self, s: Session, *, msg: Any = None, audio_in: Any = None, result_changed: bool = False) -> tuple:
        """Values for [chatbot, msg, audio_in, original, processed, plot, trace, downloads, rating, variant box,
        variants text, variant B, variant C, "Use C", state]."""
        skip = gr.skip()
        if result_changed:
            r = s.result
            if r is None:
                original = processed = plot = trace = downloads = None
                rating = ""
                s.shown_original = None
            else:
                original = skip if s.shown_original == r["input"] else r["input"]
                s.shown_original = r["input"]
                processed, plot, trace, downloads = r["audio"], r["plot"], r["trace_view"], r["downloads"]
                rating = f"Result #{r['record_id']}: how does it sound? Your rating tunes the next \"{r['words']}\"."
            variants = results.variant_views(r)
        else:
            original = processed = plot = trace = downloads = rating = skip
            variants = (skip,) * 5
        return (list(s.history), skip if msg is None else msg, skip if audio_in is None else audio_in,
                original, processed, plot, trace, downloads, rating, *variants, s)

    # --- a turn --------------------------------------------------------------------------------

    def turn(self, message: str | None, audio: str | None, session: Session | None,
             request: gr.Request = None, progress=gr.Progress()):
        """One chat turn (a generator: first the person's message, then the answer)."""
        s = self._session(session, request)
        text = (message or "").strip()
        with self.store.turn_lock(s):
            problem = self._adopt_or_explain(s, audio)
        if problem:
            s.history.append(assistant(f"⚠️ {problem}"))
            yield self._outputs(s, msg=text, audio_in=gr.update(value=None))
            return
        if not text:
            if s.source is None:
                s.history.append(assistant("Drop a song on the right, or click an example below, then tell me what to change."))
            yield self._outputs(s)
            return
        s.history.append({"role": "user", "content": text})
        yield self._outputs(s, msg="")
        progress(0.05, desc="Understanding your request…" + (" (local LLM)" if self.rt.llm else ""))
        try:
            with self.store.turn_lock(s), self._planner_watch(progress):
                outcome = results.run_turn(self.engine, s, text, progress)
                changed = results.show(s, outcome)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a traceback
            s.history.append(assistant("⚠️ " + self._friendly(exc)))
            yield self._outputs(s)
            return
        yield self._outputs(s, result_changed=changed)

    def _friendly(self, exc: Exception) -> str:
        """What to tell the person about a failed turn: the app's one error boundary. A :class:`SenseError`
        (unreadable audio, a missing model or data, an unreachable LLM server …) is shown as its one line,
        server paths cut to file names; anything else is a bug: logged, and a short apology."""
        if isinstance(exc, SenseError):
            text = one_line(exc)
            for path in self._paths_in(text):
                text = text.replace(path, Path(path).name)
            if isinstance(exc, AudioError):
                return f"I can't read that audio: {text}"
            return f"I couldn't do that: {text}"
        log.exception("turn failed")
        return (f"Sorry, something went wrong on my side ({type(exc).__name__}). Your conversation is intact: "
                "try again, or say \"reset\".")

    @staticmethod
    def _paths_in(text: str) -> list[str]:
        return re.findall(r"(/[^\s:]+)", text)

    # --- smaller events ------------------------------------------------------------------------

    def on_upload(self, audio: str | None, session: Session | None, request: gr.Request = None):
        """Check a new upload or recording at once, so a bad file is reported before anything is sent."""
        s = self._session(session, request)
        if not audio:
            return self._outputs(s)
        before = len(s.adopted)
        with self.store.turn_lock(s):
            problem = self._adopt_or_explain(s, audio)
        if problem:
            s.history.append(assistant(f"⚠️ {problem}"))
            return self._outputs(s, audio_in=gr.update(value=None))
        if len(s.adopted) > before and sum(m["role"] == "user" for m in s.history) == 1:
            s.history.append(assistant("Got it. Now tell me how it should sound, or tap an example request."))
        return self._outputs(s)

    def rate(self, rating: int, session: Session | None, request: gr.Request = None):
        """Store 👍 (``rating`` > 0) or 👎 for the result on show; returns (message, session)."""
        s = self._session(session, request)
        if s.result is None:
            return "Nothing to rate yet: process something first.", s
        record = s.result["record_id"]
        try:
            self.rt.prefs.rate(s.user, record, rating)
        except (KeyError, ValueError) as exc:
            return f"Could not store the rating: {exc}", s
        if rating > 0:
            return f"👍 Saved: result #{record} is your starting point the next time you ask for \"{s.result['words']}\".", s
        return f"👎 Saved: result #{record} won't be used as a starting point. Try **less** or **undo**.", s

    def pick_variant(self, letter: str):
        """The handler of a variant button: the chat turn "variant B" (:mod:`agent.variants` reads it), so a pick
        is the same in the chat and the page."""
        def pick(audio: str | None, session: Session | None, request: gr.Request = None, progress=gr.Progress()):
            yield from self.turn("keep A" if letter == "A" else f"variant {letter}", audio, session, request, progress)

        return pick

    def rate_up(self, session: Session | None, request: gr.Request = None):
        """👍: :meth:`rate` with +1."""
        return self.rate(1, session, request)

    def rate_down(self, session: Session | None, request: gr.Request = None):
        """👎: :meth:`rate` with -1."""
        return self.rate(-1, session, request)

    def new_chat(self, session: Session | None, request: gr.Request = None):
        """Start a new conversation (new thread) on the same audio."""
        s = self._session(session, request)
        s.thread = secrets.token_hex(16)
        s.history = [assistant(WELCOME)]
        s.result = None
        if s.source is not None:
            s.history.append(assistant(f"New conversation. Still working on **{s.source.name}**; tell me what to change."))
        return self._outputs(s, msg="", result_changed=True)

    def device_choices(self, text: str | None) -> list[tuple[str, str]]:
        """(label, device name) pairs: every device for an empty query, else the 6 best matches."""
        text = (text or "").strip()
        if not text:
            return [(f"{name} · {self.rt.store.device_type(name)}", name) for name in self.rt.store.devices()]
        return [(f"{c.name} · {c.type} · match {c.score:.2f}", c.name) for c in self.rt.devices.search(text, k=6)]

    def search_devices(self, text: str | None):
        """The device dropdown for a search text, the best match picked (:meth:`device_choices`)."""
        choices = self.device_choices(text)
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    def devices_markdown(self, s: Session) -> str:
        """The person's devices and what they listen on, as Markdown."""
        owned = self.rt.prefs.owned_devices(s.user)
        mine = " · ".join(owned) if owned else "none yet (add the ones you own, so \"my AirPods\" means yours)"
        listening = s.listening or "not set (a device is rendered against its class's neutral target)"
        return f"**My devices:** {mine}  \n**I listen on:** {listening}"

    def on_load(self, session: Session | None, request: gr.Request = None):
        """Page load: (devices Markdown, chat history, session)."""
        s = self._session(session, request)
        return self.devices_markdown(s), list(s.history), s

    def own(self, device: str | None, session: Session | None, request: gr.Request = None):
        """Register ``device`` as one the person owns; (devices Markdown, session)."""
        s = self._session(session, request)
        if device:
            self.rt.prefs.own_device(s.user, device)
        return self.devices_markdown(s), s

    def listen_on(self, device: str | None, session: Session | None, request: gr.Request = None):
        """Set (or clear, with None) the device the person listens on; (devices Markdown, session)."""
        s = self._session(session, request)
        s.listening = device or None
        return self.devices_markdown(s), s

    def quick(self, word: str):
        """A handler that sends ``word`` ("more", "undo" …) as a turn (named ``quick_<word>`` for Gradio)."""
        def quick_reply(audio: str | None, session: Session | None, request: gr.Request = None, progress=gr.Progress()):
            yield from self.turn(word, audio, session, request, progress)

        quick_reply.__name__ = f"quick_{word}"
        return quick_reply

    # --- the page ------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        """The Blocks app (call :func:`webui.server.launch` or ``.launch()`` on it)."""
        from webui.layout import build

        return build(self)
