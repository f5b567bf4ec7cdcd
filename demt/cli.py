"""`sense demt ...`: build data, train, evaluate and export the DeMT model."""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="DeMT, the learned device transfer: simulate data, train, evaluate, export.",
                  no_args_is_help=True)


def _default_runs() -> Path:
    from knowledge.config import sense_home

    return sense_home() / "demt" / "runs"


@app.command()
def data(out: Path = typer.Option(None, help="folder for the WAV pairs + manifest.json (default SENSE_HOME/cache/demt/data-<split>-<seed>)"),
         split: str = typer.Option("test", help="train | val | test"),
         seed: int = typer.Option(0, help="seed of the device split and of every example"),
         per_device: int = typer.Option(2, help="excerpts per device"),
         seconds: float = typer.Option(4.0, help="excerpt length, s (plus the filter pre-roll)"),
         heldout: bool = typer.Option(False, help="held-out devices instead of seen ones")):
    """Write a split of the simulated data set (music through device X) as WAV pairs with a manifest."""
    from demt.data import Recipe, write_dataset
    from demt.devices import load_devices, split_devices
    from knowledge.config import cache_dir

    seen, held = split_devices(load_devices(), seed)
    out = out or cache_dir() / "demt" / f"data-{split}-{seed}{'-heldout' if heldout else ''}"
    path = write_dataset(out, held if heldout else seen, split, Recipe(), seed, per_device, seconds)
    typer.echo(f"wrote {path} ({per_device} x {len(held if heldout else seen)} examples)")


@app.command()
def train(out: Path = typer.Option(None, help="run folder (default SENSE_HOME/demt/runs/<name>)"),
          name: str = typer.Option("small", help="run name when --out is not given"),
          size: str = typer.Option("small", help="small (CPU) | large (GPU)"),
          steps: int = typer.Option(3000), batch: int = typer.Option(8), lr: float = typer.Option(1.5e-3),
          warmup: int = typer.Option(100),
          seed: int = typer.Option(0), threads: int = typer.Option(2),
          pool: str = typer.Option("full", help="full | one: embedding pool per device"),
          film: bool = typer.Option(True, help="--no-film: the ablation without FiLM"),
          max_steps: int = typer.Option(None, help="stop at this step, keeping the schedule of --steps"),
          keep: str = typer.Option("", help="comma-separated steps to keep as step<k>.pt"),
          resume: bool = typer.Option(False, help="continue from <out>/last.pt"),
          init_from: Path = typer.Option(None, help="start from these weights (few-shot adaptation)"),
          device: list[str] = typer.Option(None, help="train only on these devices (few-shot)"),
          audio_fraction: float = typer.Option(1.0, help="fraction of the training audio (few-shot: 0.02, 0.05)")):
    """Train DeMT on simulated data; progress bar, log.csv, checkpoints every 250 steps."""
    import dataclasses

    from demt.model import LARGE, SMALL
    from demt.train import TrainConfig, train as run

    cfg = dataclasses.replace(LARGE if size == "large" else SMALL, film=film)
    if init_from is not None and not resume and (out or _default_runs() / name).joinpath("last.pt").is_file():
        raise typer.BadParameter("the run folder already holds last.pt; use --resume or another --out")
    tc = TrainConfig(steps=steps, batch=batch, lr=lr, warmup=warmup, seed=seed, threads=threads, full_pool=pool == "full",
                     max_steps=max_steps, keep_steps=[int(k) for k in keep.split(",") if k],
                     devices=list(device or []) or None, audio_fraction=audio_fraction)
    summary = run(out or _default_runs() / name, tc, cfg, resume=resume, init_from=init_from)
    typer.echo(json.dumps(summary))


@app.command("eval")
def evaluate(checkpoint: Path = typer.Option(None, help="exported folder or training .pt (default: shipped)"),
             runs: Path = typer.Option(None, help="folder with the ablation / few-shot runs (see docs/DEMT.md)"),
             report: Path = typer.Option(Path("docs/DEMT.md"), help="Markdown report to write"),
             results: Path = typer.Option(None, help="JSON of all rows (default SENSE_HOME/cache/demt/DEMT.json)"),
             per_device: int = typer.Option(2), threads: int = typer.Option(1),
             quick: bool = typer.Option(False, help="seen-device test only, no ablations (for smoke tests)"),
             rerender: bool = typer.Option(False, help="only write the report again from --results")):
    """Evaluate on the simulated test set (SNR, RMSE, STOI per device; DSP baseline; ablations; RTF)."""
    from demt.report import full_evaluation, rerender as rerender_report

    if rerender:
        if results is None:
            raise typer.BadParameter("--rerender needs --results")
        typer.echo(f"wrote {rerender_report(results, report)}")
        return
    out = full_evaluation(checkpoint, runs, report, results, per_device=per_device, threads=threads, quick=quick)
    typer.echo(f"wrote {out}")


@app.command()
def export(checkpoint: Path = typer.Argument(..., help="training checkpoint (.pt)"),
           out: Path = typer.Option(None, help="folder (default: the shipped demt/checkpoints/small)"),

           results: Path = typer.Option(None, help="docs/DEMT.json from `sense demt eval` to summarise in metrics.json")):
    """Write a shipped checkpoint folder: model.pt (float16 weights), config.json, recipe.json, train.json, metrics.json."""
    from demt.export import export_checkpoint, write_metrics

    path = export_checkpoint(checkpoint, out)
    write_metrics(path, results)
    typer.echo(f"wrote {path}")
