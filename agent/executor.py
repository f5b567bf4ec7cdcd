"""Act and check: run a plan's tool calls on audio (through the registry), then measure the result.

Each call is run by its tool in :data:`agent.toolbox.TOOLS`; ``finalize`` (last) realises all
whole-mix stages as one minimum-phase FIR, matches loudness to the input (ITU-R BS.1770) and
limits true peak. :func:`check` then measures the output against what each stage meant to do,
reading the typed stages (kind, stem), never their labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from agent.plan import ToolCall
from agent.runtime import Runtime
from agent.toolbox import TOOLS, Bench, Stage
from knowledge.fr_store import FR_GRID_HZ
from tools.analysis import BANDS_HZ, band_energy_change_db
from tools.separate import Separation

LOUDNESS_TOLERANCE_LU = 0.5
#: A stem's measured level may differ from its gain by this much (its EQ changes its level too).
STEM_LEVEL_TOLERANCE_DB = 1.0
#: A stage whose main band moves less than this (dB, predicted) is not checked: too small to measure.
MIN_CHECKED_DB = 0.5


@dataclass
class Execution:
    """What acting on a plan produced.

    Attributes:
        samples: processed audio, float32, shape (channels, samples), true peak ≤ ceiling.
        stages: the filtering stages, in plan order (typed: kind, label, curve dB on FR_GRID_HZ, stem).
        fr_curves: the FR curves used (label → dB on ``FR_GRID_HZ``), for the plot.
        applied_db: the total filter applied to the whole mix, dB on ``FR_GRID_HZ`` (stem EQs not included).
        facts: per step ``"{i}:{tool}"`` and ``stems``, ``filter``, ``finalize``: what each did (numbers).
        seconds: wall time per tool.
        stems: each stem as it went into the remix (after its EQ/gain/mute, before loudness matching),
            when the plan separated the mix; else None.
    """

    samples: np.ndarray
    stages: list[Stage]
    fr_curves: dict[str, np.ndarray]
    applied_db: np.ndarray
    facts: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    stems: dict[str, np.ndarray] | None = None

    @property
    def stage_curves(self) -> dict[str, np.ndarray]:
        """label → curve of every stage (for the plot and exports)."""
        return {s.label: s.curve for s in self.stages}

    def transfer_stage(self) -> Stage | None:
        """The DSP device-transfer stage, if the plan had one."""
        return next((s for s in self.stages if s.kind == "transfer"), None)


def execute(rt: Runtime, plan: list[ToolCall], samples: np.ndarray, sample_rate: int,
            separation: Separation | None = None) -> Execution:
    """Run ``plan`` on ``samples``.

    Args:
        rt: loaded runtime (FR store for device curves).
        plan: tool calls from :func:`agent.planner.build_plan` (``finalize`` last).
        samples: float32, shape (channels, samples), range [-1, 1].
        sample_rate: Hz.
        separation: stems to use instead of separating ``samples`` (e.g. the true stems, for an
            oracle evaluation of the per-stem path); they must sum to ``samples``.
    Returns:
        An :class:`Execution`; the input array is not modified.
    Raises:
        ValueError: the plan does not end with ``finalize``.
    """
    if not plan or plan[-1].tool != "finalize":
        raise ValueError("a plan must end with finalize")
    bench = Bench(rt, samples, sample_rate, samples, separation)
    for step, call in enumerate(plan):
        start = time.perf_counter()
        TOOLS[call.tool].run(call.args, bench, step)
        if call.tool != "finalize":
            bench.seconds[call.tool] = bench.seconds.get(call.tool, 0.0) + time.perf_counter() - start
    return Execution(bench.output, bench.stages, bench.fr_curves, bench.applied_db, bench.facts, bench.seconds,
                     bench.stems_out)


def predicted_band_changes(curve_db: np.ndarray) -> dict[str, float]:
    """Mean dB of a curve per analysis band, relative to its mean over 20 Hz–20 kHz (a rough prediction)."""
    overall = float(np.mean(curve_db))
    return {band: float(np.mean(curve_db[(FR_GRID_HZ >= lo) & (FR_GRID_HZ < hi)])) - overall
            for band, (lo, hi) in BANDS_HZ.items()}


def _main_band(curve_db: np.ndarray) -> tuple[str, dict[str, float]]:
    predicted = predicted_band_changes(curve_db)
    return max(predicted, key=lambda b: abs(predicted[b])), predicted


def _direction(value: float) -> str:
    return "up" if value > 0 else "down"


def _band_name(band: str) -> str:
    return f"{band} {BANDS_HZ[band][0]:g}–{BANDS_HZ[band][1]:g} Hz"


def _stem_checks(ex: Execution) -> list[dict]:
    """Each stem's level move within tolerance of its gain; each stem EQ's main band moves its way on the stem."""
    stems = ex.facts.get("stems", {})
    checks = []
    for stem, st in stems.items():
        if st.get("level_change_db") is not None and st.get("gain_db"):
            checks.append({"name": f"{stem} stem level", "expected": f"{st['gain_db']:+.1f} dB",
                           "measured": f"{st['level_change_db']:+.2f} dB",
                           "ok": abs(st["level_change_db"] - st["gain_db"]) <= STEM_LEVEL_TOLERANCE_DB})
    for stage in (s for s in ex.stages if s.kind == "stem_eq"):
        band, predicted = _main_band(stage.curve)
        measured = stems.get(stage.stem, {}).get("band_energy_change_db")
        if measured is None or abs(predicted[band]) < MIN_CHECKED_DB:
            continue  # muted or soloed away, or too small to measure
        checks.append({"name": f"{stage.label}: {_band_name(band)}, on the stem",
                       "expected": f"{_direction(predicted[band])} ({predicted[band]:+.1f} dB)",
                       "measured": f"{measured[band]:+.2f} dB",
                       "ok": bool(np.sign(measured[band]) == np.sign(predicted[band]))})
    return checks


def _mix_checks(ex: Execution, changes: dict[str, float], audible: bool) -> list[dict]:
    """Each whole-mix stage's main band moves the way all whole-mix stages together predict."""
    mix = [s for s in ex.stages if s.kind != "stem_eq"]
    total = predicted_band_changes(sum((s.curve for s in mix), np.zeros_like(FR_GRID_HZ)))
    checks = []
    for stage in mix:
        band, predicted = _main_band(stage.curve)
        if abs(total[band]) < MIN_CHECKED_DB or not audible:
            continue  # other stages cancel this one here, or silence: nothing to measure
        checks.append({"name": f"{stage.label}: {_band_name(band)}",
                       "expected": f"{_direction(total[band])} (this stage {predicted[band]:+.1f} dB, "
                                   f"all stages {total[band]:+.1f} dB)",
                       "measured": f"{changes[band]:+.2f} dB", "ok": bool(np.sign(changes[band]) == np.sign(total[band]))})
    return checks


def check(execution: Execution, original: np.ndarray, sample_rate: int, ceiling_dbtp: float = -1.0) -> tuple[dict, list[dict]]:
    """Measure the output and compare it with what the plan meant to do.

    Returns:
        ``(measurements, checks)``: measurements has ``lufs_in``, ``lufs_out``, ``true_peak_dbtp``,
        ``band_energy_change_db`` (band → dB, against the median band change); each check is
        ``{name, expected, measured, ok}``.
    """
    fin = execution.facts["finalize"]
    changes = band_energy_change_db(original, execution.samples, sample_rate)
    measurements = {"lufs_in": fin["lufs_in"], "lufs_out": fin["lufs_out"], "true_peak_dbtp": fin["true_peak_dbtp"],
                    "band_energy_change_db": {k: round(v, 2) for k, v in changes.items()}}
    checks = []
    if np.isfinite(fin["lufs_in"]):
        delta = fin["lufs_out"] - fin["lufs_in"]
        checks.append({"name": "loudness matched", "expected": f"|ΔLUFS| ≤ {LOUDNESS_TOLERANCE_LU}",
                       "measured": f"{delta:+.2f} LU", "ok": abs(delta) <= LOUDNESS_TOLERANCE_LU})
    checks.append({"name": "true peak", "expected": f"≤ {ceiling_dbtp:.1f} dBTP",
                   "measured": f"{fin['true_peak_dbtp']:.2f} dBTP", "ok": fin["true_peak_dbtp"] <= ceiling_dbtp + 1e-3})
    return measurements, checks + _stem_checks(execution) + _mix_checks(execution, changes, np.isfinite(fin["lufs_in"]))
