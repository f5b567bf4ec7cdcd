"""``sense translate TRACKS… [--devices all|LIST]``: how tracks translate across devices.

Renders every track through every chosen device (the product's DSP transfer, or DeMT with
``--demt``) on a Dask cluster — an embedded local one by default, ``--address`` for a running
scheduler, ``--serial`` for none — and writes ``OUT/translate.html`` (device × track grid of
band-balance plots) and ``OUT/translate.csv``. Heavy imports happen inside the command, so
``sense --help`` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _load(tracks: list[Path], devices: str, seconds: float | None, start: float):
    from knowledge.config import data_dir
    from translate.devices import load_catalogue
    from translate.render import load_track

    root = str(data_dir().resolve())
    refs = load_catalogue(root).resolve(devices)
    return root, refs, [load_track(p, seconds, start) for p in dict.fromkeys(tracks)]


def _run(tracks, refs, method, root, address, workers, serial):
    """(results, engine description) with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from translate.cluster import open_client, run_cluster, run_serial

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("rendering", total=len(tracks) * len(refs))

        def advance(_result) -> None:
            bar.advance(task)

        if serial:
            return run_serial(tracks, refs, method, root, advance), "serial (this process)"
        bar.update(task, description="starting the cluster" if address is None else f"connecting to {address}")
        with open_client(address, workers) as client:
            bar.update(task, description="rendering")
            n = len(client.scheduler_info()["workers"])
            engine = f"dask {address} ({n} workers)" if address else f"dask LocalCluster ({workers} workers)"
            return run_cluster(client, tracks, refs, method, root, advance), engine


def translate(
    tracks: Annotated[list[Path], typer.Argument(help="Audio files (any format SENSE reads).")],
    devices: Annotated[str, typer.Option("--devices", help="all | headphones | speakers | comma-separated model names.")] = "all",
    demt: Annotated[bool, typer.Option("--demt", help="Render with the DeMT neural model instead of the DSP transfer.")] = False,
    seconds: Annotated[Optional[float], typer.Option("--seconds", help="Use only this many seconds of each track (default: whole track).")] = None,
    start: Annotated[float, typer.Option("--start", help="Where the excerpt starts, seconds.")] = 0.0,
    out: Annotated[Path, typer.Option("--out", help="Folder for translate.html and translate.csv (free names if taken).")] = Path("out/translate"),
    address: Annotated[Optional[str], typer.Option("--address", help="A running Dask scheduler, tcp://host:port (default: start a local cluster).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes of the local cluster (one thread each).")] = 2,
    serial: Annotated[bool, typer.Option("--serial", help="No cluster: render in this process.")] = False,
) -> None:
    """Render tracks through devices; report band balance, loudness and true peak per device (HTML + CSV)."""
    from translate.report import RunInfo, write_report

    root, refs, loaded = _load(tracks, devices, seconds, start)
    method = "demt" if demt else "dsp"
    began = time.perf_counter()
    results, engine = _run(loaded, refs, method, root, address, workers, serial)
    wall = time.perf_counter() - began
    excerpt = "whole tracks" if seconds is None else f"{seconds:g} s from {start:g} s"
    paths = write_report(results, out, RunInfo(engine, method, wall, excerpt))
    n_speakers = sum(r.kind == "speaker" for r in refs)
    print(f"{len(loaded)} track(s) × {len(refs)} device(s) ({len(refs) - n_speakers} headphone(s), {n_speakers} "
          f"speaker(s)) = {len(results)} renders ({method}, {excerpt}) on {engine}: {wall:.1f} s, "
          f"{sum(r.render_s for r in results) / max(len(results), 1):.2f} s per track-device render")
    print(f"  html  {paths.html}\n  csv   {paths.csv}")
