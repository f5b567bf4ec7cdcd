"""`sense demt ...`: build data, train, evaluate and export the DeMT model."""
from __future__ import annotations

import typer

app = typer.Typer(help="DeMT, the learned device transfer: simulate data, train, evaluate, export.",
                  no_args_is_help=True)
