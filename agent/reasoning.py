"""Respond: the plain-language explanation of what was changed, by how much, and why."""

from __future__ import annotations

import numpy as np

from knowledge.fr_store import FR_GRID_HZ
from tools.analysis import BANDS_HZ

#: Coarse, non-overlapping bands used to describe a curve in words.
DESCRIBE_BANDS = ("sub_bass", "bass", "low_mid", "mid", "presence", "brilliance", "air")


def _band_label(band: str) -> str:
    lo, hi = BANDS_HZ[band]
    fmt = lambda f: f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"  # noqa: E731
    return f"{band.replace('_', ' ')} ({fmt(lo)}–{fmt(hi)})"


def describe_curve(curve_db: np.ndarray, min_db: float = 1.0) -> str:
    """Words for a filter curve: its mean gain per band where it is at least ``min_db``.

    Args:
        curve_db: dB on ``FR_GRID_HZ``, shape (481,).
        min_db: bands with a smaller mean |gain| are left out.
    Returns:
        e.g. ``"bass (60 Hz–250 Hz) −8.1 dB, presence (2 kHz–5 kHz) +3.0 dB"``, or ``"nearly flat"``.
    """
    parts = []
    for band in DESCRIBE_BANDS:
        lo, hi = BANDS_HZ[band]
        mean = float(np.mean(curve_db[(FR_GRID_HZ >= lo) & (FR_GRID_HZ < hi)]))
        if abs(mean) >= min_db:
            parts.append(f"{_band_label(band)} {mean:+.1f} dB")
    return ", ".join(parts) or "nearly flat"


_STEM_TOOLS = ("separate", "stem_eq", "stem_gain", "stem_mute", "stem_solo", "remix")
_STEM_ADJECTIVE = {"vocals": "vocal", "drums": "drum", "bass": "bass", "other": "other"}


def _said(adj: dict) -> str:
    said = f"\"{adj['direction']} {adj['descriptor']}\""
    if adj["asked"].lower() != adj["descriptor"]:
        said += f" (the crowd's word nearest to your \"{adj['asked']}\")"
    return said


def _stem_line(tool: str, args: dict, settings: dict, facts: dict, stage: dict | None, curves) -> str:
    """One sentence per separation/per-stem step."""
    stems = facts.get("stems", {})
    if tool == "separate":
        backend = "HTDemucs" if stage["method"] == "demucs" else "classical (HPSS + mid/side)"
        line = f"I split the mix into vocals, drums, bass and other with the {backend} backend: {stage['why']}."
        if stage["method"] == "classical":
            line += (" That split is rough (centre-panned instruments count as vocals; SDR in docs/SEPARATION.md), "
                     "so neighbouring parts move a little too.")
        return line
    stem = args.get("stem")
    name = f"{_STEM_ADJECTIVE.get(stem)} stem"
    measured = stems.get(stem, {})
    if tool == "stem_eq":
        adj = next(a for a in settings["stems"][stem]["adjustments"] if a["descriptor"] == args["descriptor"])
        line = (f"On the {name} only, for {_said(adj)}, I used the crowd's EQ curve at amount {args['amount']:.2f} "
                f"from the {adj['amount_source']}: {describe_curve(next(curves))}")
        change = measured.get("band_energy_change_db")
        if change:
            moved = ", ".join(f"{_band_label(b)} {change[b]:+.1f} dB" for b in DESCRIBE_BANDS if abs(change[b]) >= 0.5)
            line += f"; measured on the stem: {moved or 'no band moved by 0.5 dB or more'}"
        return line + "."
    if tool == "stem_gain":
        line = f"The {name} {args['gain_db']:+.1f} dB"
        if "level_change_db" in measured:
            line += f" (its level measures {measured['level_change_db']:+.1f} dB)"
        if args["capped"]:
            line += (f"; you asked for {args['requested_gain_db']:+g} dB, capped at {args['gain_db']:+g} dB to protect "
                     "your hearing")
        return line + "."
    if tool == "stem_mute":
        return f"I removed the {name}" + (" (karaoke)." if stem == "vocals" else ".")
    if tool == "stem_solo":
        return f"I kept only the {name}" + (" (a cappella)." if stem == "vocals" else ", muting the others.")
    return "Then I summed the stems again (they sum to the original mix when nothing is changed)."


def explain(settings: dict, plan: list[dict], facts: dict, stage_curves: dict[str, np.ndarray],
            measurements: dict, checks: list[dict]) -> str:
    """The reasoning text for a processed turn.

    Args:
        settings: the turn's settings (target/listening device, adjustments with amount sources).
        plan: tool calls as dicts.
        facts: per-tool facts from :func:`agent.executor.execute`.
        stage_curves: label → dB curve per filtering stage.
        measurements: from :func:`agent.executor.check`.
        checks: from :func:`agent.executor.check`.
    """
    lines = []
    curves = iter(stage_curves.values())
    for i, call in enumerate(plan):
        args = call["args"]
        if call["tool"] == "device_transfer" and args["method"] == "demt":
            target = settings["target"]
            f = facts[f"{i}:device_transfer"]
            snr = f["test_snr_db"]
            group = "devices it was trained on" if f["seen_in_training"] else "devices it never saw"
            score = (f"; on simulated test tracks of {group} it scores SNR {snr['demt']:.1f} dB against the DSP "
                     f"transfer's {snr['dsp']:.1f} dB" if {"demt", "dsp"} <= set(snr) else "")
            line = (f"To sound like {target['name']}, I used the DeMT neural model (checkpoint \"{f['model']}\"{score}), "
                    f"conditioned on {f['device']}'s frequency response relative to the {f['class_target']} target: "
                    f"{describe_curve(next(curves))}.")
            if not f["seen_in_training"]:
                line += " This device was held out of training, so the DSP transfer is likely closer; say \"use DSP\" to switch."
            if args["reference_kind"] == "device":
                line += (f" Your {args['reference']} is compensated by a DSP filter ({f['class_target']} target − its "
                         f"measurement): {describe_curve(next(curves))}.")
            lines.append(line)
        elif call["tool"] == "device_transfer":
            target = settings["target"]
            f = facts[f"{i}:device_transfer"]
            ref = (f"your {args['reference']} ({f['reference_source']} measurement)" if args["reference_kind"] == "device"
                   else f"the {args['reference']} target, since I don't know what you listen on")
            line = (f"To sound like {target['name']}, I applied its frequency response ({f['target_source']} "
                    f"measurement, via AutoEq) relative to {ref}, smoothed to 1/6 octave with boosts capped at "
                    f"+{args['max_boost_db']:g} dB: {describe_curve(next(curves))}; the deepest cut is "
                    f"{f['max_cut_db']:+.1f} dB at {f['at_max_cut_hz']} Hz.")
            if target.get("via") == "profile":
                line += f" \"{target['query']}\" is the {target['name']} in your profile."
            if target.get("alternatives"):
                line += (f" You said \"{target['query']}\"; close alternatives are "
                         f"{', '.join(target['alternatives'])} — name one if you meant it.")
            lines.append(line)
        elif call["tool"] in _STEM_TOOLS:
            lines.append(_stem_line(call["tool"], args, settings, facts, facts.get(f"{i}:{call['tool']}"), curves))
        elif call["tool"] == "equalize" and "band_edits" in args:
            edits = args["band_edits"]
            line = "As you asked, I set " + ", ".join(
                f"{e['label']} {e['gain_db']:+.1f} dB" for e in edits) + f" ({describe_curve(next(curves))})."
            capped = [e for e in edits if e["capped"]]
            if capped:
                line += " " + " ".join(
                    f"You asked for {e['requested_gain_db']:+g} dB on {e['label']}; I capped it at "
                    f"{e['gain_db']:+g} dB: 12 dB is the most SENSE boosts or cuts any band, to protect your "
                    "hearing and your speakers." for e in capped)
            lines.append(line)
        elif call["tool"] == "equalize":
            adj = next(a for a in settings["adjustments"] if a["descriptor"] == args["descriptor"])
            said = _said(adj)
            f = facts[f"{i}:equalize"]
            lines.append(
                f"For {said}, I used the crowd's EQ curve for that word at amount "
                f"{args['amount']:.2f} from the {adj['amount_source']}: {f['n_filters']} peaking filters "
                f"(Q 4.31), together {f['min_gain_db']:+.1f} to {f['max_gain_db']:+.1f} dB — "
                f"{describe_curve(next(curves))}.")
    bands = measurements["band_energy_change_db"]
    changed = ", ".join(f"{_band_label(b)} {bands[b]:+.1f} dB" for b in DESCRIBE_BANDS if abs(bands[b]) >= 0.5)
    lines.append(
        f"Measured on the output (each band against the median band, so level changes cancel): {changed or 'no band moved by 0.5 dB or more'}"
        + (f"; loudness {measurements['lufs_in']:.1f} LUFS in, {measurements['lufs_out']:.1f} LUFS out; "
           f"true peak {measurements['true_peak_dbtp']:.1f} dBTP."))
    failed = [c for c in checks if not c["ok"]]
    if failed:
        lines.append("Check failed: " + "; ".join(f"{c['name']}: expected {c['expected']}, measured {c['measured']}"
                                                  for c in failed) + ".")
    return "\n".join(lines)
