"""Simulated training and test data for DeMT: music as heard through device X at the ear.

Recipe (all magnitudes in :class:`Recipe`, saved with every checkpoint as recipe.json):

1. **Music**: real tracks from ``data_dir()/music`` and a multitrack song rendered from MIDI
   (Slakh Track00001 ``all_src.mid``, FluidSynth + FluidR3 GM via :func:`tools.synth.render_midi`,
   cached under ``SENSE_HOME/cache/demt``). Split by track: train / validation / test never share
   a track. The CC BY-NC tracks are used for testing only, never for training.
2. **Device**: a unit of the model is drawn: one of its measured units (another measurement of the
   same model where one exists) plus a smooth unit-to-unit perturbation (1-octave-smooth noise,
   ``unit_rms_db`` RMS, twice that above 4 kHz for headphones, where fit moves the response most).
3. **Fit / seal** (in-ear and earbud only): a bass loss ``-L / (1 + (f/fc)^2)`` dB with L drawn
   from ``seal_loss_db`` and fc from ``seal_corner_hz``.
4. The unit curve (0 dB mean over 300 Hz-3 kHz) is realised as a minimum-phase FIR
   (:func:`min_phase_ir`) and applied to the music after a **mild level-dependent nonlinearity**
   ``x + a3 x^3`` (third-harmonic level ``thd_fs_db`` for a full-scale sine, i.e. distortion
   rises 6 dB per 3 dB of level), then **noise** (white, ``noise_db`` re the output's RMS) is added.

Every example is a pure function of (seed, split, index), so data can be generated on the fly or
re-created exactly; :func:`write_dataset` caches a split as WAV files plus a manifest.
Source of the task: DeMT, arXiv 2511.17136 (there the targets are recordings through real devices).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

from knowledge.config import cache_dir, data_dir
from knowledge.fr_store import FR_GRID_HZ
from demt.devices import Device, smooth_perturbation

SLAKH_MIDI = "stems/slakh_sample/Track00001/all_src.mid"
TRACKS = {
    "train": ["music/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
              "music/Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg", SLAKH_MIDI],
    "val": ["music/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
            "music/sorohanro_-_solo-trumpet-06.hq.ogg"],
    "test": ["music/Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
             "music/nc/147793__setuniman__sweet-waltz-0i-22mi.hq.ogg",
             "music/nc/442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.hq.ogg",
             "music/nc/admiralbob77_-_Choice_-_Drum-bass.hq.ogg"],
}
"""Tracks per split, relative to data_dir(). Test holds the CC BY-NC tracks (evaluation only)."""


@dataclass
class Recipe:
    """Magnitudes of the simulation (see module doc). Ranges are uniform [low, high]."""

    sample_rate: int = 44100
    unit_rms_db: tuple[float, float] = (0.2, 0.6)
    headphone_treble_factor: float = 2.0
    seal_loss_db: tuple[float, float] = (0.0, 3.0)
    seal_corner_hz: tuple[float, float] = (60.0, 200.0)
    thd_fs_db: tuple[float, float] = (-50.0, -40.0)
    noise_db: tuple[float, float] = (-60.0, -50.0)
    level_dbfs: tuple[float, float] = (-30.0, -14.0)
    ir_taps: int = 8192
    preroll: int = 8192
    tracks: dict = field(default_factory=lambda: {k: list(v) for k, v in TRACKS.items()})

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Recipe":
        d = dict(d)
        for k, v in d.items():
            if isinstance(v, list) and k != "tracks":
                d[k] = tuple(v)
        return cls(**d)


def min_phase_ir(curve_db: np.ndarray, sample_rate: int, n_taps: int = 8192) -> np.ndarray:
    """Minimum-phase impulse response whose magnitude follows ``curve_db`` (on FR_GRID_HZ).

    Real-cepstrum (homomorphic) construction on a 4*n_taps FFT, truncated to ``n_taps`` with a
    half-Hann fade over the last eighth. Edge values are held outside 20 Hz-20 kHz.
    Returns: float64 (n_taps,).
    """
    n_fft = 4 * n_taps
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mag_db = np.interp(np.log10(np.maximum(freqs, 1.0)), np.log10(FR_GRID_HZ), curve_db)
    log_mag = mag_db * (np.log(10.0) / 20.0)
    cep = np.fft.irfft(log_mag, n_fft)
    fold = np.zeros(n_fft)
    fold[0] = cep[0]
    fold[1:n_fft // 2] = 2.0 * cep[1:n_fft // 2]
    fold[n_fft // 2] = cep[n_fft // 2]
    h = np.fft.irfft(np.exp(np.fft.rfft(fold)), n_fft)[:n_taps]
    fade = n_taps // 8
    h[-fade:] *= np.hanning(2 * fade)[fade:]
    return h


def unit_curve(device: Device, rng: np.random.Generator, recipe: Recipe) -> tuple[np.ndarray, dict]:
    """The response of one simulated unit as worn/placed: (float64 (481,) dB, facts)."""
    i = int(rng.integers(len(device.units_db)))
    rms = rng.uniform(*recipe.unit_rms_db)
    treble = recipe.headphone_treble_factor if device.kind == "headphone" else 1.0
    curve = device.units_db[i] + smooth_perturbation(rng, rms, treble)
    facts = {"unit": i, "unit_rms_db": round(float(rms), 3)}
    if device.type in ("in-ear", "earbud"):
        loss, fc = rng.uniform(*recipe.seal_loss_db), rng.uniform(*recipe.seal_corner_hz)
        curve = curve - loss / (1.0 + (FR_GRID_HZ / fc) ** 2)
        facts.update(seal_loss_db=round(float(loss), 3), seal_corner_hz=round(float(fc), 1))
    norm = (FR_GRID_HZ >= 300) & (FR_GRID_HZ <= 3000)
    return curve - curve[norm].mean(), facts


def simulate(x: np.ndarray, device: Device, rng: np.random.Generator, recipe: Recipe) -> tuple[np.ndarray, dict]:
    """Music through one simulated unit of ``device``.

    Args:
        x: float32 (channels, samples) at recipe.sample_rate; the first ``recipe.preroll`` samples
            are context for the filter (score after them).
    Returns:
        (target float32 (channels, samples), facts dict of the drawn parameters).
    """
    curve, facts = unit_curve(device, rng, recipe)
    thd = rng.uniform(*recipe.thd_fs_db)
    a3 = 4.0 * 10 ** (thd / 20.0)
    xd = x.astype(np.float64)
    xd = xd + a3 * xd ** 3
    h = min_phase_ir(curve, recipe.sample_rate, recipe.ir_taps)
    y = scipy.signal.fftconvolve(xd, h[None, :], axes=-1)[:, : x.shape[-1]]
    noise_db = rng.uniform(*recipe.noise_db)
    rms = np.sqrt(np.mean(y ** 2) + 1e-20)
    y = y + rng.standard_normal(y.shape) * rms * 10 ** (noise_db / 20.0)
    facts.update(thd_fs_db=round(float(thd), 2), noise_db=round(float(noise_db), 2))
    return y.astype(np.float32), facts


@lru_cache(maxsize=16)
def load_track(relpath: str, sample_rate: int = 44100) -> np.ndarray:
    """float32 (2, samples) at ``sample_rate``; MIDI is rendered once and cached in SENSE_HOME/cache/demt."""
    path = data_dir() / relpath
    if relpath.endswith(".mid"):
        cached = cache_dir() / "demt" / f"{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}_{sample_rate}.npy"
        if cached.is_file():
            return np.load(cached)
        from tools.synth import render_midi

        audio = render_midi(path, sample_rate)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npy")
        np.save(tmp, audio)
        tmp.replace(cached)
        return audio
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.T
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    if rate != sample_rate:
        from tools.audio_io import resample

        audio = resample(audio, rate, sample_rate)
    return np.ascontiguousarray(audio[:2])


def _rng(seed: int, *keys) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(":".join(map(str, (seed,) + keys)).encode()).hexdigest()[:16], 16))


def _excerpt(tracks: list[np.ndarray], rng: np.random.Generator, n: int) -> tuple[int, int, np.ndarray]:
    """A random non-silent excerpt of n samples (both channels), tracks weighted by length."""
    lengths = np.array([t.shape[1] for t in tracks], dtype=np.float64)
    for _ in range(20):
        k = int(rng.choice(len(tracks), p=lengths / lengths.sum()))
        start = int(rng.integers(0, max(1, tracks[k].shape[1] - n)))
        seg = tracks[k][:, start:start + n]
        if seg.shape[1] == n and np.sqrt(np.mean(seg ** 2)) > 1e-3:
            return k, start, seg
    return k, start, np.pad(seg, ((0, 0), (0, n - seg.shape[1])))


class Simulator:
    """Draws simulated (input, target, device) examples for one split.

    Args:
        devices: devices to draw from (uniformly).
        split: 'train' | 'val' | 'test' (which tracks).
        recipe: the simulation's magnitudes.
        seed: base seed; example i of a split is a pure function of (seed, split, i).
        audio_fraction: keep only this fraction of each track (from its start): the few-shot data budget.
    """

    def __init__(self, devices: list[Device], split: str, recipe: Recipe | None = None, seed: int = 0,
                 audio_fraction: float = 1.0):
        self.devices, self.split, self.recipe, self.seed = devices, split, recipe or Recipe(), seed
        tracks = [load_track(p, self.recipe.sample_rate) for p in self.recipe.tracks[split]]
        self.tracks = [t[:, : max(int(t.shape[1] * audio_fraction), 1)] for t in tracks]
        self.track_names = [Path(p).stem for p in self.recipe.tracks[split]]

    def example(self, index: int, seconds: float, device: Device | None = None, stereo: bool = False) -> dict:
        """Example ``index``: dict with x, y float32 (channels, preroll + n), device, facts.

        Mono examples (stereo=False) take one random channel, so channels act as batch items.
        The level is drawn from recipe.level_dbfs (RMS) before the nonlinearity.
        """
        r = self.recipe
        rng = _rng(self.seed, self.split, index, device.name if device is not None else "")
        dev = device or self.devices[int(rng.integers(len(self.devices)))]
        n = r.preroll + int(round(seconds * r.sample_rate))
        k, start, seg = _excerpt(self.tracks, rng, n)
        if not stereo:
            seg = seg[int(rng.integers(2))][None]
        level = rng.uniform(*r.level_dbfs)
        x = seg * (10 ** (level / 20) / (np.sqrt(np.mean(seg[:, r.preroll:] ** 2)) + 1e-9))
        y, facts = simulate(x.astype(np.float32), dev, rng, r)
        facts.update(track=self.track_names[k], start=start, level_dbfs=round(float(level), 2))
        return {"x": x.astype(np.float32), "y": y, "device": dev, "facts": facts}

    def batch(self, step: int, size: int, seconds: float) -> tuple[np.ndarray, np.ndarray, list[Device]]:
        """(x (B, n), y (B, n), devices) of mono examples for training step ``step`` (pre-roll dropped
        from x and y: the model sees exactly what it is scored on; the target keeps the filter tail
        from the pre-roll, as a real device would)."""
        exs = [self.example(step * size + i, seconds) for i in range(size)]
        p = self.recipe.preroll
        return (np.stack([e["x"][0, p:] for e in exs]), np.stack([e["y"][0, p:] for e in exs]),
                [e["device"] for e in exs])


def test_examples(devices: list[Device], recipe: Recipe, seed: int = 0, per_device: int = 2,
                  seconds: float = 4.0, split: str = "test"):
    """Yield the fixed stereo test examples: ``per_device`` excerpts of ``seconds`` per device."""
    sim = Simulator(devices, split, recipe, seed)
    for d in devices:
        for j in range(per_device):
            yield sim.example(j, seconds, device=d, stereo=True) | {"key": f"{d.name}#{j}"}


def write_dataset(out: Path, devices: list[Device], split: str, recipe: Recipe, seed: int = 0,
                  per_device: int = 2, seconds: float = 4.0) -> Path:
    """Write a split as WAV pairs (``<i>_in.wav``, ``<i>_target.wav``, 32-bit float) + manifest.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, ex in enumerate(test_examples(devices, recipe, seed, per_device, seconds, split)):
        sf.write(out / f"{i:04d}_in.wav", ex["x"].T, recipe.sample_rate, subtype="FLOAT")
        sf.write(out / f"{i:04d}_target.wav", ex["y"].T, recipe.sample_rate, subtype="FLOAT")
        rows.append({"index": i, "device": ex["device"].name, "type": ex["device"].type, **ex["facts"]})
    (out / "manifest.json").write_text(json.dumps({"seed": seed, "split": split, "recipe": recipe.to_json(),
                                                   "preroll": recipe.preroll, "examples": rows}, indent=1))
    return out
