"""The ``sense`` command: the agent's commands (:mod:`agent.cli`), ``sense eval`` (:mod:`eval`) and
``sense demt`` (:mod:`demt.cli`) under one entry point, with one error boundary.

This module sits above ``agent`` and ``eval`` (``eval`` drives the agent like a user), so neither
imports the other's command line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from typer.core import TyperCommand

from agent.cli import ModelOpt, UrlOpt, app, err
from demt.cli import app as demt_app
from speaker.cli import speaker_app
from voice.cli import voice as voice_command
from voice.cli import wyoming as wyoming_command
from tools.errors import SenseError, one_line
from translate.cli import translate as translate_command

app.add_typer(demt_app, name="demt")
app.add_typer(speaker_app, name="speaker")
app.command("voice")(voice_command)
app.command("wyoming")(wyoming_command)
app.command("translate")(translate_command)


class _EvalCommand(TyperCommand):
    """``sense eval [PATHS]`` as before, except that ``sense eval personalisation …`` runs that evaluation."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args[:1] == ["personalisation"]:
            ctx.meta["sense_eval_sub"] = args[1:]
            return super().parse_args(ctx, [])
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        if "sense_eval_sub" in ctx.meta:
            command = typer.main.get_command(_personalisation_app)
            name = f"{ctx.command_path} personalisation"  # no parent: its usage would carry eval's [PATHS]
            with command.make_context(name, ctx.meta.pop("sense_eval_sub")) as sub:
                return command.invoke(sub)
        return super().invoke(ctx)


_personalisation_app = typer.Typer(add_completion=False)


@_personalisation_app.command()
def personalisation(
    listeners: Annotated[int, typer.Option("--listeners", help="Simulated listeners (>= 1).")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the listeners.")] = 0,
    out: Annotated[Optional[Path], typer.Option("--out", help="Markdown file whose personalisation markers get the table (e.g. docs/EVALUATION.md).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")] = None,
) -> None:
    """Simulated listeners: how close SENSE's setting gets to each one's preference after 0–10 interactions."""
    from rich.console import Console
    from rich.table import Table

    from eval.personalisation import INTERACTIONS, evaluate, render_markdown, write_json, write_markdown

    report = evaluate(listeners=listeners, seed=seed)
    table = Table(title=f"median RMS dB to the listener's preference ({listeners} listeners, seed {seed}, {report.seconds:.0f} s)")
    for col in ["method", *map(str, INTERACTIONS), f"never asked ({INTERACTIONS[-2]})"]:
        table.add_column(col)
    for r in report.rows:
        table.add_row(r.method, *[f"{r.asked_db[n]:.2f}" for n in INTERACTIONS], f"{r.unseen_db[INTERACTIONS[-2]]:.2f}")
    Console().print(table)
    print(render_markdown(report).splitlines()[-1])
    if out is not None:
        write_markdown(out, render_markdown(report))
    if json_path is not None:
        write_json(json_path, report)


@app.command("eval", cls=_EvalCommand)
def eval_(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Conversation YAML files or folders (default: eval/conversations).")] = None,
    report: Annotated[Path, typer.Option("--report", help="Folder for report.json, report.md and report.png.")] = Path("out/eval"),
    min_pass: Annotated[float, typer.Option("--min-pass", help="Exit non-zero when the turn pass rate is below this.")] = 0.8,
    fast: Annotated[bool, typer.Option("--fast", help="Only the conversations marked fast: true.")] = False,
    model: ModelOpt = None,
    llm_url: UrlOpt = None,
) -> None:
    """Run scripted conversations against the real agent and score plan, audio and latency.

    `sense eval personalisation --help`: the simulated-listener evaluation of the personal EQ model instead.
    """
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
