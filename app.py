#!/usr/bin/env python
"""SENSE in the browser: a Gradio chat that is a thin layer over the agent.

    python app.py [--host 127.0.0.1] [--port 7860] [--no-llm] [--model NAME|PATH.gguf] [--llm-url URL]
    python app.py --bench [--no-llm] [--bench-runs 3]

Everything a turn does happens in :mod:`agent` (one :class:`agent.engine.Engine` per process); the
:mod:`webui` package only moves files and words between the
browser and it:

- one conversation per browser session (its own LangGraph ``thread_id``) and one private folder
  ``SENSE_HOME/app-sessions/<session id>/`` that holds the session's uploads and results; the
  folder and the conversation are dropped when the session ends;
- preferences are per user: the logged-in user when ``SENSE_APP_PASSWORD`` is set (user name
  ``SENSE_APP_USER``, default ``sense``), else one anonymous user id per session;
- uploads are checked before the agent sees them (audio extension, size, duration, decodable)
  and every problem becomes a message in the chat, never a traceback;
- turns run through Gradio's queue one at a time (``--concurrency``, default 1 on a 2-core
  machine) and report progress node by node; planner completions take turns in one queue
  (:class:`agent.llm_queue.PlannerQueue`) whatever ``--concurrency`` says;
- a session idle for ``--session-ttl-h`` hours is dropped with its folder.

Nothing leaves the machine: no analytics, no share links, system fonts only.

This file is the command; the names below are re-exported from :mod:`webui` for existing callers.
"""

from __future__ import annotations

import argparse
import logging
import sys

from webui.bench import CHROMIUM, CHROMIUM_ARGS, benchmark, free_port
from webui.chat import DEMO_TRACK, MAX_CONCURRENCY, WELCOME, SenseApp
from webui.layout import AB_SWITCH_JS, CSS, HEADER_HTML, HEADLINE_REQUEST, QUICK_REPLIES, theme
from webui.server import auth_from_env, launch, load_runtime
from webui.session import (AUDIO_EXTENSIONS, DEFAULT_MAX_DURATION_S, DEFAULT_MAX_UPLOAD_MB, MB, SESSION_TTL_S,
                           Limits, Session, UploadProblem)

__all__ = [
    "AB_SWITCH_JS", "AUDIO_EXTENSIONS", "CHROMIUM", "CHROMIUM_ARGS", "CSS", "DEFAULT_MAX_DURATION_S",
    "DEFAULT_MAX_UPLOAD_MB", "DEMO_TRACK", "HEADER_HTML", "HEADLINE_REQUEST", "MB", "QUICK_REPLIES",
    "WELCOME", "Limits", "SenseApp", "Session", "UploadProblem", "auth_from_env", "benchmark", "build_parser",
    "free_port", "launch", "load_runtime", "main", "theme",
]


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python app.py`` (localhost only unless ``--host`` says otherwise)."""
    parser = argparse.ArgumentParser(description="SENSE web UI (Gradio). Localhost only unless --host says otherwise.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--no-llm", action="store_true", help="rule-based parser only, no planner model")
    parser.add_argument("--model", default=None, help="planner model name or .gguf path (see `sense run --help`)")
    parser.add_argument("--llm-url", default=None, help="OpenAI-compatible server instead of the local model")
    parser.add_argument("--concurrency", type=int, default=1,
                        help=f"turns processed at once (default 1, at most {MAX_CONCURRENCY}); the planner runs "
                             "one request at a time whatever this says")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, help="largest upload, MB")
    parser.add_argument("--max-duration-s", type=float, default=DEFAULT_MAX_DURATION_S, help="longest upload, seconds")
    parser.add_argument("--session-ttl-h", type=float, default=SESSION_TTL_S / 3600,
                        help="drop a session (conversation and files) idle this many hours (default %(default)g)")
    parser.add_argument("--bench", action="store_true", help="print the send → playable latency (30 s clip) and exit")
    parser.add_argument("--bench-runs", type=int, default=3)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python app.py``: serve the web UI (blocks until stopped), or ``--bench``: print the latency and exit.

    Returns:
        0, or 1 when the data or the planner model is missing or unreachable (one line on stderr).
    """
    args = build_parser().parse_args(argv)
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
    app = SenseApp(rt, limits=Limits(args.max_upload_mb, args.max_duration_s), concurrency=args.concurrency,
                   session_ttl_s=args.session_ttl_h * 3600)
    if args.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        print("warning: listening beyond localhost without a password; set SENSE_APP_PASSWORD", file=sys.stderr)
    launch(app, host=args.host, port=args.port, auth=auth)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
