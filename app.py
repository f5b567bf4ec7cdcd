#!/usr/bin/env python
"""SENSE in the browser: a Gradio chat that is a thin layer over the agent.

    python app.py [--host 127.0.0.1] [--port 7860] [--no-llm] [--model NAME|PATH.gguf] [--llm-url URL]

Everything a turn does happens in :mod:`agent` (one LangGraph graph per process, built once with
:func:`agent.graph.build_graph`); this file only moves files and words between the browser and it:

- one conversation per browser session (its own LangGraph ``thread_id``) and one private folder
  ``SENSE_HOME/app-sessions/<session id>/`` that holds the session's uploads and results; the
  folder and the conversation are dropped when the session ends;
- preferences are per user: the logged-in user when ``SENSE_APP_PASSWORD`` is set (user name
  ``SENSE_APP_USER``, default ``sense``), else one anonymous user id per session;
- uploads are checked before the agent sees them (audio extension, size, duration, decodable)
  and every problem becomes a message in the chat, never a traceback;
- turns run through Gradio's queue one at a time (``--concurrency``, default 1 on a 2-core
  machine) and report progress node by node.

Nothing leaves the machine: no analytics, no share links, system fonts only.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import math
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline-first: no telemetry

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from agent.graph import build_graph, turn_input  # noqa: E402
from knowledge.config import data_dir, sense_home  # noqa: E402
from knowledge.fr_store import FR_GRID_HZ  # noqa: E402
from tools.audio_io import AudioError, load_audio  # noqa: E402
from tools.eq import Filter  # noqa: E402
from tools.export import filters_from_plan, write_exports  # noqa: E402

log = logging.getLogger("sense.app")

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
DEFAULT_MAX_UPLOAD_MB = 100.0
DEFAULT_MAX_DURATION_S = 600.0
MB = 1024 * 1024
"""Bytes in the app's "MB" (what Gradio's own size message calls "Mb")."""
HEADLINE_REQUEST = "make this sound like it's on my AirPods, less harsh"
DEMO_TRACK = "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
QUICK_REPLIES = (("more", "➕ more"), ("less", "➖ less"), ("undo", "↩ undo"), ("reset", "⟲ reset"))
#: After each graph node: (progress fraction, what happens next).
PROGRESS = {
    "understand": (0.25, "Looking up devices and your preferences…"),
    "retrieve": (0.35, "Planning the EQ…"),
    "no_audio": (0.9, "Answering…"),
    "plan": (0.45, "Processing the audio…"),
    "act": (0.7, "Measuring the result…"),
    "check": (0.85, "Drawing the plot and writing the explanation…"),
    "respond": (1.0, "Done"),
}
WELCOME = (
    "Hi, I'm **SENSE**. Drop a song on the right (or record one), then tell me how it should sound: "
    "*\"make this sound like it's on my AirPods, less harsh\"*, *\"warmer\"*, *\"cut 250 Hz by 3 dB\"*. "
    "Then say **more**, **less**, **undo** or **reset**, and rate what you hear. "
    "No file at hand? Click an example below the chat.\n\nEverything runs on this machine; your audio never leaves it."
)


class UploadProblem(Exception):
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


def _assistant(text: str, title: str | None = None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if title:
        message["metadata"] = {"title": title, "status": "done"}
    return message


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _safe_name(name: str) -> str:
    stem, suffix = os.path.splitext(Path(name).name)
    stem = re.sub(r"[^\w\-. ]+", "_", stem).strip(" .") or "audio"
    return stem[:80] + suffix.lower()


class SenseApp:
    """The web UI over one loaded :class:`agent.runtime.Runtime`.

    Args:
        rt: the loaded runtime (stores, LLM or rules only).
        limits: upload limits.
        sessions_root: where session folders go (default ``SENSE_HOME/app-sessions``).
        concurrency: how many turns the queue runs at once (the graph itself is serialised by a
            lock: the LLM and the graph's audio cache are not thread-safe).
    """

    def __init__(self, rt, *, limits: Limits = Limits(), sessions_root: Path | None = None, concurrency: int = 1):
        self.rt = rt
        self.graph = build_graph(rt)
        self.limits = limits
        self.concurrency = max(1, int(concurrency))
        self.root = Path(sessions_root) if sessions_root else sense_home() / "app-sessions"
        self.root.mkdir(parents=True, exist_ok=True)
        self.sessions: dict[str, Session] = {}
        self._by_page: dict[str, str] = {}  # Gradio session hash (one page load) -> our session id
        self._sessions_lock = threading.Lock()
        self._graph_lock = threading.Lock()
        self.planner = getattr(rt.llm, "name", None) or "rule-based parser"
        self.demo_track = self._demo_track()
        self._remove_stale_sessions()
        atexit.register(self.close)

    # --- sessions ------------------------------------------------------------------------------

    def _new_session(self) -> Session:
        sid = secrets.token_hex(16)
        folder = self.root / sid
        folder.mkdir(mode=0o700, parents=True)
        session = Session(sid, folder, f"web-{sid[:12]}", thread=sid, history=[_assistant(WELCOME)])
        self.sessions[sid] = session
        return session

    def _session(self, session: Session | None, request: gr.Request | None) -> Session:
        """This page's session: the one in its gr.State, else the one an earlier event of the same page
        load created (events of a fresh page can run before the first one stored its state), else a new one."""
        page = getattr(request, "session_hash", None) if request is not None else None
        with self._sessions_lock:
            if session is None or session.id not in self.sessions:
                known = self.sessions.get(self._by_page.get(page, "")) if page else None
                session = known or self._new_session()
            if page:
                self._by_page[page] = session.id
        username = getattr(request, "username", None) if request is not None else None
        if username:
            session.user = str(username)
        return session

    def forget(self, session: Session | None) -> None:
        """Gradio's State delete callback: the tab closed; drop the folder and the conversation."""
        if not isinstance(session, Session):
            return
        with self._sessions_lock:
            self.sessions.pop(session.id, None)
            for page in [p for p, sid in self._by_page.items() if sid == session.id]:
                del self._by_page[page]
        shutil.rmtree(session.folder, ignore_errors=True)
        try:
            self.graph.checkpointer.delete_thread(session.thread)
        except Exception:  # noqa: BLE001 - cleanup must not fail the server
            log.debug("could not delete thread %s", session.thread, exc_info=True)

    def close(self) -> None:
        """Drop every session of this process (conversations live in memory only, so their files go too)."""
        for session in list(self.sessions.values()):
            self.forget(session)

    def _remove_stale_sessions(self, max_age_s: float = 24 * 3600) -> None:
        """Session folders older than a day are left-overs of a stopped server."""
        now = time.time()
        for folder in self.root.iterdir():
            try:
                if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass

    def _demo_track(self) -> Path | None:
        try:
            path = data_dir() / "music" / DEMO_TRACK
        except Exception:  # noqa: BLE001 - the examples are optional
            return None
        return path if path.is_file() else None

    # --- uploads -------------------------------------------------------------------------------

    def check_upload(self, path: str | Path, name: str | None = None) -> float:
        """Check an upload against the limits and decode it; returns its duration in seconds.

        Raises:
            UploadProblem: with a message for the person (no server paths in it).
        """
        path = Path(path)
        name = name or path.name
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            kinds = ", ".join(e.lstrip(".").upper() for e in AUDIO_EXTENSIONS)
            raise UploadProblem(f"**{name}** is not an audio file type I take ({kinds}).")
        size = path.stat().st_size
        if size == 0:
            raise UploadProblem(f"**{name}** is empty (0 bytes). Pick the audio file itself, or record again.")
        if size > self.limits.max_upload_mb * MB:
            raise UploadProblem(f"**{name}** is {size / MB:.1f} MB; the limit is {self.limits.max_upload_mb:g} MB. "
                                "Send a shorter excerpt or a compressed file (FLAC, OGG, MP3).")
        try:
            info = sf.info(str(path))
            duration = info.frames / info.samplerate if info.samplerate else 0.0
        except Exception as exc:  # noqa: BLE001 - any decoder error means "not audio we can read"
            raise UploadProblem(f"I can't read **{name}** as audio: it doesn't look like a {path.suffix.lstrip('.').upper()} "
                                "file (is it a renamed text or video file?). Try a WAV, FLAC, OGG or MP3.") from exc
        if duration > self.limits.max_duration_s:
            raise UploadProblem(f"**{name}** is {_duration(duration)} long; the limit is "
                                f"{_duration(self.limits.max_duration_s)}. Trim it and send it again.")
        try:
            audio = load_audio(path)
        except AudioError as exc:
            reason = str(exc).replace(str(path), "").lstrip(": ").strip()
            raise UploadProblem(f"I can't read **{name}** as audio: {reason}.") from exc
        return audio.duration_s

    def adopt(self, session: Session, upload: str | Path) -> tuple[Path, bool]:
        """Make an uploaded file the session's current audio: check it, copy it into the session folder.

        Returns:
            (the session's copy, True when it is new to this session).
        Raises:
            UploadProblem: the upload breaks a limit or is not audio.
        """
        key = str(upload)
        if key in session.adopted:
            session.source = session.adopted[key]
            return session.source, False
        name = _safe_name(Path(upload).name)
        duration = self.check_upload(upload, name)
        target = session.folder / name
        n = 0
        while target.exists():
            n += 1
            target = session.folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        shutil.copyfile(upload, target)
        session.adopted[key] = target
        session.source = target
        session.history.append({"role": "user", "content": f"🎵 {name} ({_duration(duration)})"})
        return target, True

    def _adopt_or_explain(self, session: Session, upload: str | None) -> str | None:
        """:meth:`adopt` the upload (if any); None when fine, else what to tell the person."""
        if not upload:
            return None
        try:
            self.adopt(session, upload)
        except UploadProblem as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. the disk is full: a message, never a traceback
            log.exception("upload failed")
            return f"I couldn't take that file ({type(exc).__name__}). Please try again."
        return None

    # --- outputs of an event -------------------------------------------------------------------

    def _outputs(self, s: Session, *, msg: Any = None, audio_in: Any = None, result_changed: bool = False) -> tuple:
        """Values for [chatbot, msg, audio_in, original, processed, plot, trace, downloads, rating, state]."""
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
        else:
            original = processed = plot = trace = downloads = rating = skip
        return (list(s.history), skip if msg is None else msg, skip if audio_in is None else audio_in,
                original, processed, plot, trace, downloads, rating, s)

    # --- a turn --------------------------------------------------------------------------------

    def turn(self, message: str | None, audio: str | None, session: Session | None,
             request: gr.Request = None, progress=gr.Progress()):
        """One chat turn (a generator: first the person's message, then the answer)."""
        s = self._session(session, request)
        text = (message or "").strip()
        problem = self._adopt_or_explain(s, audio)
        if problem:
            s.history.append(_assistant(f"⚠️ {problem}"))
            yield self._outputs(s, msg=text, audio_in=gr.update(value=None))
            return
        if not text:
            if s.source is None:
                s.history.append(_assistant("Drop a song on the right, or click an example below, then tell me what to change."))
            yield self._outputs(s)
            return
        s.history.append({"role": "user", "content": text})
        yield self._outputs(s, msg="")
        progress(0.05, desc="Understanding your request…" + (" (local LLM)" if self.rt.llm else ""))
        try:
            with self._graph_lock:
                values = self._run_graph(s, text, progress)
            changed = self._show(s, values)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a traceback
            s.history.append(_assistant("⚠️ " + self._friendly(exc)))
            yield self._outputs(s)
            return
        yield self._outputs(s, result_changed=changed)

    def _run_graph(self, s: Session, text: str, progress) -> dict:
        config = {"configurable": {"thread_id": s.thread}}
        turn = turn_input(text, s.source, user=s.user, listening_device=s.listening)
        for update in self.graph.stream(turn, config, stream_mode="updates"):
            node = next(iter(update))
            fraction, desc = PROGRESS.get(node, (0.9, "Finishing…"))
            progress(fraction, desc=desc)
        return self.graph.get_state(config).values

    def _friendly(self, exc: Exception) -> str:
        from agent.llm import LLMError
        from agent.models import ModelMissingError
        from knowledge.config import DataMissingError

        if isinstance(exc, AudioError):
            text = str(exc)
            for path in self._paths_in(text):
                text = text.replace(path, Path(path).name)
            return f"I can't read that audio: {text}"
        if isinstance(exc, (LLMError, ModelMissingError)):
            return f"The planner model is not available right now ({exc}). Try again in a moment."
        if isinstance(exc, DataMissingError):
            return f"Some of SENSE's data is missing on this machine: {exc}"
        log.exception("turn failed")
        return (f"Sorry, something went wrong on my side ({type(exc).__name__}). Your conversation is intact: "
                "try again, or say \"reset\".")

    @staticmethod
    def _paths_in(text: str) -> list[str]:
        return re.findall(r"(/[^\s:]+)", text)

    def _show(self, s: Session, values: dict) -> bool:
        """Add the agent's answer to the chat; returns True when the result panel changes."""
        status = values.get("status")
        if status != "processed":
            s.history.append(_assistant(values.get("reply") or "…"))
            if values.get("settings") is None and s.result is not None:  # reset / undone to the original
                s.result = None
                return True
            return False
        trace = json.loads(Path(values["outputs"]["trace"]).read_text(encoding="utf-8"))
        exports = self._exports(s, values, trace)
        downloads = [values["outputs"]["audio"], str(exports["config"]), str(exports["parametric"]), str(exports["trace"])]
        settings = values["settings"]
        words = ", ".join(f"{a['direction']} {a['descriptor']}" for a in settings["adjustments"]) or values["request"]
        s.result = {"input": values["input_path"], "audio": values["outputs"]["audio"], "plot": values["outputs"]["plot"],
                    "record_id": values["record_id"], "trace_view": self._trace_view(trace), "downloads": downloads,
                    "words": words}
        s.history.append(_assistant(values["reply"]))
        s.history.append(_assistant(self._trace_markdown(trace), title=self._trace_title(trace)))
        return True

    def _exports(self, s: Session, values: dict, trace: dict) -> dict[str, Path]:
        """config.txt, ParametricEQ.txt and a copy of the JSON trace with file names for server paths."""
        plan, facts = values["plan"], values["facts"]
        transfer = next(((label, np.asarray(curve)) for label, curve in facts["stage_curves"].items()
                         if label.startswith("device transfer")), None)
        stages = [label for label in facts["stage_curves"]]
        header = [f"SENSE EQ for \"{values['request']}\" (result #{values['record_id']}, {time.strftime('%Y-%m-%d %H:%M')})",
                  f"Stages: {'; '.join(stages)}.",
                  "Loudness matching and the true-peak limiter SENSE applied after the EQ are not in this file."]
        folder = s.folder / "exports" / Path(values["outputs"]["audio"]).stem
        written = write_exports(folder, filters_from_plan(plan), (FR_GRID_HZ, transfer[1]) if transfer else None,
                                header=header, graphic_label=transfer[0] if transfer else None)
        public = {**trace, "input": Path(trace["input"]).name,
                  "outputs": {k: Path(v).name for k, v in (trace.get("outputs") or {}).items()}}
        written["trace"] = folder / Path(values["outputs"]["trace"]).name
        written["trace"].write_text(json.dumps(public, indent=2, ensure_ascii=False), encoding="utf-8")
        return written

    @staticmethod
    def _trace_view(trace: dict) -> dict:
        """The trace for the page: plan, checks, measurements … with file names instead of server paths."""
        plan = []
        for call in trace["plan"]:
            args = dict(call["args"])
            if "filters" in args:
                args["filters"] = [Filter(**f).describe() for f in args["filters"]]
            plan.append({"tool": call["tool"], "args": args})
        view = {k: trace.get(k) for k in ("request", "intent", "intent_path", "llm", "devices", "adjustments",
                                          "checks", "measurements", "timings_s", "preference_record_id")}
        view["plan"] = plan
        view["files"] = {k: Path(v).name for k, v in (trace.get("outputs") or {}).items()}
        return view

    @staticmethod
    def _trace_title(trace: dict) -> str:
        checks = trace.get("checks") or []
        passed = sum(1 for c in checks if c["ok"])
        steps = " → ".join(c["tool"] for c in trace["plan"])
        return f"🔧 Tool trace: {steps} · {passed}/{len(checks)} checks passed · {trace['timings_s'].get('total', 0):.1f} s"

    @staticmethod
    def _trace_markdown(trace: dict) -> str:
        lines = ["**Plan**"]
        for i, call in enumerate(trace["plan"], 1):
            a = call["args"]
            if call["tool"] == "device_transfer":
                octave = a["smoothing_octaves"]
                smoothing = f"1/{round(1 / octave)}" if octave > 0 else "no"
                detail = (f"{a['target']} relative to {a['reference']} ({a['reference_kind']}), "
                          f"{smoothing}-octave smoothing, boosts ≤ +{a['max_boost_db']:g} dB")
            elif call["tool"] == "equalize" and "descriptor" in a:
                detail = f"{a['direction']} {a['descriptor']}, amount {a['amount']:.2f}, {len(a['filters'])} peaking filters"
            elif call["tool"] == "equalize":
                detail = ", ".join(f"{e['label']} {e['gain_db']:+g} dB" for e in a["band_edits"])
            else:
                detail = ", ".join(f"{k} {v}" for k, v in a.items())
            lines.append(f"{i}. `{call['tool']}` {detail}")
        lines.append("\n**Checks**")
        for c in trace.get("checks") or []:
            lines.append(f"- {'✅' if c['ok'] else '❌'} {c['name']}: expected {c['expected']}, measured {c['measured']}")
        m = trace.get("measurements") or {}
        bands = ", ".join(f"{k.replace('_', ' ')} {v:+.1f} dB" for k, v in (m.get("band_energy_change_db") or {}).items())
        lines.append(f"\n**Measured** {bands}; {m.get('lufs_in', float('nan')):.1f} → {m.get('lufs_out', float('nan')):.1f} LUFS; "
                     f"true peak {m.get('true_peak_dbtp', float('nan')):.1f} dBTP")
        timings = trace.get("timings_s") or {}
        lines.append("\n**Time** " + " · ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
        lines.append(f"\nPlanner: {trace.get('intent_path')}{' (' + trace['llm'] + ')' if trace.get('llm') else ''}. "
                     "The full trace is in *Tool trace* on the right and in the downloads.")
        return "\n".join(lines)

    # --- smaller events ------------------------------------------------------------------------

    def on_upload(self, audio: str | None, session: Session | None, request: gr.Request = None):
        """Check a new upload or recording at once, so a bad file is reported before anything is sent."""
        s = self._session(session, request)
        if not audio:
            return self._outputs(s)
        before = len(s.adopted)
        problem = self._adopt_or_explain(s, audio)
        if problem:
            s.history.append(_assistant(f"⚠️ {problem}"))
            return self._outputs(s, audio_in=gr.update(value=None))
        if len(s.adopted) > before and sum(m["role"] == "user" for m in s.history) == 1:
            s.history.append(_assistant("Got it. Now tell me how it should sound, or tap an example request."))
        return self._outputs(s)

    def rate(self, rating: int, session: Session | None, request: gr.Request = None):
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

    def new_chat(self, session: Session | None, request: gr.Request = None):
        s = self._session(session, request)
        s.thread = secrets.token_hex(16)
        s.history = [_assistant(WELCOME)]
        s.result = None
        if s.source is not None:
            s.history.append(_assistant(f"New conversation. Still working on **{s.source.name}**; tell me what to change."))
        return self._outputs(s, msg="", result_changed=True)

    def device_choices(self, text: str | None) -> list[tuple[str, str]]:
        text = (text or "").strip()
        if not text:
            return [(f"{name} · {self.rt.store.device_type(name)}", name) for name in self.rt.store.devices()]
        return [(f"{c.name} · {c.type} · match {c.score:.2f}", c.name) for c in self.rt.devices.search(text, k=6)]

    def search_devices(self, text: str | None):
        choices = self.device_choices(text)
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    def devices_markdown(self, s: Session) -> str:
        owned = self.rt.prefs.owned_devices(s.user)
        mine = " · ".join(owned) if owned else "none yet (add the ones you own, so \"my AirPods\" means yours)"
        listening = s.listening or "not set (a device is rendered against its class's neutral target)"
        return f"**My devices:** {mine}  \n**I listen on:** {listening}"

    def on_load(self, session: Session | None, request: gr.Request = None):
        s = self._session(session, request)
        return self.devices_markdown(s), list(s.history), s

    def own(self, device: str | None, session: Session | None, request: gr.Request = None):
        s = self._session(session, request)
        if device:
            self.rt.prefs.own_device(s.user, device)
        return self.devices_markdown(s), s

    def listen_on(self, device: str | None, session: Session | None, request: gr.Request = None):
        s = self._session(session, request)
        s.listening = device or None
        return self.devices_markdown(s), s

    # --- the page ------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        """The Blocks app (call :func:`launch` or ``.launch()`` on it)."""
        with gr.Blocks(title="SENSE · audio assistant", analytics_enabled=False) as demo:
            state = gr.State(None, delete_callback=self.forget)
            audio_in = gr.Audio(label="Your track · upload or record", sources=["upload", "microphone"],
                                type="filepath", elem_id="sense-input", render=False,
                                waveform_options=gr.WaveformOptions(show_recording_waveform=True))
            gr.HTML(HEADER_HTML.format(planner=self.planner), elem_id="sense-header")
            with gr.Row(equal_height=False):
                with gr.Column(scale=7, min_width=420):
                    chatbot = gr.Chatbot(value=[_assistant(WELCOME)], height=600, show_label=False, elem_id="sense-chat",
                                         feedback_options=None, buttons=["copy"], group_consecutive_messages=False,
                                         autoscroll=True)
                    with gr.Row(elem_id="sense-compose"):
                        msg = gr.Textbox(placeholder="Tell me how it should sound…  (Enter to send)", show_label=False,
                                         container=False, scale=8, elem_id="sense-msg", max_lines=4)
                        send = gr.Button("Send", variant="primary", scale=1, min_width=90, elem_id="sense-send")
                    with gr.Row(elem_id="sense-quick"):
                        quick = [gr.Button(label, size="sm", elem_id=f"sense-quick-{word}", min_width=60)
                                 for word, label in QUICK_REPLIES]
                        new_chat = gr.Button("🗨 new chat", size="sm", elem_id="sense-new-chat", min_width=60)
                    examples = self._examples(audio_in, msg)
                    plot = gr.Image(label="What changed",
                                    type="filepath", interactive=False, elem_id="sense-plot",
                                    buttons=["download", "fullscreen"], height=680)
                with gr.Column(scale=5, min_width=380):
                    audio_in.render()
                    with gr.Group(elem_id="sense-result"):
                        with gr.Row(equal_height=True):
                            original = gr.Audio(label="A · original", interactive=False, elem_id="sense-original",
                                                waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                                                buttons=["download"], min_width=160)
                            processed = gr.Audio(label="B · SENSE", interactive=False,
                                                 elem_id="sense-processed",
                                                 waveform_options=gr.WaveformOptions(show_recording_waveform=False),
                                                 buttons=["download"], min_width=160)
                        ab = gr.Button("A/B ⇄  switch at the same moment · loudness-matched", elem_id="sense-ab", size="sm")
                    with gr.Row(elem_id="sense-rate-row", equal_height=True):
                        up = gr.Button("👍", elem_id="sense-up", size="sm", min_width=50, scale=0)
                        down = gr.Button("👎", elem_id="sense-down", size="sm", min_width=50, scale=0)
                        rating = gr.Markdown("", elem_id="sense-rating")
                    downloads = gr.File(label="Downloads: audio · EqualizerAPO config.txt · AutoEq ParametricEQ.txt · trace",
                                        file_count="multiple", interactive=False, elem_id="sense-downloads")
                    with gr.Accordion("🎧 Devices: find one, say you own it, or say what you listen on", open=True,
                                      elem_id="sense-devices"):
                        search = gr.Textbox(placeholder="airpods pro 2, sony xm4, bose qc35 …", show_label=False,
                                            container=False, elem_id="sense-device-search")
                        picked = gr.Dropdown(choices=self.device_choices(""), value=None, label="Device",
                                             elem_id="sense-device-pick", filterable=True)
                        with gr.Row():
                            like_btn = gr.Button("Sound like it", size="sm", elem_id="sense-device-like")
                            listen_btn = gr.Button("I listen on it", size="sm", elem_id="sense-device-listen")
                            own_btn = gr.Button("⭐ My device", size="sm", elem_id="sense-device-own")
                        devices_md = gr.Markdown(elem_id="sense-my-devices")
                    with gr.Accordion("🔧 Tool trace: plan, checks, measurements", open=False, elem_id="sense-trace-box"):
                        trace = gr.JSON(elem_id="sense-trace", show_label=False)

            outputs = [chatbot, msg, audio_in, original, processed, plot, trace, downloads, rating, state]
            turn_args = dict(outputs=outputs, concurrency_id="turn", concurrency_limit=self.concurrency,
                             show_progress="full", show_progress_on=[chatbot])
            send.click(self.turn, [msg, audio_in, state], api_name="chat", **turn_args)
            msg.submit(self.turn, [msg, audio_in, state], api_visibility="private", **turn_args)
            for (word, _), button in zip(QUICK_REPLIES, quick):
                button.click(self._quick(word), [audio_in, state], api_visibility="private", **turn_args)
            new_chat.click(self.new_chat, [state], outputs, api_visibility="private", queue=False)
            audio_in.upload(self.on_upload, [audio_in, state], outputs, api_visibility="private",
                            concurrency_id="turn", concurrency_limit=self.concurrency)
            audio_in.stop_recording(self.on_upload, [audio_in, state], outputs, api_visibility="private",
                                    concurrency_id="turn", concurrency_limit=self.concurrency)
            up.click(self.rate_up, [state], [rating, state], api_name="rate_up", concurrency_limit=None)
            down.click(self.rate_down, [state], [rating, state], api_name="rate_down", concurrency_limit=None)
            ab.click(None, js=AB_SWITCH_JS)
            search.input(self.search_devices, [search], [picked], api_visibility="private", concurrency_limit=2,
                         concurrency_id="search", show_progress="hidden", trigger_mode="always_last")
            own_btn.click(self._with_request(self.own), [picked, state], [devices_md, state], api_visibility="private",
                          concurrency_limit=None)
            listen_btn.click(self._with_request(self.listen_on), [picked, state], [devices_md, state],
                             api_visibility="private", concurrency_limit=None)
            like_btn.click(lambda name: f"make this sound like it's on the {name}" if name else gr.skip(), [picked], [msg],
                           queue=False, api_visibility="private").then(
                self.turn, [msg, audio_in, state], api_visibility="private", **turn_args)
            demo.load(self.on_load, [state], [devices_md, chatbot, state], api_visibility="private")

            if examples is not None:
                examples.load_input_event.then(self.turn, [msg, audio_in, state], api_visibility="private", **turn_args)
        return demo

    def _examples(self, audio_in: gr.Audio, msg: gr.Textbox) -> gr.Examples | None:
        """One-click examples on the bundled-by-reference demo track (Vibe Ace), or None without it."""
        if self.demo_track is None:
            return None
        requests = [(HEADLINE_REQUEST, "🎧 "), ("warmer", "🔥 "), ("less muddy, a bit brighter", "✨ "),
                    ("boost the bass by 4 dB", "🔊 ")]
        return gr.Examples(examples=[[str(self.demo_track), text] for text, _ in requests], inputs=[audio_in, msg],
                           example_labels=[icon + text for text, icon in requests], elem_id="sense-examples",
                           label="One click: \"Vibe Ace\" by Kevin MacLeod (CC BY 3.0) through a request")

    def rate_up(self, session: Session | None, request: gr.Request = None):
        return self.rate(1, session, request)

    def rate_down(self, session: Session | None, request: gr.Request = None):
        return self.rate(-1, session, request)

    def _quick(self, word: str):
        def quick_reply(audio: str | None, session: Session | None, request: gr.Request = None, progress=gr.Progress()):
            yield from self.turn(word, audio, session, request, progress)

        quick_reply.__name__ = f"quick_{word}"
        return quick_reply

    @staticmethod
    def _with_request(fn):
        def handler(value, session, request: gr.Request = None):
            return fn(value, session, request)

        handler.__name__ = fn.__name__
        return handler


HEADER_HTML = """
<div class="sense-header">
  <div class="sense-logo">S</div>
  <div>
    <h1>SENSE <span>· your music, the way you describe it</span></h1>
    <p>Drop a track, say how it should sound (a device, a tone, a dB move); hear A/B, see the numbers.
       Offline: measured FR curves (AutoEq), the Audealize word→EQ prior and your own ratings. Planner: {planner}.</p>
  </div>
</div>
"""

#: The A/B switch: pause the one playing, start the other at the same moment (both files are loudness-matched).
AB_SWITCH_JS = """
() => {
  const a = document.querySelector('#sense-original audio');
  const b = document.querySelector('#sense-processed audio');
  if (!a || !b || !b.currentSrc) { return; }
  const st = window.__senseAB || (window.__senseAB = {active: 'A'});
  const from = !a.paused ? a : (!b.paused ? b : (st.active === 'A' ? a : b));
  const to = from === a ? b : a;
  const t = from.currentTime || 0;
  from.pause();
  try { to.currentTime = isFinite(to.duration) ? Math.min(t, to.duration) : t; } catch (e) {}
  to.play().catch(() => {});
  st.active = to === a ? 'A' : 'B';
  document.querySelector('#sense-original')?.classList.toggle('sense-ab-active', st.active === 'A');
  document.querySelector('#sense-processed')?.classList.toggle('sense-ab-active', st.active === 'B');
  const btn = document.querySelector('#sense-ab');
  if (btn) { btn.textContent = (st.active === 'A' ? 'A/B ⇄  now playing A · original' : 'A/B ⇄  now playing B · SENSE') + ' · loudness-matched'; }
}
"""

CSS = """
.gradio-container { max-width: 1380px !important; margin: 0 auto !important; }
.sense-header { display: flex; gap: 16px; align-items: center; padding: 6px 4px 2px 4px; }
.sense-logo { width: 48px; height: 48px; border-radius: 14px; display: grid; place-items: center; font-weight: 800;
  font-size: 26px; color: white; background: linear-gradient(135deg, #4f46e5, #06b6d4); flex: none; }
.sense-header h1 { margin: 0; font-size: 1.6rem; letter-spacing: -0.01em; }
.sense-header h1 span { font-weight: 400; color: var(--body-text-color-subdued); font-size: 1.05rem; }
.sense-header p { margin: 2px 0 0 0; color: var(--body-text-color-subdued); font-size: 0.92rem; }
#sense-quick button { flex: 0 1 auto; }
#sense-ab { font-weight: 600; }
.sense-ab-active { outline: 2px solid var(--color-accent); outline-offset: -2px; border-radius: 8px; }
#sense-original audio, #sense-processed audio { width: 100%; }
#sense-rating { align-self: center; }
#sense-plot img { margin-top: 34px; max-height: calc(100% - 34px); object-fit: contain; }
#sense-rating p { margin: 0; font-size: 0.92rem; }
#sense-chat .message { font-size: 0.95rem; }
footer { opacity: 0.6; }
"""


def theme() -> gr.themes.Base:
    """A calm indigo theme with system fonts only (no web fonts: the page works offline)."""
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="cyan", neutral_hue="slate",
                          font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


def launch(app: SenseApp, *, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Queue and serve the app.

    Args:
        app: the :class:`SenseApp`.
        host, port: where to listen (localhost by default).
        auth: (user, password) to require a login, or None.
        block: False to return at once (tests, benchmarks); close with ``demo.close()``.
    """
    demo = app.build()
    demo.queue(default_concurrency_limit=app.concurrency, max_size=64)
    demo.launch(server_name=host, server_port=port, auth=auth, auth_message="SENSE: sign in" if auth else None,
                max_file_size=int(app.limits.max_upload_mb * MB), allowed_paths=[str(app.root)],
                prevent_thread_lock=not block, show_error=False, quiet=quiet, ssr_mode=False, share=False,
                theme=theme(), css=CSS, footer_links=["api", "settings"], enable_monitoring=False)
    return demo


def auth_from_env() -> tuple[str, str] | None:
    """(user, password) when ``SENSE_APP_PASSWORD`` is set (user ``SENSE_APP_USER``, default "sense")."""
    password = os.environ.get("SENSE_APP_PASSWORD")
    return (os.environ.get("SENSE_APP_USER", "sense"), password) if password else None


def load_runtime(*, no_llm: bool = False, model: str | None = None, llm_url: str | None = None):
    from agent.runtime import Runtime

    return Runtime.load(model=model, llm_url=llm_url, use_llm=not no_llm)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --- benchmark -------------------------------------------------------------------------------------


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


def benchmark(runs: int = 3, *, clip_s: float = 30.0, request: str = HEADLINE_REQUEST, use_llm: bool = False,
              model: str | None = None, browser: bool | None = None) -> dict:
    """Time from "send" to the processed audio being playable, for a ``clip_s`` excerpt of Vibe Ace.

    Each run is a fresh browser page (a new session, so no follow-up): upload the clip, type the
    request, click Send, and stop the clock when the processed ``<audio>`` element has loaded the
    new file and ``play()`` resolved (muted). Without Chromium (``/usr/bin/chromium``) or with
    ``browser=False`` the clock stops when gradio_client has the processed file instead.
    One warm-up run is not counted.

    Returns:
        ``{"runs_s": [...], "median_s", "warmup_s", "clip_s", "planner", "via"}``; also printed.
    """
    import soundfile

    browser = Path(CHROMIUM).exists() if browser is None else browser
    rt = load_runtime(no_llm=not use_llm, model=model)
    work = Path(tempfile.mkdtemp(prefix="sense-bench-"))
    samples, rate = soundfile.read(data_dir() / "music" / DEMO_TRACK, dtype="float32", start=10 * 44100,
                                   frames=int(clip_s * 44100))
    clip = work / f"vibe_ace_{clip_s:g}s.wav"
    soundfile.write(clip, samples, rate, subtype="PCM_16")
    app = SenseApp(rt, sessions_root=work / "sessions")
    port = free_port()
    demo = launch(app, port=port, block=False, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    times: list[float] = []
    try:
        if browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for _ in range(runs + 1):
                    page = chromium.new_page()
                    page.goto(url)
                    page.locator("#sense-input input[type=file]").set_input_files(str(clip))
                    page.wait_for_function("() => document.querySelector('#sense-chat')?.innerText.includes('🎵')",
                                           timeout=120_000)
                    page.fill("#sense-msg textarea", request)
                    start = time.perf_counter()
                    page.click("#sense-send")
                    page.wait_for_function("""() => {
                        const a = document.querySelector('#sense-processed audio');
                        return !!(a && a.currentSrc && a.readyState >= 1 && a.duration > 0);
                    }""", timeout=300_000, polling=50)
                    page.evaluate("""async () => {
                        const a = document.querySelector('#sense-processed audio');
                        a.muted = true; await a.play(); a.pause();
                    }""")
                    times.append(time.perf_counter() - start)
                    page.close()
                chromium.close()
        else:
            from gradio_client import Client, handle_file

            for _ in range(runs + 1):
                client = Client(url, verbose=False)
                start = time.perf_counter()
                result = client.predict(request, handle_file(str(clip)), api_name="/chat")
                assert result[3] and Path(result[3]).exists(), result[0][-1]
                times.append(time.perf_counter() - start)
    finally:
        demo.close()
        shutil.rmtree(work, ignore_errors=True)
    summary = {"runs_s": [round(t, 3) for t in times[1:]], "median_s": round(statistics.median(times[1:]), 3),
               "warmup_s": round(times[0], 3), "clip_s": clip_s, "planner": app.planner,
               "via": "chromium" if browser else "gradio_client", "request": request}
    print(f"app latency (send → processed audio playable, {clip_s:g} s clip, {summary['planner']}, via "
          f"{summary['via']}): median {summary['median_s']:.2f} s over {runs} runs {summary['runs_s']} "
          f"(warm-up {summary['warmup_s']:.2f} s)")
    return summary


# --- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SENSE web UI (Gradio). Localhost only unless --host says otherwise.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--no-llm", action="store_true", help="rule-based parser only, no planner model")
    parser.add_argument("--model", default=None, help="planner model name or .gguf path (see `sense run --help`)")
    parser.add_argument("--llm-url", default=None, help="OpenAI-compatible server instead of the local model")
    parser.add_argument("--concurrency", type=int, default=1, help="turns processed at once (default 1)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, help="largest upload, MB")
    parser.add_argument("--max-duration-s", type=float, default=DEFAULT_MAX_DURATION_S, help="longest upload, seconds")
    parser.add_argument("--bench", action="store_true", help="print the send → playable latency (30 s clip) and exit")
    parser.add_argument("--bench-runs", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.bench:
        benchmark(args.bench_runs, use_llm=not args.no_llm, model=args.model)
        return 0
    from agent.llm import LLMError
    from agent.models import ModelMissingError
    from knowledge.config import DataMissingError

    print("Loading knowledge" + ("" if args.no_llm else " and the planner model") + "…", file=sys.stderr)
    try:
        rt = load_runtime(no_llm=args.no_llm, model=args.model, llm_url=args.llm_url)
    except (DataMissingError, ModelMissingError, LLMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    auth = auth_from_env()
    app = SenseApp(rt, limits=Limits(args.max_upload_mb, args.max_duration_s), concurrency=args.concurrency)
    if args.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        print("warning: listening beyond localhost without a password; set SENSE_APP_PASSWORD", file=sys.stderr)
    launch(app, host=args.host, port=args.port, auth=auth)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
