"""Where a processed result goes. The graph hands the act step's result to a sink and does not know
which one it is: files (CLI, web UI, eval) today, a live speaker (voice control) next.

A sink gets the processed audio and the total filter (so a live sink can apply the filter to a
playing stream instead of writing audio), then the trace and the plot of the turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tools.atomic import fit_stem, write_new_file
from tools.audio_io import write_audio

SUFFIX = "-sense"


@dataclass
class Delivery:
    """What a sink is given: the request, the input path, where the caller wants the output (or None),
    the processed audio (float32, (channels, samples)), its sample rate, and the total whole-mix filter
    (dB on ``knowledge.fr_store.FR_GRID_HZ``)."""

    request: str
    input_path: str
    output_path: str | None
    samples: np.ndarray
    sample_rate: int
    applied_db: np.ndarray


class Sink(Protocol):
    """Receives results. ``deliver`` returns where things went (``{"audio": path, ...}``), which is
    then passed to ``write_trace`` and ``write_plot``."""

    name: str

    def deliver(self, delivery: Delivery) -> dict[str, str]: ...

    def write_trace(self, where: dict[str, str], trace: dict) -> None: ...

    def write_plot(self, where: dict[str, str], draw: Callable[[Path], object]) -> None: ...

    def answer_place(self, input_path: str | None, output_path: str | None) -> dict[str, str]:
        """Where an answer's plot and trace go (``{"plot": path, "trace": path}``), or {} when this sink
        takes none."""


def output_paths(input_path: str | Path, output_path: str | Path | None = None) -> dict[str, Path]:
    """Free paths for the audio (``.wav``), trace (``.json``) and plot (``.png``) of one result.

    Args:
        input_path: the input file.
        output_path: wanted audio path; default ``<input stem>-sense.wav`` next to the input.
    Returns:
        ``{"audio", "trace", "plot"}`` sharing one stem; when any of the three exists (or the
        audio path is the input), ``-1``, ``-2`` … is appended to the stem, so nothing is overwritten.
    """
    input_path = Path(input_path)
    default = fit_stem(input_path.stem.removesuffix(".hq")) + SUFFIX + ".wav"  # a 250-byte input name still fits
    base = Path(output_path) if output_path else input_path.with_name(default)
    if base.suffix == "":
        base = base.with_suffix(".wav")
    base.parent.mkdir(parents=True, exist_ok=True)
    stem, n = base.stem, 0
    while True:
        audio = base.with_name(f"{stem}{'' if n == 0 else f'-{n}'}{base.suffix}")
        paths = {"audio": audio, "trace": audio.with_suffix(".json"), "plot": audio.with_suffix(".png")}
        if not any(p.exists() for p in paths.values()) and audio.resolve() != input_path.resolve():
            return paths
        n += 1


class FileSink:
    """Writes OUT.wav (24-bit), OUT.json and OUT.png atomically, never over an existing file."""

    name = "files"

    def deliver(self, delivery: Delivery) -> dict[str, str]:
        paths = output_paths(delivery.input_path, delivery.output_path)
        write_audio(paths["audio"], delivery.samples, delivery.sample_rate)
        return {k: str(v) for k, v in paths.items()}

    def write_trace(self, where: dict[str, str], trace: dict) -> None:
        text = json.dumps(trace, indent=2, ensure_ascii=False, default=float)
        write_new_file(Path(where["trace"]), lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def write_plot(self, where: dict[str, str], draw: Callable[[Path], object]) -> None:
        draw(Path(where["plot"]))

    def answer_place(self, input_path: str | None, output_path: str | None) -> dict[str, str]:
        """``OUT-answer.png`` and ``.json`` beside the wanted output, else ``INPUT-sense-answer.*`` beside the
        input, else in ``SENSE_HOME/answers`` (``-1``, ``-2`` … when either is taken: never over a file)."""
        if output_path:
            base = Path(output_path).with_name(Path(output_path).stem + "-answer.png")
        elif input_path:
            base = Path(input_path).with_name(Path(input_path).stem.removesuffix(".hq") + SUFFIX + "-answer.png")
        else:
            from knowledge.config import sense_home

            base = sense_home() / "answers" / "answer.png"
        base.parent.mkdir(parents=True, exist_ok=True)
        plot, n = base, 0
        while plot.exists() or plot.with_suffix(".json").exists():
            n += 1
            plot = base.with_name(f"{base.stem}-{n}{base.suffix}")
        return {"plot": str(plot), "trace": str(plot.with_suffix(".json"))}
