"""The ``sense`` command: the agent's commands (:mod:`agent.cli`), ``sense eval`` (:mod:`eval`) and
``sense demt`` (:mod:`demt.cli`) under one entry point, with one error boundary.

This module sits above ``agent`` and ``eval`` (``eval`` drives the agent like a user), so neither
imports the other's command line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli import ModelOpt, UrlOpt, app, err
from demt.cli import app as demt_app
from tools.errors import SenseError, one_line
from translate.cli import translate as translate_command

app.add_typer(demt_app, name="demt")
app.command("translate")(translate_command)


@app.command("eval")
def eval_(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Conversation YAML files or folders (default: eval/conversations).")] = None,
    report: Annotated[Path, typer.Option("--report", help="Folder for report.json, report.md and report.png.")] = Path("out/eval"),
    min_pass: Annotated[float, typer.Option("--min-pass", help="Exit non-zero when the turn pass rate is below this.")] = 0.8,
    fast: Annotated[bool, typer.Option("--fast", help="Only the conversations marked fast: true.")] = False,
    model: ModelOpt = None,
    llm_url: UrlOpt = None,
) -> None:
    """Run scripted conversations against the real agent and score plan, audio and latency."""
    from eval.harness import eval_command

    raise typer.Exit(eval_command(paths, llm_url=llm_url, model=model, report_dir=report, min_pass=min_pass, fast=fast))


def main() -> None:
    """Entry point: run the command; a :class:`SenseError` anywhere ends in one ``error:`` line, exit 1."""
    try:
        app()
    except SenseError as exc:
        err.print(f"[red]error:[/red] {one_line(exc)}", markup=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
