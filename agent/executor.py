"""Act and check: run a plan's tool calls on audio, then measure the result against the intent.

When a stem is named, the mix is first split into stems (:func:`tools.separate.separate`), each
stem gets its own EQ (one minimum-phase FIR per stem), gain, mute or solo, and the stems are summed
again. All linear stages on the whole mix (device transfer, descriptor EQ) are summed in dB on
the FR grid and realised as ONE minimum-phase FIR applied by FFT convolution: the RBJ biquads are
minimum-phase, so this is the same filter as the cascade, at a fraction of the cost of 40+ IIR
sections on a long track. Then loudness is matched to the input (ITU-R BS.1770) and true peak
limited to −1 dBTP.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from agent.runtime import Runtime
from agent.schemas import ToolCall
from knowledge.fr_store import FR_GRID_HZ
from tools.analysis import BANDS_HZ, band_energy_change_db
from tools.eq import MAX_GAIN_DB, Filter, frequency_response_db
from tools.loudness import finalize
from tools.separate import STEMS, Separation, separate
from tools.transfer import device_transfer, transfer_curve

#: Deepest cut the combined filter may make, dB (cuts are safe; boosts are capped at +12 dB).
MAX_CUT_DB = 30.0
LOUDNESS_TOLERANCE_LU = 0.5
#: A stem's measured level may differ from its gain by this much (its EQ changes its level too).
STEM_LEVEL_TOLERANCE_DB = 1.0
_SEPARATIONS: OrderedDict[str, Separation] = OrderedDict()  # the last few mixes' stems ("a bit more" reuses them)


@dataclass
class Execution:
    """What acting on a plan produced.

    Attributes:
        samples: processed audio, float32, shape (channels, samples), true peak ≤ ceiling.
        stage_curves: dB on ``FR_GRID_HZ`` per tool call that filters (label → curve), stem EQs included.
        fr_curves: the FR curves used (label → dB on ``FR_GRID_HZ``), for the plot.
        applied_db: the total filter applied to the whole mix, dB on ``FR_GRID_HZ`` (stem EQs not included).
        facts: per tool: what it did (numbers), and the finalize facts (LUFS, true peak).
        seconds: wall time per tool.
        stems: each stem as it went into the remix (after its EQ/gain/mute, before loudness matching),
            when the plan separated the mix; else None.
    """

    samples: np.ndarray
    stage_curves: dict[str, np.ndarray]
    fr_curves: dict[str, np.ndarray]
    applied_db: np.ndarray
    facts: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    stems: dict[str, np.ndarray] | None = None


def _neural_transfer_stage(rt: Runtime, args: dict) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray], dict]:
    """DeMT: the device's response relative to its class target conditions the model; a listening
    device, if known, is compensated by a DSP stage (class target − listening device)."""
    from demt.infer import device_response, load_checkpoint

    model = load_checkpoint()
    device_db, name = device_response(args["target"])
    target = rt.store.curve(args["target"])
    class_target = rt.store.target_for(args["target"])
    used = {f"{target.device} ({target.source})": target.db, f"{class_target.device} (target)": class_target.db}
    listening_curve = None
    if args["reference_kind"] == "device":
        listening = rt.store.curve(args["reference"])
        listening_curve = transfer_curve(FR_GRID_HZ, class_target.db, listening.db,
                                         smoothing=args["smoothing_octaves"], max_boost_db=args["max_boost_db"])
        used[f"{listening.device} ({listening.source})"] = listening.db
    from demt.devices import load_devices, split_devices

    seen = name not in {d.name for d in split_devices(load_devices(rt.store))[1]}
    rows = {(r["system"], r["seen"]): r for r in model.metrics.get("main_summary", [])}
    facts = {"model": model.folder.name, "sample_rate_hz": model.sample_rate, "device": name,
             "class_target": class_target.device, "seen_in_training": seen,
             "test_snr_db": {system: round(rows[(system, seen)]["snr_db"], 2) for system in ("demt", "dsp")
                             if (system, seen) in rows}}
    return device_db, listening_curve, used, facts


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


def _separation(samples: np.ndarray, sample_rate: int, method: str) -> Separation:
    """Stems of ``samples``, computed once per distinct mix (keyed by a hash of the samples)."""
    digest = hashlib.blake2b(memoryview(np.ascontiguousarray(samples)).cast("B"), digest_size=16).hexdigest()
    key = f"{digest}:{sample_rate}:{method}"
    if key not in _SEPARATIONS:
        _SEPARATIONS[key] = separate(samples, sample_rate, method)
        while len(_SEPARATIONS) > 2:
            _SEPARATIONS.popitem(last=False)
    _SEPARATIONS.move_to_end(key)
    return _SEPARATIONS[key]


def _level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def _remix(sep: Separation, curves: dict[str, np.ndarray], gains: dict[str, float], muted: set[str],
           solo: set[str], sample_rate: int) -> tuple[dict[str, np.ndarray], dict]:
    """Each stem filtered, scaled, muted or soloed; with what each stem measures."""
    out, facts = {}, {}
    for stem in STEMS:
        original = sep.stems[stem]
        if stem in muted or (solo and stem not in solo):
            facts[stem] = {"muted": True, "why": "muted" if stem in muted else "another stem is soloed"}
            out[stem] = np.zeros_like(original)
            continue
        processed = original
        stem_facts: dict = {"muted": False}
        if np.any(curves[stem]):
            processed, _ = device_transfer(original, sample_rate, FR_GRID_HZ, np.clip(curves[stem], -MAX_CUT_DB, MAX_GAIN_DB))
            stem_facts["band_energy_change_db"] = {k: round(v, 2) for k, v in
                                                   band_energy_change_db(original, processed, sample_rate).items()}
        if gains[stem]:
            processed = processed * np.float32(10 ** (gains[stem] / 20))
        if processed is not original:
            stem_facts["gain_db"] = gains[stem]
            stem_facts["level_change_db"] = round(_level_db(processed) - _level_db(original), 2)
        facts[stem] = stem_facts
        out[stem] = processed
    return out, facts


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
    """
    stage_curves: dict[str, np.ndarray] = {}
    fr_curves: dict[str, np.ndarray] = {}
    facts: dict = {}
    seconds: dict[str, float] = {}
    ceiling = -1.0
    whole_mix: list[str] = []  # labels of the stages applied to the whole mix
    source, stems_out, neural = samples, None, None
    for i, call in enumerate(plan):
        start = time.perf_counter()
        if call.tool == "separate":
            sep = separation or _separation(samples, sample_rate, call.args["method"])
            stem_curves = {s: np.zeros_like(FR_GRID_HZ) for s in STEMS}
            gains, muted, solo = {s: 0.0 for s in STEMS}, set(), set()
            facts[f"{i}:separate"] = {"method": sep.method, "why": sep.why, "model": sep.model}
            seconds["separate"] = time.perf_counter() - start
            continue
        if call.tool in ("stem_gain", "stem_mute", "stem_solo", "remix"):
            stem = call.args.get("stem")
            if call.tool == "stem_gain":
                gains[stem] += call.args["gain_db"]
            elif call.tool == "stem_mute":
                muted.add(stem)
            elif call.tool == "stem_solo":
                solo.add(stem)
            else:
                stems_out, facts["stems"] = _remix(sep, stem_curves, gains, muted, solo, sample_rate)
                source = sum(stems_out.values())
                seconds["remix"] = time.perf_counter() - start
            continue
        if call.tool == "stem_eq":
            filters = [Filter(**f) for f in call.args["filters"]]
            curve = frequency_response_db(filters, FR_GRID_HZ, sample_rate)
            stem_curves[call.args["stem"]] += curve
            label = f"{call.args['stem']} stem: {call.args['direction']} {call.args['descriptor']} (EQ)"
            stage_facts = {"n_filters": len(filters), "max_gain_db": round(float(curve.max()), 2),
                           "min_gain_db": round(float(curve.min()), 2)}
        elif call.tool == "device_transfer" and call.args["method"] == "demt":
            curve, listening_curve, used, stage_facts = _neural_transfer_stage(rt, call.args)
            neural = curve
            label = f"device transfer → {call.args['target']} (DeMT, neural)"
            fr_curves.update(used)
        elif call.tool == "device_transfer":
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
        if call.tool != "stem_eq" and not label.endswith("(DeMT, neural)"):
            whole_mix.append(label)
        stage_curves[label] = curve
        if label.endswith("(DeMT, neural)") and listening_curve is not None:
            compensation = f"listening-device compensation ({call.args['reference']})"
            stage_curves[compensation] = listening_curve
            whole_mix.append(compensation)
        facts[f"{i}:{call.tool}"] = stage_facts
        seconds[call.tool] = seconds.get(call.tool, 0.0) + time.perf_counter() - start

    applied = np.clip(sum((stage_curves[k] for k in whole_mix), np.zeros_like(FR_GRID_HZ)), -MAX_CUT_DB, MAX_GAIN_DB)
    if neural is not None:
        from demt.infer import apply_demt

        start = time.perf_counter()
        source = apply_demt(source, sample_rate, neural)
        seconds["demt"] = time.perf_counter() - start
    start = time.perf_counter()
    if whole_mix:
        filtered, fir_facts = device_transfer(source, sample_rate, FR_GRID_HZ, applied)
        facts["filter"] = fir_facts
    else:
        filtered = source.copy()
    seconds["filter"] = time.perf_counter() - start
    start = time.perf_counter()
    out, finalize_facts = finalize(filtered, samples, sample_rate, ceiling_dbtp=ceiling)
    facts["finalize"] = finalize_facts
    seconds["finalize"] = time.perf_counter() - start
    return Execution(out, stage_curves, fr_curves, applied, facts, seconds, stems_out)


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
    for stem, st in execution.facts.get("stems", {}).items():
        if st.get("level_change_db") is not None and st.get("gain_db"):
            checks.append({"name": f"{stem} stem level", "expected": f"{st['gain_db']:+.1f} dB",
                           "measured": f"{st['level_change_db']:+.2f} dB",
                           "ok": abs(st["level_change_db"] - st["gain_db"]) <= STEM_LEVEL_TOLERANCE_DB})
    total = _predicted_band_changes(sum((c for k, c in execution.stage_curves.items() if " stem: " not in k),
                                        np.zeros_like(FR_GRID_HZ)))
    for label, curve in execution.stage_curves.items():
        if " stem: " in label:
            stem = label.split(" stem: ")[0]
            predicted = _predicted_band_changes(curve)
            band = max(predicted, key=lambda b: abs(predicted[b]))
            measured = execution.facts.get("stems", {}).get(stem, {}).get("band_energy_change_db")
            if measured is None or abs(predicted[band]) < 0.5:
                continue  # muted or soloed away, or too small to measure
            sign = np.sign(predicted[band])
            checks.append({"name": f"{label}: {band} {BANDS_HZ[band][0]:g}–{BANDS_HZ[band][1]:g} Hz, on the stem",
                           "expected": f"{'up' if sign > 0 else 'down'} ({predicted[band]:+.1f} dB)",
                           "measured": f"{measured[band]:+.2f} dB", "ok": bool(np.sign(measured[band]) == sign)})
            continue
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
