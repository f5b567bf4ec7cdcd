"""Parametric EQ: RBJ Audio EQ Cookbook biquads, applied causally with scipy's sosfilt.

Source: Robert Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients"
(https://www.w3.org/TR/audio-eq-cookbook/). Shelves use the cookbook's Q form
(alpha = sin(w0) / (2 Q)), so a shelf measures half its gain (in dB) at ``frequency_hz``.

Filters at or above the Nyquist frequency (``frequency_hz >= sample_rate / 2``) are skipped
without error: a peak, a high shelf's shelf or a low-pass's stop band lies wholly above what the
signal can hold; a low shelf or high-pass up there would only change the broadband level, which
the loudness matching that follows undoes (and a high-pass would mute the file).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.signal
from pydantic import BaseModel, Field, field_validator

from tools.parallel import map_threads

MAX_GAIN_DB = 12.0  # hearing safety: no band is boosted or cut by more than this


class Filter(BaseModel):
    """One EQ band.

    Attributes:
        type: peaking, low_shelf, high_shelf, low_pass or high_pass.
        frequency_hz: centre (peaking), corner (shelves, at half the gain) or cutoff (pass
            filters, where a Q of 0.7071 measures -3.01 dB), Hz, > 0.
        gain_db: boost (+) or cut (-) in dB, clipped to +-MAX_GAIN_DB; ignored by pass filters.
        q: quality factor, > 0 (bandwidth for peaking, slope for shelves, resonance for pass filters).
    """

    type: Literal["peaking", "low_shelf", "high_shelf", "low_pass", "high_pass"]
    frequency_hz: float = Field(gt=0)
    gain_db: float = 0.0
    q: float = Field(default=0.7071, gt=0)

    @field_validator("gain_db")
    @classmethod
    def _clip_gain(cls, value: float) -> float:
        if not np.isfinite(value):
            raise ValueError("gain_db must be finite")
        return float(np.clip(value, -MAX_GAIN_DB, MAX_GAIN_DB))

    def describe(self) -> str:
        """One line, e.g. ``"peaking 3500 Hz -3.0 dB Q 1.20"`` (signed gain; none for pass filters)."""
        f = self.frequency_hz
        freq = f"{f:.0f}" if f >= 100 else f"{f:.3g}"
        gain = "" if self.type in ("low_pass", "high_pass") else f" {self.gain_db:+.1f} dB"
        return f"{self.type} {freq} Hz{gain} Q {self.q:.2f}"


def _biquad(flt: Filter, sample_rate: float) -> np.ndarray:
    """One cookbook biquad as an sos row [b0, b1, b2, 1, a1, a2] (normalised by a0)."""
    w0 = 2.0 * np.pi * flt.frequency_hz / sample_rate
    cos_w0, alpha = np.cos(w0), np.sin(w0) / (2.0 * flt.q)
    a = 10.0 ** (flt.gain_db / 40.0)
    if flt.type == "peaking":
        b = [1 + alpha * a, -2 * cos_w0, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos_w0, 1 - alpha / a]
    elif flt.type in ("low_shelf", "high_shelf"):
        s = 1.0 if flt.type == "low_shelf" else -1.0  # high shelf: the cookbook's signs of cos flip
        k = 2.0 * np.sqrt(a) * alpha
        b = [
            a * ((a + 1) - s * (a - 1) * cos_w0 + k),
            s * 2 * a * ((a - 1) - s * (a + 1) * cos_w0),
            a * ((a + 1) - s * (a - 1) * cos_w0 - k),
        ]
        den = [
            (a + 1) + s * (a - 1) * cos_w0 + k,
            -s * 2 * ((a - 1) + s * (a + 1) * cos_w0),
            (a + 1) + s * (a - 1) * cos_w0 - k,
        ]
    elif flt.type == "low_pass":
        b = [(1 - cos_w0) / 2, 1 - cos_w0, (1 - cos_w0) / 2]
        den = [1 + alpha, -2 * cos_w0, 1 - alpha]
    else:  # high_pass
        b = [(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2]
        den = [1 + alpha, -2 * cos_w0, 1 - alpha]
    return np.concatenate([b, den]) / den[0]


def design_sos(filters: list[Filter], sample_rate: float) -> np.ndarray:
    """Design the cascade of cookbook biquads.

    Args:
        filters: the bands, applied in order.
        sample_rate: Hz.
    Returns:
        float64 array, shape (n_sections, 6), rows [b0, b1, b2, 1, a1, a2] as scipy.signal.sosfilt
        takes them; bands at or above Nyquist are left out, so n_sections <= len(filters)
        (possibly 0).
    Source: RBJ Audio EQ Cookbook (peakingEQ, lowShelf, highShelf, LPF, HPF).
    """
    rows = [_biquad(f, sample_rate) for f in filters if f.frequency_hz < sample_rate / 2]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 6)


def frequency_response_db(filters: list[Filter], frequency_hz: np.ndarray, sample_rate: float) -> np.ndarray:
    """Magnitude response of the cascade.

    Args:
        filters: the bands.
        frequency_hz: frequencies to evaluate, Hz, any shape.
        sample_rate: Hz.
    Returns:
        float64 array, same shape as ``frequency_hz``: gain in dB. Above Nyquist, where a
        digital filter has no response, the value at Nyquist is held, so curves on a fixed grid
        (e.g. the FR store's 20 Hz-20 kHz) stay finite at any sample rate.
    Source: scipy.signal.freqz_sos on :func:`design_sos`.
    """
    freqs = np.minimum(np.asarray(frequency_hz, dtype=np.float64), sample_rate / 2)
    sos = design_sos(filters, sample_rate)
    if len(sos) == 0:
        return np.zeros_like(freqs)
    _, h = scipy.signal.freqz_sos(sos, worN=freqs.ravel(), fs=sample_rate)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-30)).reshape(freqs.shape)


def apply_eq(samples: np.ndarray, sample_rate: float, filters: list[Filter]) -> np.ndarray:
    """Filter audio through the cascade (causal, minimum phase as the biquads are; not zero-phase).

    Args:
        samples: float array, shape (channels, samples) or (samples,), range [-1, 1].
        sample_rate: Hz.
        filters: the bands (gains already clipped to +-12 dB by :class:`Filter`).
    Returns:
        float32 array, same shape. Boosts can push peaks above 1.0; the loudness/true-peak
        stage (tools.loudness.finalize) brings the level back.
    Source: scipy.signal.sosfilt along the last axis, filter state starting at zero (channels
    in parallel threads).
    """
    x = np.asarray(samples, dtype=np.float32)
    sos = design_sos(filters, sample_rate)
    if len(sos) == 0:
        return x.copy()
    rows = x.reshape(-1, x.shape[-1])
    out = map_threads(lambda row: scipy.signal.sosfilt(sos, row).astype(np.float32), rows)
    return np.stack(out).reshape(x.shape)
