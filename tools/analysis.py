"""Measurements of audio: long-term spectrum, band energies and their change, loudness summary.

Band energies come from a Welch power spectral density (scipy.signal.welch, Hann window, 50 %
overlap, density scaling), channels averaged in power, summed over the band's bins times the bin
width. Band edges are half-open: [low, high) Hz.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.signal

from tools.levels import POWER_FLOOR, power_db
from tools.loudness import integrated_lufs, true_peak_dbtp

BANDS_HZ: dict[str, tuple[float, float]] = {
    "sub_bass": (20.0, 60.0),
    "bass": (60.0, 250.0),
    "low_mid": (250.0, 500.0),
    "mud": (150.0, 500.0),
    "mid": (500.0, 2000.0),
    "presence": (2000.0, 5000.0),  # where "harsh" lives
    "brilliance": (5000.0, 10000.0),
    "air": (10000.0, 20000.0),
}
_FLOOR = POWER_FLOOR  # power floor (-200 dB) so silence gives finite numbers


def _psd(samples: np.ndarray, sample_rate: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.newaxis, :] if x.ndim == 1 else x
    if x.shape[-1] < 2:
        raise ValueError(f"a spectrum needs at least 2 samples, got {x.shape[-1]}")
    freqs, psd = scipy.signal.welch(x, fs=sample_rate, nperseg=min(nperseg, x.shape[-1]), axis=-1)
    return freqs, psd.mean(axis=0)


def long_term_spectrum(
    samples: np.ndarray, sample_rate: float, nperseg: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Long-term average spectrum (Welch).

    Args:
        samples: float array, shape (channels, samples) or (samples,), range [-1, 1].
        sample_rate: Hz.
        nperseg: segment length (cut to the signal length if longer); resolution
            ``sample_rate / nperseg`` Hz.
    Returns:
        (freqs_hz, db): float64 arrays (nperseg // 2 + 1,): bin centres 0..Nyquist, Hz, and power
        spectral density in dB re 1/Hz (full scale 1.0), channels averaged in power, floored at
        -200 dB.
    Raises:
        ValueError: fewer than 2 samples.
    Source: scipy.signal.welch (Hann, 50 % overlap).
    """
    freqs, psd = _psd(samples, sample_rate, nperseg)
    return freqs, power_db(psd)


def _band_powers(freqs: np.ndarray, psd: np.ndarray, bands: dict[str, tuple[float, float]]) -> dict[str, float]:
    df = freqs[1] - freqs[0]
    return {name: float(psd[(freqs >= low) & (freqs < high)].sum() * df) for name, (low, high) in bands.items()}


def band_energy_db(
    samples: np.ndarray, sample_rate: float, band: tuple[float, float], nperseg: int = 8192
) -> float:
    """Power in a frequency band, dB re full scale (a full-scale sine in band reads about -3 dB).

    Args:
        samples: float array, shape (channels, samples) or (samples,).
        sample_rate: Hz.
        band: (low_hz, high_hz), half-open; parts above Nyquist hold nothing.
        nperseg: Welch segment length.
    Returns:
        10 log10 of the band's mean-square power (channels averaged); -200 dB floor for silence or
        a band with no bins.
    Raises:
        ValueError: fewer than 2 samples.
    """
    freqs, psd = _psd(samples, sample_rate, nperseg)
    power = _band_powers(freqs, psd, {"band": band})["band"]
    return power_db(power)


def band_energy_change_db(
    before: np.ndarray,
    after: np.ndarray,
    sample_rate: float,
    bands: dict[str, tuple[float, float]] = BANDS_HZ,
    relative: bool = True,
    nperseg: int = 8192,
    reference: Literal["median", "broadband"] = "median",
) -> dict[str, float]:
    """How much each band's energy changed from ``before`` to ``after``, dB.

    With ``relative=True`` a reference change is subtracted, so a pure level change reads 0 dB in
    every band and loudness matching afterwards does not hide an EQ move ("less harsh" reads as
    2-5 kHz lower relative to the rest). ``reference="median"`` (default) subtracts the median of
    the bands' own changes (bands holding energy), the change of a typical band, so each value is
    close to the EQ gain inside that band. ``reference="broadband"`` subtracts the change of the
    total energy; in music that total is mostly bass, so bass bands barely move against it.
    Measured on Vibe Ace (10-30 s), loudness-matched: a +4 dB low shelf at 250 Hz reads bass
    +3.4 dB (median), +0.2 dB (broadband); a -4 dB peak at 3.2 kHz (Q 0.8) reads presence
    -3.3 dB (median), -3.4 dB (broadband).

    Args:
        before, after: float arrays, shape (channels, samples) or (samples,), same sample rate
            (lengths may differ: energies are per-Hz densities).
        sample_rate: Hz.
        bands: name -> (low_hz, high_hz). The median reference needs several bands (with one
            band it always reads 0).
        relative: subtract the reference change; False gives plain changes.
        nperseg: Welch segment length.
        reference: "median" or "broadband", see above.
    Returns:
        name -> change in dB (after minus before). Every value is 0.0 when either signal is
        silent, and a band's value is 0.0 when it holds no energy in either (e.g. above Nyquist).
    Raises:
        ValueError: fewer than 2 samples, or an unknown reference.
    """
    if reference not in ("median", "broadband"):
        raise ValueError(f"reference must be 'median' or 'broadband', got {reference!r}")
    f_before, psd_before = _psd(before, sample_rate, nperseg)
    f_after, psd_after = _psd(after, sample_rate, nperseg)
    total_before = psd_before.sum() * (f_before[1] - f_before[0])
    total_after = psd_after.sum() * (f_after[1] - f_after[0])
    if total_before <= _FLOOR or total_after <= _FLOOR:
        return {name: 0.0 for name in bands}
    p_before = _band_powers(f_before, psd_before, bands)
    p_after = _band_powers(f_after, psd_after, bands)
    held = [name for name in bands if max(p_before[name], p_after[name]) > _FLOOR]
    changes = {name: _db_ratio(p_after[name], p_before[name]) if name in held else 0.0 for name in bands}
    if not relative or not held:
        return changes
    if reference == "broadband":
        offset = _db_ratio(total_after, total_before)
    else:
        offset = float(np.median([changes[name] for name in held]))
    return {name: changes[name] - offset if name in held else 0.0 for name in bands}


def _db_ratio(new: float, old: float) -> float:
    return power_db(new) - power_db(old)


def measure(samples: np.ndarray, sample_rate: float) -> dict:
    """Loudness summary.

    Args:
        samples: float array, shape (channels, samples) or (samples,), range [-1, 1].
        sample_rate: Hz.
    Returns:
        {"lufs": integrated loudness, LUFS (-inf for silence), "true_peak_dbtp": dBTP (-inf for
        silence), "duration_s": seconds}.
    Source: ITU-R BS.1770-4 via tools.loudness.
    """
    x = np.asarray(samples, dtype=np.float32)
    return {
        "lufs": integrated_lufs(x, sample_rate),
        "true_peak_dbtp": true_peak_dbtp(x, sample_rate),
        "duration_s": x.shape[-1] / sample_rate,
    }
