"""Signal metrics: how close an estimate is to a reference (SNR, SI-SDR, SDR, STOI, spectral RMSE).

Signals are float arrays shaped (samples,) or (channels, samples), reference first. Multi-channel
values are computed per channel and averaged (SI-SDR, SDR, STOI) or pooled (SNR), as each
docstring says. Libraries do the work where one exists: fast-bss-eval (BSS Eval SDR), pystoi
(STOI). Generic signal measures, so they sit in ``tools`` (the bottom layer): ``demt`` and
``eval`` both use them (:mod:`eval.metrics` re-exports them).
"""

from __future__ import annotations

import fast_bss_eval
import numpy as np
import pystoi

from tools.analysis import long_term_spectrum
from tools.transfer import smooth_octave

__all__ = ["sdr_db", "si_sdr_db", "snr_db", "spectral_rmse_db", "stoi"]

SDR_FILTER_TAPS = 512
"""Length of BSS Eval's allowed time-invariant distortion filter (museval's v4 default)."""

SDR_CLAMP_DB = 150.0
"""SDR values are clamped to ±this (fast-bss-eval's ``clamp_db``): float64 resolves no more."""

RMSE_POINTS_PER_OCTAVE = 48
"""Density of the log-frequency grid on which :func:`spectral_rmse_db` compares spectra."""


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as float64 (channels, samples); raises on mismatched shapes or silent reference channels."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape or ref.ndim not in (1, 2) or ref.shape[-1] == 0:
        raise ValueError(
            f"reference and estimate must share one (samples,) or (channels, samples) shape, got {ref.shape} and {est.shape}"
        )
    ref, est = np.atleast_2d(ref), np.atleast_2d(est)
    if not (np.isfinite(ref).all() and np.isfinite(est).all()):
        raise ValueError("signals must be finite")
    if np.any(np.sum(ref**2, axis=-1) == 0):
        raise ValueError("a reference channel is silent: the ratio is undefined")
    return ref, est


def _ratio_db(signal_energy: np.ndarray, error_energy: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(signal_energy / error_energy)


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-noise ratio of an estimate, dB: 10 log10(Σ ref² / Σ (est − ref)²).

    Args:
        reference, estimate: float arrays, same shape (samples,) or (channels, samples); energies
            are summed over all channels (one pooled ratio).
    Returns:
        dB; ``inf`` when the estimate equals the reference. No scale or delay is forgiven.
    Raises:
        ValueError: shapes differ, non-finite values, or a silent reference channel.
    Source: the plain SNR used for device transfer in arXiv 2511.17136 (DeMT).
    """
    ref, est = _pair(reference, estimate)
    return float(_ratio_db(np.sum(ref**2), np.sum((est - ref) ** 2)))


def si_sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio, dB.

    Per channel, both signals made zero-mean: target = α·ref with α = <est, ref> / ||ref||²,
    SI-SDR = 10 log10(||target||² / ||est − target||²). Scaling the estimate by any non-zero
    factor leaves it unchanged (a negative factor too: α absorbs the sign).

    Args:
        reference, estimate: float arrays, same shape (samples,) or (channels, samples).
    Returns:
        dB, mean over channels of the per-channel values; ``inf`` for an exact (scaled) copy.
    Raises:
        ValueError: shapes differ, non-finite values, or a silent (or constant) reference channel.
    Source: J. Le Roux, S. Wisdom, H. Erdogan, J. R. Hershey, "SDR – half-baked or well done?",
        ICASSP 2019, eqs. (5)–(6).
    """
    ref, est = _pair(reference, estimate)
    ref = ref - ref.mean(axis=-1, keepdims=True)
    est = est - est.mean(axis=-1, keepdims=True)
    ref_energy = np.sum(ref**2, axis=-1, keepdims=True)
    if np.any(ref_energy == 0):
        raise ValueError("a reference channel is constant: SI-SDR is undefined")
    target = np.sum(est * ref, axis=-1, keepdims=True) / ref_energy * ref
    return float(np.mean(_ratio_db(np.sum(target**2, axis=-1), np.sum((est - target) ** 2, axis=-1))))


def sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """BSS Eval signal-to-distortion ratio, dB, over the whole signal.

    The part of the estimate explained by the reference through a SDR_FILTER_TAPS-tap
    time-invariant filter is the target; everything else is distortion. Channels are scored
    separately against their own reference channel (no permutation search) and averaged; this is
    BSS Eval's ``bss_eval_sources`` SDR, not museval's framewise stereo-image variant.

    Args:
        reference, estimate: float arrays, same shape (samples,) or (channels, samples); at least
            SDR_FILTER_TAPS samples for a meaningful value.
    Returns:
        dB, mean over channels, each clamped to ±SDR_CLAMP_DB (an exact, or scaled, copy reads about
        SDR_CLAMP_DB).
    Raises:
        ValueError: shapes differ, non-finite values, or a silent reference channel.
    Source: E. Vincent, R. Gribonval, C. Févotte, "Performance measurement in blind audio source
        separation", IEEE TASLP 14(4), 2006; computed by fast-bss-eval (R. Scheibler, "SDR — Medium
        rare with fast computations", ICASSP 2022). Checked once against museval 0.4.1's
        ``metrics.bss_eval(..., window=inf, bsseval_sources_version=True)``: equal to 1e-8 dB
        (museval itself is not a dependency: its import needs ffmpeg through musdb/stempeg).
    """
    ref, est = _pair(reference, estimate)
    # one (1 estimate, 1 reference) problem per channel; pairwise=True is the code path that works
    # with numpy 2 (fast-bss-eval 0.1.4's pairwise=False trips on numpy 2's linalg.solve shapes)
    neg_sdr = fast_bss_eval.sdr_loss(
        est[:, np.newaxis], ref[:, np.newaxis], filter_length=SDR_FILTER_TAPS, clamp_db=SDR_CLAMP_DB, pairwise=True
    )
    return float(-np.mean(neg_sdr))


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: float, extended: bool = False) -> float:
    """Short-time objective intelligibility of an estimate against a clean reference.

    pystoi resamples both signals to 10 kHz, drops frames more than 40 dB below the loudest
    reference frame, and correlates 384 ms one-third-octave envelopes.

    Args:
        reference: clean signal, float array (samples,) or (channels, samples).
        estimate: processed signal, same shape, time-aligned.
        sample_rate: Hz, of both.
        extended: ESTOI (Jensen & Taal 2016) instead of STOI.
    Returns:
        Mean over channels of pystoi's value, about 0..1 (1 = identical envelopes). Signals shorter
        than 30 analysis frames (about 0.4 s of speech) give pystoi's placeholder 1e-5 with a warning.
    Raises:
        ValueError: shapes differ, non-finite values, or a silent reference channel.
    Source: C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, "An algorithm for intelligibility
        prediction of time-frequency weighted noisy speech", IEEE TASLP 19(7), 2011; pystoi.
    """
    ref, est = _pair(reference, estimate)
    return float(np.mean([pystoi.stoi(r, e, sample_rate, extended=extended) for r, e in zip(ref, est, strict=True)]))


def spectral_rmse_db(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: float,
    f_range_hz: tuple[float, float] = (50.0, 16000.0),
    fraction: float = 1 / 6,
    nperseg: int = 8192,
) -> float:
    """RMS difference of two long-term spectra, dB, after fractional-octave smoothing.

    Each signal's Welch spectrum (:func:`tools.analysis.long_term_spectrum`, channels averaged in
    power) is smoothed over ``fraction`` octave (:func:`tools.transfer.smooth_octave`), read on a
    log-frequency grid of RMSE_POINTS_PER_OCTAVE points per octave across ``f_range_hz`` (cut at
    Nyquist), and the RMS of estimate − reference is taken there, so every octave weighs the same.
    Level counts: a broadband gain of g dB reads g.

    Args:
        reference, estimate: float arrays (samples,) or (channels, samples), same sample rate;
            lengths may differ.
        sample_rate: Hz.
        f_range_hz: (low, high) Hz compared.
        fraction: smoothing width in octaves.
        nperseg: Welch segment length (resolution sample_rate / nperseg Hz).
    Returns:
        dB (>= 0).
    Raises:
        ValueError: fewer than 2 samples, or an empty frequency range after the Nyquist cut.
    Source: the spectral RMSE reported for device transfer in arXiv 2511.17136 (DeMT); smoothing
        as in AutoEq.
    """
    low, high = float(f_range_hz[0]), min(float(f_range_hz[1]), sample_rate / 2)
    if not 0 < low < high:
        raise ValueError(f"empty frequency range {f_range_hz} at {sample_rate} Hz")
    grid = low * 2.0 ** (np.arange(int(np.log2(high / low) * RMSE_POINTS_PER_OCTAVE) + 1) / RMSE_POINTS_PER_OCTAVE)

    def smoothed(x: np.ndarray) -> np.ndarray:
        freqs, db = long_term_spectrum(x, sample_rate, nperseg)
        return np.interp(np.log2(grid), np.log2(freqs[1:]), smooth_octave(freqs[1:], db[1:], fraction))

    return float(np.sqrt(np.mean((smoothed(estimate) - smoothed(reference)) ** 2)))
