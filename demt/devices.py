"""Devices for DeMT: catalogue responses, measured units, embedding pools and the curve encoder.

A *device response* here is what a listener hears relative to neutral, in dB on FR_GRID_HZ,
0 dB mean over 300 Hz-3 kHz:

- headphones / earphones (AutoEq store): each measurement minus its class target (Harman in-ear
  2019v2 for in-ear and earbud; Harman over-ear 2018, on the RTINGS rig for RTINGS measurements),
  i.e. what :func:`tools.transfer.transfer_curve` renders with an unknown source device;
- loudspeakers (ASR spinoramas): the listening-window curve (anechoic, so flat = neutral); the
  on-axis curve is a second catalogue view in the embedding pool.

Values are clipped to [-30, +15] dB (deep nulls and the sub-20 Hz roll-off are not rendered in full).
The *catalogue curve* of a model is the mean of its measured units (what a catalogue publishes,
and what the DSP transfer and the model see at test time); the *units* are the individual
measurements, used as unit-to-unit variation in the simulation. The *embedding pool* of a
device holds the embeddings of its catalogue curve, of each measured unit / catalogue view and of
smooth perturbations of them (arXiv 2511.17136 draws one embedding per training step from such a pool).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from knowledge.fr_store import FR_GRID_HZ, FRStore
from tools.transfer import smooth_octave

CLIP_DB = (-30.0, 15.0)
EMBED_DIM = 64
"""Curve-encoder dimension: the response sampled at 64 log-spaced points, 20 Hz-20 kHz
(one every 0.16 octave), after 1/6-octave smoothing. The DSP transfer smooths at 1/6 octave, so
this keeps every feature the DSP transfer uses; 1/6 octave is also about the resolution at which
unit-to-unit variation makes finer detail meaningless. Divided by 10 dB so values are O(1)."""
EMBED_POINTS_HZ = np.geomspace(20.0, 20000.0, EMBED_DIM)
_NORM = (FR_GRID_HZ >= 300.0) & (FR_GRID_HZ <= 3000.0)


@dataclass(eq=False)
class Device:
    """One device model.

    Attributes:
        name: model name ('Sony WF-1000XM4', 'KEF LS50', 'JBL 705P').
        kind: 'headphone' or 'speaker'.
        type: 'in-ear' | 'earbud' | 'over-ear' | 'speaker'.
        catalogue_db: float64 (481,) the catalogue response (see module doc).
        units_db: list of float64 (481,): measured units / measurements of this model.
        views_db: extra catalogue views for the embedding pool (speaker on-axis curves).
    """

    name: str
    kind: str
    type: str
    catalogue_db: np.ndarray = field(repr=False)
    units_db: list[np.ndarray] = field(repr=False)
    views_db: list[np.ndarray] = field(default_factory=list, repr=False)


def _norm(db: np.ndarray) -> np.ndarray:
    db = np.clip(db, *CLIP_DB)
    return db - db[_NORM].mean()


def load_devices(store: FRStore | None = None, speakers=None) -> list[Device]:
    """Every headphone model of the FR store and every loudspeaker model, sorted by name.

    Raises:
        DataMissingError: the shared FR data is missing.
    """
    from demt.speakers import load_speakers

    store = store or FRStore.load()
    devices = []
    for name in store.devices():
        units = []
        type_ = store.device_type(name)
        for m in store.measurements(name):
            if type_ in ("in-ear", "earbud"):
                target = store.target("Harman in-ear 2019v2")
            else:
                target = store.target("Rtings Harman over-ear 2018" if m.source == "rtings" else "Harman over-ear 2018")
            units.append(_norm(m.db - target.db))
        devices.append(Device(name, "headphone", type_, _norm(np.mean(units, axis=0)), units))
    by_model: dict[str, list] = {}
    for s in speakers if speakers is not None else load_speakers():
        by_model.setdefault(s.model, []).append(s)
    for model, items in by_model.items():
        units = [_norm(s.curves["listening_window_db"]) for s in items]
        views = [_norm(s.curves["on_axis_db"]) for s in items if "on_axis_db" in s.curves]
        devices.append(Device(model, "speaker", "speaker", _norm(np.mean(units, axis=0)), units, views))
    return sorted(devices, key=lambda d: d.name)


def split_devices(devices: list[Device], seed: int = 0, n_heldout_headphones: int = 1,
                  n_heldout_speakers: int = 8) -> tuple[list[Device], list[Device]]:
    """(seen, held_out): a seeded choice of held-out devices never used in training.

    The choice hashes the device name with the seed, so it does not depend on list order.
    """
    def key(d: Device) -> str:
        return hashlib.sha256(f"{seed}:{d.name}".encode()).hexdigest()

    heads = sorted((d for d in devices if d.kind == "headphone"), key=key)
    spk = sorted((d for d in devices if d.kind == "speaker"), key=key)
    held = {d.name for d in heads[:n_heldout_headphones] + spk[:n_heldout_speakers]}
    return [d for d in devices if d.name not in held], [d for d in devices if d.name in held]


def smooth_perturbation(rng: np.random.Generator, rms_db: float, treble_factor: float = 1.0) -> np.ndarray:
    """A smooth random curve on FR_GRID_HZ (float64 (481,), dB): white noise smoothed over one
    octave, scaled to ``rms_db`` RMS, multiplied by ``treble_factor`` above 4 kHz (ramping in
    over 2-4 kHz), then shifted to 0 dB mean over 300 Hz-3 kHz."""
    raw = rng.standard_normal(FR_GRID_HZ.size)
    sm = smooth_octave(FR_GRID_HZ, raw, 1.0)
    sm = sm / (sm.std() + 1e-12) * rms_db
    ramp = np.clip(np.log2(FR_GRID_HZ / 2000.0), 0.0, 1.0)
    sm = sm * (1.0 + (treble_factor - 1.0) * ramp)
    return sm - sm[_NORM].mean()


def encode_curve(db: np.ndarray) -> np.ndarray:
    """The default curve encoder: float32 (EMBED_DIM,) from a response on FR_GRID_HZ (dB).

    1/6-octave smoothing, read at EMBED_POINTS_HZ, divided by 10 dB. Deterministic, no weights:
    it works for any device, seen or not. (The paper's path, a VLM embedding of the curve drawn
    as a PNG, is :mod:`demt.vlm`.)
    """
    sm = smooth_octave(FR_GRID_HZ, np.asarray(db, dtype=np.float64), 1 / 6)
    return (np.interp(np.log10(EMBED_POINTS_HZ), np.log10(FR_GRID_HZ), sm) / 10.0).astype(np.float32)


def pool_curves(device: Device, seed: int = 0, n_augment: int = 6, full: bool = True) -> list[np.ndarray]:
    """Curves whose embeddings form the device's embedding pool.

    full=False: the catalogue curve alone ("pool of 1" in the paper's ablation). full=True: the
    catalogue curve, each measured unit and catalogue view, and ``n_augment`` smooth
    perturbations (0.5 dB RMS, x2 above 4 kHz) of the catalogue curve, seeded per device.
    """
    curves = [device.catalogue_db]
    if not full:
        return curves
    curves += list(device.units_db) + list(device.views_db)
    rng = np.random.default_rng(int(hashlib.sha256(f"pool:{seed}:{device.name}".encode()).hexdigest()[:8], 16))
    curves += [device.catalogue_db + smooth_perturbation(rng, 0.5, 2.0) for _ in range(n_augment)]
    return curves


def embedding_pool(device: Device, seed: int = 0, full: bool = True, encoder=encode_curve) -> np.ndarray:
    """float32 (n, D): the encoded :func:`pool_curves` (row 0 = the catalogue curve)."""
    return np.stack([encoder(c) for c in pool_curves(device, seed, full=full)])


_ENCODERS: dict = {}


def get_encoder(embedder: str = "curve"):
    """The embedding function named by a model config's ``embedder``: 'curve' -> :func:`encode_curve`;
    'vlm:tiny' -> a tiny random VLM (tests); 'vlm:<folder>' -> a local VLM (:mod:`demt.vlm`). Cached.

    Raises: ValueError for another name; OSError when the VLM folder holds no model.
    """
    if embedder == "curve":
        return encode_curve
    if not embedder.startswith("vlm:"):
        raise ValueError(f"unknown embedder {embedder!r}: use 'curve' or 'vlm:<folder>'")
    if embedder not in _ENCODERS:
        from demt.vlm import VLMEmbedder

        path = embedder[4:]
        _ENCODERS[embedder] = VLMEmbedder.tiny() if path == "tiny" else VLMEmbedder.from_pretrained(path)
    return _ENCODERS[embedder]
