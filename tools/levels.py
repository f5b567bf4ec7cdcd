"""Signal levels in dB: the one place RMS and power become decibels.

Source: the usual definitions, level = 10·log10(mean power) dB re full scale 1.0.
"""

from __future__ import annotations

import numpy as np

#: Power floor (−200 dB) so silence gives a finite level.
POWER_FLOOR = 1e-20


def power_db(power: float | np.ndarray) -> float | np.ndarray:
    """10·log10 of a power (mean square), floored at −200 dB.

    Args:
        power: mean-square value(s), full scale 1.0.
    Returns:
        dB, same shape as ``power`` (a float for a scalar).
    """
    out = 10.0 * np.log10(np.maximum(power, POWER_FLOOR))
    return float(out) if np.ndim(out) == 0 else out


def rms_db(samples: np.ndarray) -> float:
    """Level of a signal: 10·log10(mean of its squared samples), dB re full scale.

    Args:
        samples: float array, any shape (all channels and samples together).
    Returns:
        dB; −200 dB for silence or an empty array.
    """
    x = np.asarray(samples)
    return power_db(float(np.mean(np.square(x, dtype=np.float64)))) if x.size else power_db(0.0)


def level_change_db(before: np.ndarray, after: np.ndarray) -> float:
    """How much louder ``after`` is than ``before``: rms_db(after) − rms_db(before), dB."""
    return rms_db(after) - rms_db(before)
