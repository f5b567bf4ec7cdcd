"""What a track already has: its long-term spectrum beside a reference spectrum of real music.

A request like "less muddy" should do more on a muddy track than on a lean one. This module gives
the measure behind that: how far a track's level in a word's region sits above (or below) where
real music usually sits.

**Reference** (:func:`reference`): the permissive music recordings of the shared data set that are
whole pieces, the ``*.ogg`` files directly in ``music/`` at least :data:`EXCERPT_S` seconds long: Vibe
Ace (jazz), Dance of the Sugar Plum Fairy (classical arrangement), Let's Go Fishin' (song), Brahms
Hungarian Dance No. 5 (string orchestra). Not used: the 5.3 s solo trumpet loop (one instrument, not
a mix), ``music/other`` (not music) and ``music/nc`` (non-commercial). Of each track the middle
:data:`EXCERPT_S` seconds are decoded and measured with :func:`measure`; the reference is, per
frequency of ``FR_GRID_HZ``, the median over the tracks and their standard deviation (the spread). It is cached as a
small ``.npz`` under ``SENSE_HOME/cache`` keyed by the files' names and sizes (written atomically).

**A track** (:func:`measure`): the Welch long-term spectrum (:func:`tools.analysis.long_term_spectrum`,
channels averaged in power) interpolated on ``FR_GRID_HZ`` in log frequency, dB, minus its mean over
100 Hz–16 kHz. :func:`region_excess_db` is the track's region level (region mean minus the
100 Hz–16 kHz mean, :func:`knowledge.words.region_level_db`) minus the reference median's.
:func:`measure_file` caches one measurement per file path, modification time and size, so follow-up
turns on the same file do not measure it again.

Run ``python -m knowledge.content [FILE ...]`` to print the reference's tracks and each file's region
excesses.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from knowledge.config import cache_dir, data_dir
from knowledge.expert import Region
from knowledge.fr_store import FR_GRID_HZ
from knowledge.words import REFERENCE_HZ, region_level_db
from tools.analysis import long_term_spectrum
from tools.atomic import replace_file
from tools.errors import SenseError, one_line

#: Seconds decoded from the middle of each reference track (the whole track when shorter).
EXCERPT_S = 30.0
#: Welch segment length, samples (about 5.4 Hz resolution at 44.1 kHz).
NPERSEG = 8192
#: A track quieter than this over 100 Hz–16 kHz (mean PSD, dB re 1/Hz full scale) is not measured.
SILENCE_DB = -150.0
#: Bump when the measure changes, so old caches are not reused.
CACHE_VERSION = 1
#: Track measurements kept in memory (per path, mtime, size).
FILE_CACHE_SIZE = 16


class ContentError(SenseError):
    """A track could not be measured (silent, too short, unreadable) or the reference has no tracks."""


@dataclass(frozen=True)
class TrackSpectrum:
    """A track's long-term spectrum.

    Attributes:
        level_db: float64 (481,) on ``FR_GRID_HZ``, dB relative to the spectrum's 100 Hz–16 kHz mean.
        sample_rate: Hz.
        duration_s: seconds measured.
    """

    level_db: np.ndarray
    sample_rate: int
    duration_s: float


@dataclass(frozen=True)
class ReferenceSpectrum:
    """The long-term spectrum of real music: median and spread per frequency over the tracks.

    Attributes:
        tracks: the file names measured (relative to the data folder).
        track_levels_db: float64 (n_tracks, 481), each track's :attr:`TrackSpectrum.level_db`.
        excerpt_s: seconds measured per track (at most).
    """

    tracks: tuple[str, ...]
    track_levels_db: np.ndarray
    excerpt_s: float

    @property
    def median_db(self) -> np.ndarray:
        """(481,) median over the tracks, dB relative to the 100 Hz–16 kHz mean."""
        return np.median(self.track_levels_db, axis=0)

    @property
    def std_db(self) -> np.ndarray:
        """(481,) standard deviation over the tracks per frequency (ddof 1), dB: the spread."""
        return np.std(self.track_levels_db, axis=0, ddof=1)

    def region_level_db(self, region: Region) -> float:
        """The median's level in ``region`` (region mean minus 100 Hz–16 kHz mean), dB."""
        return region_level_db(self.median_db, region)

    def region_spread_db(self, region: Region) -> float:
        """The spread of the tracks' levels in ``region`` (standard deviation over the tracks, ddof 1), dB:
        a track's :func:`region_excess_db` usually lies within ± this."""
        return float(np.std([region_level_db(t, region) for t in self.track_levels_db], ddof=1))


def measure(samples: np.ndarray, sample_rate: float) -> TrackSpectrum:
    """A track's long-term spectrum on ``FR_GRID_HZ``, relative to its 100 Hz–16 kHz mean.

    Args:
        samples: float (channels, n) or (n,), range [-1, 1]; at least 0.1 s.
        sample_rate: Hz (≥ 32 kHz to cover 16 kHz).
    Returns:
        :class:`TrackSpectrum` (the grid above Nyquist holds the level at Nyquist).
    Raises:
        ContentError: shorter than 0.1 s, sample rate below 32 kHz, or silent (mean PSD over
            100 Hz–16 kHz below :data:`SILENCE_DB`).
    Source: scipy.signal.welch through :func:`tools.analysis.long_term_spectrum` (Hann, 50 % overlap).
    """
    x = np.asarray(samples, dtype=np.float32)
    n = x.shape[-1]
    if n < 0.1 * sample_rate:
        raise ContentError(f"too short to measure its spectrum: {n / sample_rate:.2f} s (0.1 s at least)")
    if sample_rate < 2 * REFERENCE_HZ[1]:
        raise ContentError(f"sample rate {sample_rate:g} Hz is too low to measure up to {REFERENCE_HZ[1]:g} Hz")
    freqs, db = long_term_spectrum(x, sample_rate, nperseg=NPERSEG)
    curve = np.interp(np.log(FR_GRID_HZ), np.log(np.maximum(freqs, 1e-3)), db)
    ref = (FR_GRID_HZ >= REFERENCE_HZ[0]) & (FR_GRID_HZ < REFERENCE_HZ[1])
    mean = float(np.mean(curve[ref]))
    if mean < SILENCE_DB:
        raise ContentError(f"the audio is (nearly) silent: mean spectrum {mean:.0f} dB, nothing to measure")
    return TrackSpectrum(curve - mean, int(sample_rate), n / float(sample_rate))


def region_excess_db(spectrum: TrackSpectrum, region: Region, ref: ReferenceSpectrum | None = None) -> float:
    """How far the track's level in ``region`` sits above the reference's, dB (negative: below).

    Both levels are region mean minus 100 Hz–16 kHz mean (:func:`knowledge.words.region_level_db`);
    ``region.sign`` is ignored. ``ref`` defaults to :func:`reference` (may raise its errors).
    """
    ref = ref if ref is not None else reference()
    return region_level_db(spectrum.level_db, region) - ref.region_level_db(region)


# ------------------------------------------------------------------------------ reference

def reference_paths(root: Path | None = None, min_s: float = EXCERPT_S) -> list[Path]:
    """The reference tracks: the ``*.ogg`` files directly in ``<data>/music`` (the permissive music
    recordings) at least ``min_s`` seconds long, sorted by name. Raises DataMissingError when the data
    folder is missing."""
    music = (root if root is not None else data_dir()) / "music"
    return [p for p in sorted(music.glob("*.ogg")) if sf.info(str(p)).duration >= min_s]


def _excerpt(path: Path, seconds: float) -> tuple[np.ndarray, int]:
    """The middle ``seconds`` of a file (all of it when shorter): float32 (channels, n) and the rate."""
    info = sf.info(str(path))
    n = min(info.frames, int(seconds * info.samplerate))
    start = (info.frames - n) // 2
    data, rate = sf.read(str(path), start=start, frames=n, dtype="float32", always_2d=True)
    return data.T, int(rate)


def build_reference(paths: list[Path], excerpt_s: float = EXCERPT_S, root: Path | None = None) -> ReferenceSpectrum:
    """Measure ``paths`` (middle ``excerpt_s`` seconds each) into a :class:`ReferenceSpectrum`.

    Args:
        paths: audio files (any libsndfile format, ≥ 32 kHz).
        excerpt_s: seconds decoded per track.
        root: names are stored relative to it when given (else the file names).
    Raises:
        ContentError: no paths, or a track cannot be measured.
    """
    if not paths:
        raise ContentError("no reference tracks: the data folder has no music/*.ogg")
    levels = []
    for path in paths:
        samples, rate = _excerpt(path, excerpt_s)
        levels.append(measure(samples, rate).level_db)
    names = tuple(str(p.relative_to(root)) if root is not None else p.name for p in paths)
    return ReferenceSpectrum(names, np.stack(levels), float(excerpt_s))


def _cache_key(paths: list[Path], excerpt_s: float) -> str:
    text = f"v{CACHE_VERSION}|{excerpt_s:g}|{NPERSEG}|" + "|".join(f"{p.name}:{p.stat().st_size}" for p in paths)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _save(path: Path, ref: ReferenceSpectrum) -> None:
    """Cache the reference in ``path`` (atomically: :func:`tools.atomic.replace_file`)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to a path
            np.savez(fh, tracks=np.array(ref.tracks), track_levels_db=ref.track_levels_db, excerpt_s=ref.excerpt_s)

    replace_file(path, write)


def load_reference(root: Path | None = None, excerpt_s: float = EXCERPT_S) -> ReferenceSpectrum:
    """The reference of :func:`reference_paths` (module doc), from the cache or built and cached.

    Raises:
        DataMissingError: no data folder. ContentError: no reference tracks.
    """
    root = root if root is not None else data_dir()
    paths = reference_paths(root, excerpt_s)
    if not paths:
        raise ContentError(f"no reference tracks: {root / 'music'} has no .ogg files")
    cached = cache_dir() / f"content_reference-{_cache_key(paths, excerpt_s)}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as z:
                return ReferenceSpectrum(tuple(str(t) for t in z["tracks"]), z["track_levels_db"], float(z["excerpt_s"]))
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt
    ref = build_reference(paths, excerpt_s, root)
    _save(cached, ref)
    return ref


@lru_cache(maxsize=1)
def reference() -> ReferenceSpectrum:
    """The process-wide reference (:func:`load_reference` on the configured data folder), loaded once."""
    return load_reference()


# ------------------------------------------------------------------------------ file cache

_FILE_CACHE: OrderedDict[tuple[str, int, int], TrackSpectrum] = OrderedDict()


def measure_file(path: str | os.PathLike) -> TrackSpectrum:
    """:func:`measure` of a whole audio file, cached per (resolved path, mtime, size) in memory.

    Raises:
        AudioError (tools.audio_io) when the file cannot be read; ContentError as :func:`measure`.
    """
    from tools.audio_io import load_audio

    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size)
    if key in _FILE_CACHE:
        _FILE_CACHE.move_to_end(key)
        return _FILE_CACHE[key]
    audio = load_audio(p)
    spectrum = measure(audio.samples, audio.sample_rate)
    _FILE_CACHE[key] = spectrum
    while len(_FILE_CACHE) > FILE_CACHE_SIZE:
        _FILE_CACHE.popitem(last=False)
    return spectrum


def main(argv: list[str] | None = None) -> int:
    """Print the reference's tracks and, per named file, its excess in a few regions and the time it took.

    Returns 0, or 2 when a file cannot be read or measured (the reason on stderr; the other files are still measured).
    """
    parser = argparse.ArgumentParser(prog="python -m knowledge.content", description=(
        "Measure audio files' long-term spectrum against SENSE's reference of real music (the content-aware amounts "
        "of tone words): level in a few regions above (+) or below (-) the reference, dB, with the reference's spread."))
    parser.add_argument("files", nargs="*", help="audio files to measure (any format soundfile reads)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ref = reference()
    print(f"reference: {len(ref.tracks)} tracks, {ref.excerpt_s:g} s each at most ({time.perf_counter() - start:.2f} s): "
          + ", ".join(ref.tracks))
    regions = [Region(60, 150, 1), Region(150, 400, 1), Region(150, 500, 1), Region(2000, 5000, 1), Region(6000, 16000, 1)]
    status = 0
    for name in args.files:
        start = time.perf_counter()
        try:
            spectrum = measure_file(name)
        except (SenseError, OSError) as exc:
            print(f"{name}: cannot be measured: {one_line(exc)}", file=sys.stderr)
            status = 2
            continue
        took = time.perf_counter() - start
        cells = [f"{r.label()} {region_excess_db(spectrum, r, ref):+.1f} dB (spread ±{ref.region_spread_db(r):.1f})"
                 for r in regions]
        print(f"{Path(name).name} ({spectrum.duration_s:.1f} s, measured in {took:.2f} s): " + "; ".join(cells))
    return status


if __name__ == "__main__":
    sys.exit(main())
