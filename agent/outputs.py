"""Respond's files: the processed audio, the JSON trace and the plot, written atomically and never
over an existing file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from knowledge.fr_store import FR_GRID_HZ, FRStore
from tools.atomic import write_new_file
from tools.audio_io import write_audio
from tools.plot import plot_result

SUFFIX = "-sense"


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
    base = Path(output_path) if output_path else input_path.with_name(input_path.stem.removesuffix(".hq") + SUFFIX + ".wav")
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


def write_audio_output(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write the processed audio atomically (24-bit WAV/FLAC; other formats by extension)."""
    return write_audio(path, samples, sample_rate)


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented UTF-8 JSON, atomically, never overwriting.

    Raises:
        FileExistsError: ``path`` exists.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False, default=float)
    return write_new_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_plot(path: Path, *, fr_curves: dict[str, np.ndarray], stage_curves: dict[str, np.ndarray],
               applied_db: np.ndarray, spectrum_before, spectrum_after, title: str) -> Path:
    """The result's PNG: FR curves used, each stage's filter and the total, before/after spectrum."""
    return plot_result(path, frequency_hz=FR_GRID_HZ, curves=fr_curves, stages=stage_curves, applied_db=applied_db,
                       spectrum_before=spectrum_before, spectrum_after=spectrum_after, title=title)


def trace(state: dict, reasoning: str, record_id: int, timings: dict, store: FRStore) -> dict:
    """The JSON trace of a processed turn (see README, "The JSON trace")."""
    settings = state["settings"]
    devices = []
    for role in ("target", "listening"):
        device = settings.get(role)
        if device:
            devices.append({"role": role, "name": device["name"], "type": device["type"],
                            "source": "+".join(device["sources"]), "asked": device["query"], "via": device["via"],
                            "alternatives": device["alternatives"]})
    for call in state["plan"]:
        if call["tool"] == "device_transfer" and call["args"]["reference_kind"] == "target":
            devices.append({"role": "reference", "name": call["args"]["reference"], "type": "target",
                            "source": "AutoEq target"})
    u = state["understanding"]
    return {
        "request": state["request"],
        "input": state["input_path"],
        "outputs": state["outputs"],
        "intent": u["intent"],
        "intent_path": u["path"],
        "llm": u["llm"],
        "llm_notes": u["notes"],
        "plan": state["plan"],
        "devices": devices,
        "adjustments": settings["adjustments"],
        "stems": settings.get("stems", {}),
        "reasoning": reasoning,
        "measurements": state["measurements"],
        "checks": state["checks"],
        "tool_facts": state["facts"]["tools"],
        "timings_s": {**timings, "total": round(sum(timings.values()), 4)},
        "preference_record_id": record_id,
        "user": state["user"],
    }
