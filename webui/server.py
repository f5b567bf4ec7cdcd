"""Serving the web UI: loading the runtime, the optional login, and launching Gradio's server.

Nothing leaves the machine: no analytics, no share links, system fonts only.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from webui.chat import SenseApp
from webui.layout import CSS, theme
from webui.session import MB


def launch(app: SenseApp, *, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Queue and serve the app.

    Args:
        app: the :class:`SenseApp`.
        host, port: where to listen (localhost by default).
        auth: (user, password) to require a login, or None.
        block: False to return at once (tests, benchmarks); close with ``demo.close()``.
        quiet: no start-up banner.
    Returns:
        The running ``gr.Blocks``.
    Raises:
        OSError: the port is taken.
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


def load_runtime(*, no_llm: bool = False, model: str | None = None, llm_url: str | None = None,
                 prefs_path: Path | None = None):
    """The agent's :class:`agent.runtime.Runtime` (rule-based only with ``no_llm``); :class:`webui.chat.SenseApp`
    puts its planner behind a :class:`agent.llm_queue.PlannerQueue` so the sessions' completions take turns.

    Args:
        no_llm, model, llm_url: as ``python app.py``'s options.
        prefs_path: the preference store (default ``SENSE_HOME/preferences.sqlite``).
    Raises:
        knowledge.config.DataMissingError, agent.models.ModelMissingError, agent.llm.LLMError:
            data or the planner model is missing or unreachable.
    """
    from agent.runtime import Runtime

    return Runtime.load(model=model, llm_url=llm_url, use_llm=not no_llm, prefs_path=prefs_path)
