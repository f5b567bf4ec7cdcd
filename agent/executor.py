"""Act and check: run a plan's tool calls on audio, then measure the result against the intent.

All linear stages (device transfer, descriptor EQ) are summed in dB on the FR grid and realised
as ONE minimum-phase FIR applied by FFT convolution: the RBJ biquads are minimum-phase, so this
is the same filter as the cascade, at a fraction of the cost of 40+ IIR sections on a long track.
Then loudness is matched to the input (ITU-R BS.1770) and true peak limited to −1 dBTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from agent.runtime import Runtime
from agent.schemas import ToolCall
from knowledge.fr_store import FR_GRID_HZ
from tools.analysis import BANDS_HZ, band_energy_change_db
from tools.eq import MAX_GAIN_DB, Filter, frequency_response_db
from tools.loudness import finalize
from tools.transfer import device_transfer, transfer_curve

#: Deepest cut the combined filter may make, dB (cuts are safe; boosts are capped at +12 dB).
MAX_CUT_DB = 30.0
LOUDNESS_TOLERANCE_LU = 0.5


@dataclass
class Execution:
    """What acting on a plan produced.

    Attributes:
        samples: processed audio, float32, shape (channels, samples), true peak ≤ ceiling.
        stage_curves: dB on ``FR_GRID_HZ`` per tool call that filters (label → curve).
        fr_curves: the FR curves used (label → dB on ``FR_GRID_HZ``), for the plot.
        applied_db: the total applied filter, dB on ``FR_GRID_HZ``.
        facts: per tool: what it did (numbers), and the finalize facts (LUFS, true peak).
        seconds: wall time per tool.
    """

    samples: np.ndarray
    stage_curves: dict[str, np.ndarray]
    fr_curves: dict[str, np.ndarray]
    applied_db: np.ndarray
    facts: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _transfer_stage(rt: Runtime, args: dict) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    target = rt.store.curve(args["target"])
    if args["reference_kind"] == "device":
        reference = rt.store.curve(args["reference"])
    else:
        reference = rt.store.target_for(args["target"])
    curve = transfer_curve(FR_GRID_HZ, target.db, reference.db,
                           smoothing=args["smoothing_octaves"], max_boost_db=args["max_boost_db"])
    used = {f"{target.device} ({target.source})": target.db,
            f"{reference.device} ({reference.source or 'target'})": reference.db}
    facts = {"target_source": target.source, "reference_source": reference.source or "target curve",
             "max_boost_db": round(float(curve.max()), 2), "max_cut_db": round(float(curve.min()), 2),
             "at_max_boost_hz": round(float(FR_GRID_HZ[np.argmax(curve)])),
             "at_max_cut_hz": round(float(FR_GRID_HZ[np.argmin(curve)]))}
    return curve, used, facts


def execute(rt: Runtime, plan: list[ToolCall], samples: np.ndarray, sample_rate: int) -> Execution:
    """Run ``plan`` on ``samples``.

    Args:
        rt: loaded runtime (FR store for device curves).
        plan: tool calls from :func:`agent.planner.build_plan` (``finalize`` last).
        samples: float32, shape (channels, samples), range [-1, 1].
        sample_rate: Hz.
    Returns:
        An :class:`Execution`; the input array is not modified.
    """
    stage_curves: dict[str, np.ndarray] = {}
    fr_curves: dict[str, np.ndarray] = {}
    facts: dict = {}
    seconds: dict[str, float] = {}
    ceiling = -1.0
    for i, call in enumerate(plan):
        start = time.perf_counter()
        if call.tool == "device_transfer":
            curve, used, stage_facts = _transfer_stage(rt, call.args)
            label = f"device transfer → {call.args['target']}"
            fr_curves.update(used)
        elif call.tool == "equalize":
            filters = [Filter(**f) for f in call.args["filters"]]
            curve = frequency_response_db(filters, FR_GRID_HZ, sample_rate)
            label = (f"{call.args['direction']} {call.args['descriptor']} (EQ)" if "descriptor" in call.args
                     else "your EQ: " + ", ".join(f"{e['label']} {e['gain_db']:+g} dB" for e in call.args["band_edits"]))
            stage_facts = {"n_filters": len(filters), "max_gain_db": round(float(curve.max()), 2),
                           "min_gain_db": round(float(curve.min()), 2)}
        else:
            ceiling = call.args["ceiling_dbtp"]
            continue
        stage_curves[label] = curve
        facts[f"{i}:{call.tool}"] = stage_facts
        seconds[call.tool] = seconds.get(call.tool, 0.0) + time.perf_counter() - start

    applied = np.clip(sum(stage_curves.values(), np.zeros_like(FR_GRID_HZ)), -MAX_CUT_DB, MAX_GAIN_DB)
    start = time.perf_counter()
    if stage_curves:
        filtered, fir_facts = device_transfer(samples, sample_rate, FR_GRID_HZ, applied)
        facts["filter"] = fir_facts
    else:
        filtered = samples.copy()
    seconds["filter"] = time.perf_counter() - start
    start = time.perf_counter()
    out, finalize_facts = finalize(filtered, samples, sample_rate, ceiling_dbtp=ceiling)
    facts["finalize"] = finalize_facts
    seconds["finalize"] = time.perf_counter() - start
    return Execution(out, stage_curves, fr_curves, applied, facts, seconds)


def _predicted_band_changes(curve_db: np.ndarray) -> dict[str, float]:
    """Mean dB of a curve per analysis band, relative to its mean over 20 Hz–20 kHz (a rough prediction)."""
    overall = float(np.mean(curve_db))
    return {band: float(np.mean(curve_db[(FR_GRID_HZ >= lo) & (FR_GRID_HZ < hi)])) - overall
            for band, (lo, hi) in BANDS_HZ.items()}


def check(execution: Execution, original: np.ndarray, sample_rate: int, ceiling_dbtp: float = -1.0) -> tuple[dict, list[dict]]:
    """Measure the output and compare it with what the plan meant to do.

    Returns:
        ``(measurements, checks)``: measurements has ``lufs_in``, ``lufs_out``, ``true_peak_dbtp``,
        ``band_energy_change_db`` (band → dB, against the median band change); each check is
        ``{name, expected, measured, ok}``.
    """
    fin = execution.facts["finalize"]
    changes = band_energy_change_db(original, execution.samples, sample_rate)
    measurements = {
        "lufs_in": fin["lufs_in"],
        "lufs_out": fin["lufs_out"],
        "true_peak_dbtp": fin["true_peak_dbtp"],
        "band_energy_change_db": {k: round(v, 2) for k, v in changes.items()},
    }
    checks = []
    if np.isfinite(fin["lufs_in"]):
        delta = fin["lufs_out"] - fin["lufs_in"]
        checks.append({"name": "loudness matched", "expected": f"|ΔLUFS| ≤ {LOUDNESS_TOLERANCE_LU}",
                       "measured": f"{delta:+.2f} LU", "ok": abs(delta) <= LOUDNESS_TOLERANCE_LU})
    checks.append({"name": "true peak", "expected": f"≤ {ceiling_dbtp:.1f} dBTP",
                   "measured": f"{fin['true_peak_dbtp']:.2f} dBTP", "ok": fin["true_peak_dbtp"] <= ceiling_dbtp + 1e-3})
    total = _predicted_band_changes(execution.applied_db)
    for label, curve in execution.stage_curves.items():
        predicted = _predicted_band_changes(curve)
        band = max(predicted, key=lambda b: abs(predicted[b]))
        if abs(total[band]) < 0.5 or not np.isfinite(fin["lufs_in"]):
            continue  # other stages cancel this one here, or silence: nothing to measure
        sign = np.sign(total[band])
        checks.append({"name": f"{label}: {band} {BANDS_HZ[band][0]:g}–{BANDS_HZ[band][1]:g} Hz",
                       "expected": f"{'up' if sign > 0 else 'down'} (this stage {predicted[band]:+.1f} dB, "
                                   f"all stages {total[band]:+.1f} dB)",
                       "measured": f"{changes[band]:+.2f} dB", "ok": bool(np.sign(changes[band]) == sign)})
    return measurements, checks
