"""Export a training checkpoint as the shipped folder (model.pt, config.json, recipe.json, train.json, metrics.json)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from demt.infer import DEFAULT_CHECKPOINT, CheckpointMissingError


def export_checkpoint(checkpoint: Path, out: Path | None = None) -> Path:
    """Weights are stored as float16 (halves the size; on 7 test excerpts the rounding changed SNR
    by at most 0.009 dB, see docs/DEMT.md). Returns the folder.

    Raises: CheckpointMissingError when the checkpoint is missing.
    """
    if not Path(checkpoint).is_file():
        raise CheckpointMissingError(f"no training checkpoint {checkpoint}; `sense demt train` writes last.pt in its run folder")
    ck = torch.load(Path(checkpoint), map_location="cpu", weights_only=False)
    out = Path(out or DEFAULT_CHECKPOINT)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}, out / "model.pt")
    (out / "config.json").write_text(json.dumps(ck["config"], indent=1))
    (out / "recipe.json").write_text(json.dumps(ck["recipe"], indent=1))
    info = {"train": ck["train"], "step": ck["step"]}
    run_info = Path(checkpoint).parent / "train.json"  # written by train(): the devices it trained on
    if run_info.is_file():
        info["train_devices"] = json.loads(run_info.read_text()).get("train_devices")
    log = Path(checkpoint).parent / "log.csv"
    if log.is_file():  # wall time over resumes: the seconds column restarts at each resume
        import csv

        total, last = 0.0, 0.0
        with open(log, newline="") as f:
            for row in csv.DictReader(f):
                sec = float(row["seconds"])
                if sec < last:
                    total += last
                last = sec
        info["train_seconds"] = round(total + last, 1)
        info["log"] = log.read_text()
    (out / "train.json").write_text(json.dumps(info, indent=1))
    return out


SLICE_DEVICES = ["KEF LS50", "Sony WH-1000XM4", "Apple AirPods Pro"]
"""Seen devices of the fixed test slice checked by tests/demt (one 2 s stereo excerpt each)."""


def slice_metrics(folder: Path | None = None, seconds: float = 2.0) -> dict:
    """DeMT and DSP on the fixed test slice (what tests/demt recomputes and compares)."""
    from demt.data import Recipe
    from demt.devices import load_devices
    from demt.evaluate import demt_system, evaluate, summarise
    from demt.infer import load_checkpoint

    loaded = load_checkpoint(folder)
    devices = [d for d in load_devices() if d.name in SLICE_DEVICES]
    rows = evaluate({"dsp": None, "demt": demt_system(loaded)}, devices, Recipe(), 0, 1, seconds)
    s = {r["system"]: r for r in summarise(rows)}
    return {"devices": SLICE_DEVICES, "seconds": seconds, "demt_snr_db": s["demt"]["snr_db"],
            "demt_stoi_pct": s["demt"]["stoi_pct"], "dsp_snr_db": s["dsp"]["snr_db"],
            "allowed_below_dsp_db": max(0.0, round(s["dsp"]["snr_db"] - s["demt"]["snr_db"] + 0.5, 1))}


def write_metrics(folder: Path | None = None, results: Path | None = None) -> Path:
    """metrics.json of a shipped folder: the summaries of ``results`` (docs/DEMT.json from
    `sense demt eval`) plus :func:`slice_metrics`."""
    folder = Path(folder or DEFAULT_CHECKPOINT)
    out = {}
    if results is not None and Path(results).is_file():
        res = json.loads(Path(results).read_text())
        out = {k: res[k] for k in ("main_summary", "main_by_type", "ablation_step", "ablation_summary",
                                    "fewshot_summary", "rtf", "per_device") if k in res}
    out["test_slice"] = slice_metrics(folder)
    (folder / "metrics.json").write_text(json.dumps(out, indent=1))
    return folder / "metrics.json"
