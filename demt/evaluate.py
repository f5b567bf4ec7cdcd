"""Evaluation of DeMT on the simulated test set: model vs DSP transfer vs identity, ablations, few-shot.

Metrics (per example, stereo, scored after the filter pre-roll):
- SNR, dB: :func:`tools.metrics.snr_db`, 10 log10(sum y^2 / sum (y_hat - y)^2) on the waveform.
- RMSE, dB: :func:`tools.metrics.spectral_rmse_db`, the RMS difference of the 1/6-octave smoothed
  long-term spectra over 50 Hz-16 kHz. The paper (arXiv 2511.17136) reports an RMSE of 0.45
  without units that we could match; ours is a spectral error in dB (lower is better), so the
  two numbers are not directly comparable.
- STOI, %: :func:`tools.metrics.stoi` (pystoi at 10 kHz) x 100.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from demt.data import Recipe, test_examples
from demt.devices import Device
from knowledge.fr_store import FR_GRID_HZ
from tools.metrics import snr_db, spectral_rmse_db, stoi


def _scores(y: np.ndarray, est: np.ndarray, rate: int) -> dict:
    return {"snr_db": snr_db(y, est), "rmse_db": spectral_rmse_db(y, est, rate), "stoi_pct": 100 * stoi(y, est, rate)}


def dsp_transfer(x: np.ndarray, rate: int, device: Device) -> np.ndarray:
    """The project's DSP device transfer (tools.transfer) from the catalogue curve, neutral source."""
    from tools.transfer import device_transfer, transfer_curve

    curve = transfer_curve(FR_GRID_HZ, device.catalogue_db, np.zeros_like(device.catalogue_db))
    return device_transfer(x, rate, FR_GRID_HZ, curve)[0]


def evaluate(systems: dict, devices: list[Device], recipe: Recipe, seed: int = 0, per_device: int = 2,
             seconds: float = 4.0, seen: set[str] | None = None, progress: bool = False) -> list[dict]:
    """Score each system on the fixed stereo test examples of ``devices``.

    Args:
        systems: name -> callable(x (2, n) float32, rate, device) -> (2, n) float32; the names
            'identity' and 'dsp' may map to None for the built-in baselines.
        seen: names of devices seen in training (rows get ``seen`` True/False).
    Returns:
        rows: {system, device, type, seen, key, snr_db, rmse_db, stoi_pct}.
    """
    from tqdm import tqdm

    rows = []
    p = recipe.preroll
    exs = test_examples(devices, recipe, seed, per_device, seconds)
    for ex in tqdm(exs, total=len(devices) * per_device, disable=not progress, desc="demt eval", mininterval=10):
        d, x, y = ex["device"], ex["x"], ex["y"]
        for name, fn in systems.items():
            if name == "identity" and fn is None:
                est = x
            elif name == "dsp" and fn is None:
                est = dsp_transfer(x, recipe.sample_rate, d)
            else:
                est = fn(x, recipe.sample_rate, d)
            rows.append({"system": name, "device": d.name, "type": d.type,
                         "seen": bool(seen is None or d.name in seen), "key": ex["key"],
                         **_scores(y[:, p:], est[:, p:], recipe.sample_rate)})
    return rows


def demt_system(loaded):
    """A system callable for :func:`evaluate` from a loaded DeMT model (catalogue-curve embedding)."""
    from demt.infer import apply_demt

    return lambda x, rate, d: apply_demt(x, rate, d.catalogue_db, loaded)


def summarise(rows: list[dict], by=("system",)) -> list[dict]:
    """Mean SNR / RMSE / STOI grouped by the given keys, with the count n."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, items in groups.items():
        out.append({**dict(zip(by, key)), "n": len(items),
                    **{m: float(np.mean([i[m] for i in items])) for m in ("snr_db", "rmse_db", "stoi_pct")}})
    return out


def timed(fn, *a, **k):
    t = time.perf_counter()
    r = fn(*a, **k)
    return r, time.perf_counter() - t
