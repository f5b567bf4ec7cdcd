"""Apply a trained DeMT model: the public API for the device-transfer tool and the agent.

    from demt.infer import load_checkpoint, apply_demt
    model = load_checkpoint()                      # the shipped small checkpoint, cached
    out = apply_demt(samples, 44100, device_db)    # samples (channels, n) float32

``device_db`` is the device's frequency response relative to neutral on FR_GRID_HZ (dB), as in
:mod:`demt.devices` (headphone measurement minus its class target, or a loudspeaker's listening
window); :func:`device_response` builds it from a name in the FR stores.
Source: DeMT, arXiv 2511.17136.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from demt.devices import get_encoder
from demt.model import DemtConfig, DemtModel
from tools.errors import SenseError

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "small"
"""The shipped checkpoint folder: model.pt, config.json, recipe.json, metrics.json."""


class CheckpointMissingError(SenseError, FileNotFoundError):
    """No DeMT checkpoint at the given path."""


@dataclass(eq=False)
class LoadedDemt:
    """A model ready for inference: ``model`` (eval mode), ``config``, ``folder``, ``metrics`` (may be empty),
    ``train_devices`` (names of the devices it was trained on, from train.json; None when not recorded)."""

    model: DemtModel
    config: DemtConfig
    folder: Path
    metrics: dict
    train_devices: frozenset[str] | None = None

    def trained_on(self, name: str) -> bool:
        """Whether the device ``name`` was among the training devices (False when they are not recorded)."""
        return self.train_devices is not None and name in self.train_devices

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate


def _load(folder: Path) -> LoadedDemt:
    folder = Path(folder)
    if folder.suffix == ".pt" and folder.is_file():  # a training checkpoint
        ck = torch.load(folder, map_location="cpu", weights_only=False)
        cfg = DemtConfig(**ck["config"])
        model = DemtModel(cfg)
        model.load_state_dict(ck["model"])
        return LoadedDemt(model.eval(), cfg, folder.parent, {})
    weights, config = folder / "model.pt", folder / "config.json"
    if not weights.is_file() or not config.is_file():
        raise CheckpointMissingError(
            f"no DeMT checkpoint in {folder} (needs model.pt and config.json); "
            "train one with `sense demt train` and `sense demt export`")
    cfg = DemtConfig(**json.loads(config.read_text()))
    model = DemtModel(cfg)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    train_path = folder / "train.json"
    names = json.loads(train_path.read_text()).get("train_devices") if train_path.is_file() else None
    return LoadedDemt(model.eval(), cfg, folder, metrics, frozenset(names) if names is not None else None)


@lru_cache(maxsize=4)
def _cached(folder: str) -> LoadedDemt:
    return _load(Path(folder))


def load_checkpoint(path: str | Path | None = None) -> LoadedDemt:
    """Load a DeMT checkpoint (cached per path).

    Args:
        path: an exported folder (model.pt + config.json) or a training ``.pt``; default the
            shipped DEFAULT_CHECKPOINT.
    Returns:
        LoadedDemt (model in eval mode, on CPU).
    Raises:
        CheckpointMissingError: nothing loadable there (one-line message).
    """
    return _cached(str(Path(path if path is not None else DEFAULT_CHECKPOINT).resolve()))


def device_response(name: str) -> tuple[np.ndarray, str]:
    """(device_db float64 (481,), canonical name) of a headphone or loudspeaker model by name.

    Raises: KeyError when no device matches (case-insensitive exact, then substring).
    """
    from demt.devices import load_devices

    devices = {d.name.casefold(): d for d in _all_devices()}
    key = name.casefold()
    d = devices.get(key) or next((v for k, v in devices.items() if key in k), None)
    if d is None:
        raise KeyError(f"no headphone or loudspeaker named {name!r} in the FR data")
    return d.catalogue_db, d.name


@lru_cache(maxsize=1)
def _all_devices():
    from demt.devices import load_devices

    return tuple(load_devices())


def _crossfade_windows(n: int, seg: int, overlap: int) -> list[tuple[int, int]]:
    hop = seg - overlap
    starts = list(range(0, max(n - overlap, 1), hop)) or [0]
    return [(s, min(s + seg, n)) for s in starts]


@torch.no_grad()
def apply_demt(samples: np.ndarray, sample_rate: int, device_db: np.ndarray, model: LoadedDemt | None = None,
               *, segment_seconds: float | None = None, overlap_seconds: float = 0.25, batch_size: int = 8,
               progress: bool = False) -> np.ndarray:
    """Render audio as heard through a device with the DeMT model.

    Channels are processed as batch items (a mono model). Audio is resampled to the model's rate
    (soxr) and back, cut into segments of the training length with ``overlap_seconds`` overlap,
    and overlap-added with linear cross-fades.

    Args:
        samples: float32 (channels, n) or (n,), nominally [-1, 1].
        sample_rate: Hz of ``samples``.
        device_db: float (481,) the device's response relative to neutral on FR_GRID_HZ, dB.
        model: from :func:`load_checkpoint`; default the shipped checkpoint.
        segment_seconds: default the model's training segment length.
        progress: show a tqdm bar.
    Returns:
        float32, same shape and sample rate as ``samples``.
    Raises:
        ValueError: bad shapes, non-finite values or a device_db not of length 481.
        CheckpointMissingError: no model given and the shipped checkpoint is missing.
    """
    from tools.audio_io import resample

    x = np.asarray(samples, dtype=np.float32)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise ValueError(f"samples must be (channels, n) or (n,), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or inf")
    d = np.asarray(device_db, dtype=np.float64)
    if d.shape != (481,) or not np.isfinite(d).all():
        raise ValueError(f"device_db must be 481 finite dB values on FR_GRID_HZ, got shape {d.shape}")
    loaded = model or load_checkpoint()
    rate = loaded.sample_rate
    rows = x.reshape(-1, x.shape[-1])
    xr = resample(rows, sample_rate, rate) if sample_rate != rate else rows
    n = xr.shape[1]
    seg = int(round((segment_seconds or loaded.config.segment_seconds) * rate))
    overlap = min(int(round(overlap_seconds * rate)), seg // 2)
    windows = _crossfade_windows(n, seg, overlap)
    emb = torch.from_numpy(np.asarray(get_encoder(loaded.config.embedder)(d), dtype=np.float32))[None]
    out = np.zeros_like(xr, dtype=np.float64)
    weight = np.zeros(n)
    items = [(c, s, e) for (s, e) in windows for c in range(xr.shape[0])]
    from tqdm import tqdm

    for i in tqdm(range(0, len(items), batch_size), disable=not progress, desc="demt"):
        chunk = items[i:i + batch_size]
        length = max(e - s for _, s, e in chunk)
        batch = np.zeros((len(chunk), length), dtype=np.float32)
        for j, (c, s, e) in enumerate(chunk):
            batch[j, : e - s] = xr[c, s:e]
        y = loaded.model(torch.from_numpy(batch), emb.expand(len(chunk), -1)).numpy()
        for j, (c, s, e) in enumerate(chunk):
            w = np.ones(e - s)
            if s > 0:
                w[:overlap] = np.linspace(0, 1, overlap + 2)[1:-1][: e - s]
            if e < n:
                w[-overlap:] = np.minimum(w[-overlap:], np.linspace(1, 0, overlap + 2)[1:-1])
            out[c, s:e] += y[j, : e - s] * w
            if c == 0:
                weight[s:e] += w
    out = (out / np.maximum(weight, 1e-9)).astype(np.float32)
    if sample_rate != rate:
        out = resample(out, rate, sample_rate)[:, : x.shape[-1]]
    return out.reshape(x.shape).astype(np.float32)
