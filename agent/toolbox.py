"""The tool registry: each tool owns its argument model, ``run``, ``describe`` and ``explain``.

- ``run(args, bench, step)`` acts on the :class:`Bench` (the audio being worked on, the stems, the
  filter stages so far) and records typed :class:`Stage` results and numeric facts;
- ``describe(args)`` is THE one sentence for a call — the trace, the web UI, the eval report and
  the plan summary all use it;
- ``explain(args, view)`` is the reasoning sentence with the measured numbers and their sources.

Whole-mix linear stages (device transfer, tone words, band edits) are summed in dB and realised
by ``finalize`` as ONE minimum-phase FIR (RBJ biquads are minimum-phase, so this equals the
cascade); per-stem EQs are realised on their stem before the remix.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np

from agent import plan as p
from agent.runtime import Runtime
from agent.settings import Settings
from knowledge.fr_store import FR_GRID_HZ
from knowledge.words import TARGET_DB
from tools.analysis import BANDS_HZ, band_energy_change_db
from tools.eq import MAX_GAIN_DB, Filter, frequency_response_db
from tools.levels import level_change_db
from tools.loudness import finalize
from tools.separate import STEMS, Separation, separate
from tools.transfer import device_transfer, transfer_curve

#: Deepest cut the combined filter may make, dB (cuts are safe; boosts are capped at +12 dB).
MAX_CUT_DB = -30.0
#: Coarse, non-overlapping bands used to describe a curve in words.
DESCRIBE_BANDS = ("sub_bass", "bass", "low_mid", "mid", "presence", "brilliance", "air")
StageKind = Literal["transfer", "neural_transfer", "compensation", "word_eq", "band_eq", "stem_eq"]
WHOLE_MIX_KINDS = frozenset({"transfer", "compensation", "word_eq", "band_eq"})
_SEPARATIONS: OrderedDict[str, Separation] = OrderedDict()  # the last few mixes' stems ("a bit more" reuses them)


@dataclass
class Stage:
    """One filtering stage of an execution.

    Attributes:
        kind: transfer | neural_transfer (DeMT; realised by the model, not a filter) | compensation
            (the listening device under DeMT) | word_eq | band_eq | stem_eq.
        label: short name for plots and checks, e.g. "less harsh (EQ)".
        curve: dB on ``FR_GRID_HZ``, shape (481,).
        step: index of the plan call that made it.
        stem: the stem it applies to (stem_eq only), else None.
    """

    kind: StageKind
    label: str
    curve: np.ndarray
    step: int
    stem: str | None = None

    @property
    def whole_mix(self) -> bool:
        return self.kind in WHOLE_MIX_KINDS


@dataclass
class Bench:
    """The working state of one execution (the input is never modified).

    Attributes:
        rt: loaded runtime (FR store for device curves).
        original: input, float32 (channels, samples).
        sample_rate: Hz.
        signal: the whole mix being processed (the input, or the remixed stems).
        separation: stems given by the caller (oracle evaluation) or computed by ``separate``.
        stages: the filtering stages so far.
        fr_curves: FR curves used (label → dB on FR_GRID_HZ), for the plot.
        facts: per step ``"{i}:{tool}"``, plus ``stems``, ``filter``, ``finalize``: numbers of what happened.
        seconds: wall time per tool.
        output: the final audio (set by ``finalize``).
        applied_db: total whole-mix filter, dB on FR_GRID_HZ (set by ``finalize``).
        stems_out: each stem as it went into the remix, or None.
    """

    rt: Runtime
    original: np.ndarray
    sample_rate: int
    signal: np.ndarray
    separation: Separation | None = None
    stages: list[Stage] = field(default_factory=list)
    fr_curves: dict[str, np.ndarray] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    stem_gain_db: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STEMS})
    muted: set[str] = field(default_factory=set)
    solo: set[str] = field(default_factory=set)
    neural_db: np.ndarray | None = None
    output: np.ndarray | None = None
    applied_db: np.ndarray | None = None
    stems_out: dict[str, np.ndarray] | None = None

    def stage(self, kind: StageKind, label: str, curve: np.ndarray, step: int, stem: str | None = None) -> None:
        self.stages.append(Stage(kind, label, curve, step, stem))

    def stem_curve(self, stem: str) -> np.ndarray:
        """The summed EQ of one stem, dB on FR_GRID_HZ."""
        return sum((s.curve for s in self.stages if s.kind == "stem_eq" and s.stem == stem), np.zeros_like(FR_GRID_HZ))


@dataclass
class StepView:
    """What ``explain`` may read: the settings, the step's facts and stages, and the run's facts."""

    settings: Settings
    facts: dict[str, Any]
    stages: list[Stage]
    run_facts: dict[str, Any]


A = TypeVar("A")


class Tool(Protocol, Generic[A]):
    """One tool: an argument model, and what it does, says and explains."""

    name: str

    def run(self, args: A, bench: Bench, step: int) -> None: ...

    def describe(self, args: A) -> str: ...

    def explain(self, args: A, view: StepView) -> str | None: ...


# ------------------------------------------------------------------------------------- words

def band_label(band: str) -> str:
    """``"presence (2 kHz–5 kHz)"``."""
    lo, hi = BANDS_HZ[band]
    return f"{band.replace('_', ' ')} ({hz(lo)}–{hz(hi)})"


def hz(f: float) -> str:
    return f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"


def band_means_db(curve_db: np.ndarray) -> dict[str, float]:
    """Mean dB of a curve (on FR_GRID_HZ) in each of :data:`DESCRIBE_BANDS`."""
    return {b: float(np.mean(curve_db[(FR_GRID_HZ >= BANDS_HZ[b][0]) & (FR_GRID_HZ < BANDS_HZ[b][1])]))
            for b in DESCRIBE_BANDS}


def describe_curve(curve_db: np.ndarray, min_db: float = 1.0) -> str:
    """Words for a filter curve: its mean gain per band where it is at least ``min_db``.

    Args:
        curve_db: dB on ``FR_GRID_HZ``, shape (481,).
        min_db: bands with a smaller mean |gain| are left out.
    Returns:
        e.g. ``"bass (60 Hz–250 Hz) −8.1 dB, presence (2 kHz–5 kHz) +3.0 dB"``, or ``"nearly flat"``.
    """
    means = band_means_db(curve_db)
    return ", ".join(f"{band_label(b)} {v:+.1f} dB" for b, v in means.items() if abs(v) >= min_db) or "nearly flat"


def describe_changes(changes_db: dict[str, float], min_db: float = 0.5) -> str:
    """Measured band changes in words (bands of :data:`DESCRIBE_BANDS` moving at least ``min_db``)."""
    moved = [f"{band_label(b)} {changes_db[b]:+.1f} dB" for b in DESCRIBE_BANDS if abs(changes_db.get(b, 0.0)) >= min_db]
    return ", ".join(moved) or f"no band moved by {min_db:g} dB or more"


def _eq_facts(curve: np.ndarray, n_filters: int) -> dict:
    return {"n_filters": n_filters, "max_gain_db": round(float(curve.max()), 2) + 0.0,  # + 0.0: no "-0.0"
            "min_gain_db": round(float(curve.min()), 2) + 0.0}


def _tone_source(moves, args) -> str:
    """"less boomy" (what decided its EQ and why), at amount … from …"""
    move = next((m for m in moves if m.descriptor == args.descriptor), None)
    if move is None:
        return f"\"{args.direction} {args.descriptor}\""
    said = f"\"{move.said()}\""
    if move.asked.lower() not in (move.descriptor, move.descriptor.replace(" ", "-")):
        said += f" (your \"{move.asked}\")"
    if move.why:
        said += f": {move.why}"
    said += f"; amount {args.amount:.2f} from {move.amount_source}"
    if move.variant:
        said += f"; variant {move.variant}"
    elif move.personal:
        said += f"; shaped to your taste: {move.personal}"
    return said


# ---------------------------------------------------------------------------- separation

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


_BACKEND_NAMES = {"demucs": "HTDemucs", "spleeter": "Spleeter (vocals) + classical (drums, bass)",
                  "classical": "classical (HPSS + mid/side)"}


class SeparateTool:
    name = "separate"

    def run(self, args: p.SeparateArgs, bench: Bench, step: int) -> None:
        bench.separation = bench.separation or _separation(bench.original, bench.sample_rate, args.method)
        sep = bench.separation
        bench.facts[f"{step}:separate"] = {"method": sep.method, "why": sep.why, "model": sep.model}

    def describe(self, args: p.SeparateArgs) -> str:
        return f"split the mix into vocals, drums, bass and other (backend: {args.method})"

    def explain(self, args: p.SeparateArgs, view: StepView) -> str:
        backend = _BACKEND_NAMES.get(view.facts["method"], view.facts["method"])
        line = f"I split the mix into vocals, drums, bass and other with the {backend} backend: {view.facts['why']}."
        if view.facts["method"] == "spleeter":
            line += (" Its vocals come from a trained network; drums and bass from the classical masks, so moves on "
                     "those spill a little into neighbouring parts (SDR in docs/SEPARATION.md).")
        if view.facts["method"] == "classical":
            line += (" That split is rough (centre-panned instruments count as vocals; SDR in docs/SEPARATION.md), "
                     "so neighbouring parts move a little too.")
        return line


_STEM_ADJECTIVE = {"vocals": "vocal", "drums": "drum", "bass": "bass", "other": "other"}


def _stem_name(stem: str) -> str:
    return f"{_STEM_ADJECTIVE.get(stem, stem)} stem"


class StemEqTool:
    name = "stem_eq"

    def run(self, args: p.StemEqArgs, bench: Bench, step: int) -> None:
        curve = frequency_response_db(args.filters, FR_GRID_HZ, bench.sample_rate)
        bench.stage("stem_eq", f"{args.stem} stem: {args.direction} {args.descriptor} (EQ)", curve, step, args.stem)
        bench.facts[f"{step}:stem_eq"] = _eq_facts(curve, len(args.filters))

    def describe(self, args: p.StemEqArgs) -> str:
        return (f"EQ on the {_stem_name(args.stem)} for \"{args.direction} {args.descriptor}\" "
                f"(amount {args.amount:.2f}, {len(args.filters)} filters)")

    def explain(self, args: p.StemEqArgs, view: StepView) -> str:
        stem = view.settings.stems.get(args.stem)
        line = (f"On the {_stem_name(args.stem)} only, for {_tone_source(stem.tone if stem else [], args)}: "
                f"{describe_curve(view.stages[0].curve)}")
        change = view.run_facts.get("stems", {}).get(args.stem, {}).get("band_energy_change_db")
        if change:
            line += f"; measured on the stem: {describe_changes(change)}"
        return line + "."


class StemGainTool:
    name = "stem_gain"

    def run(self, args: p.StemGainArgs, bench: Bench, step: int) -> None:
        bench.stem_gain_db[args.stem] += args.gain_db

    def describe(self, args: p.StemGainArgs) -> str:
        return f"{_stem_name(args.stem)} {args.gain_db:+.1f} dB" + (" (capped)" if args.capped else "")

    def explain(self, args: p.StemGainArgs, view: StepView) -> str:
        measured = view.run_facts.get("stems", {}).get(args.stem, {})
        line = f"The {_stem_name(args.stem)} {args.gain_db:+.1f} dB"
        if "level_change_db" in measured:
            line += f" (its level measures {measured['level_change_db']:+.1f} dB)"
        if args.capped:
            line += (f"; you asked for {args.requested_gain_db:+g} dB, capped at {args.gain_db:+g} dB to protect "
                     "your hearing")
        return line + "."


class StemSwitchTool:
    """Mute one stem ("karaoke" for the vocals) or keep only it ("a cappella"): one tool, two names.

    Args:
        name: stem_mute | stem_solo.
        kept: the Bench set the stem joins (muted | solo).
        does: what the call does ("mute the {stem}"); did: what the reply says ("I removed the {stem}").
        vocals_tail, other_tail: how the reply's sentence ends for the vocals and for another stem.
    """

    def __init__(self, name: str, kept: str, does: str, did: str, vocals_tail: str, other_tail: str):
        self.name, self._kept, self._does, self._did = name, kept, does, did
        self._tails = {"vocals": vocals_tail}
        self._other = other_tail

    def run(self, args: p.StemArgs, bench: Bench, step: int) -> None:
        getattr(bench, self._kept).add(args.stem)

    def describe(self, args: p.StemArgs) -> str:
        return self._does.format(stem=_stem_name(args.stem))

    def explain(self, args: p.StemArgs, view: StepView) -> str:
        return self._did.format(stem=_stem_name(args.stem)) + self._tails.get(args.stem, self._other)


class RemixTool:
    name = "remix"

    def run(self, args: p.RemixArgs, bench: Bench, step: int) -> None:
        out, facts = {}, {}
        for stem in STEMS:
            out[stem], facts[stem] = self._stem(bench, stem)
        bench.stems_out, bench.facts["stems"] = out, facts
        bench.signal = sum(out.values())

    @staticmethod
    def _stem(bench: Bench, stem: str) -> tuple[np.ndarray, dict]:
        """One stem filtered, scaled, muted or soloed away, with what it measures."""
        original = bench.separation.stems[stem]
        if stem in bench.muted or (bench.solo and stem not in bench.solo):
            return np.zeros_like(original), {"muted": True, "why": "muted" if stem in bench.muted else "another stem is soloed"}
        processed, facts = original, {"muted": False}
        curve, gain = bench.stem_curve(stem), bench.stem_gain_db[stem]
        if np.any(curve):
            processed, _ = device_transfer(original, bench.sample_rate, FR_GRID_HZ, np.clip(curve, MAX_CUT_DB, MAX_GAIN_DB))
            facts["band_energy_change_db"] = {k: round(v, 2) for k, v in
                                              band_energy_change_db(original, processed, bench.sample_rate).items()}
        if gain:
            processed = processed * np.float32(10 ** (gain / 20))
        if processed is not original:
            facts["gain_db"] = gain
            facts["level_change_db"] = round(level_change_db(original, processed), 2)
        return processed, facts

    def describe(self, args: p.RemixArgs) -> str:
        return f"sum the stems again ({args.stems})"

    def explain(self, args: p.RemixArgs, view: StepView) -> str:
        return "Then I summed the stems again (they sum to the original mix when nothing is changed)."


class TransferTool:
    name = "device_transfer"

    def run(self, args: p.TransferArgs, bench: Bench, step: int) -> None:
        if args.method == "demt":
            self._neural(args, bench, step)
            return
        store = bench.rt.store
        target = store.curve(args.target)
        reference = store.curve(args.reference) if args.reference_kind == "device" else store.target_for(args.target)
        curve = transfer_curve(FR_GRID_HZ, target.db, reference.db, smoothing=args.smoothing_octaves,
                               max_boost_db=args.max_boost_db)
        bench.fr_curves.update({f"{target.device} ({target.source})": target.db,
                                f"{reference.device} ({reference.source or 'target'})": reference.db})
        bench.stage("transfer", f"device transfer → {args.target}", curve, step)
        bench.facts[f"{step}:device_transfer"] = {
            "target_source": target.source, "reference_source": reference.source or "target curve",
            "max_gain_db": round(float(curve.max()), 2), "min_gain_db": round(float(curve.min()), 2),
            "at_max_gain_hz": round(float(FR_GRID_HZ[np.argmax(curve)])),
            "at_min_gain_hz": round(float(FR_GRID_HZ[np.argmin(curve)]))}

    @staticmethod
    def _neural(args: p.TransferArgs, bench: Bench, step: int) -> None:
        """DeMT: the device's response relative to its class target conditions the model; a listening
        device, if known, is compensated by a DSP stage (class target − listening device)."""
        from demt.infer import device_response, load_checkpoint

        model = load_checkpoint()
        device_db, name = device_response(args.target)
        store = bench.rt.store
        target, class_target = store.curve(args.target), store.target_for(args.target)
        bench.fr_curves.update({f"{target.device} ({target.source})": target.db,
                                f"{class_target.device} (target)": class_target.db})
        bench.neural_db = device_db
        bench.stage("neural_transfer", f"device transfer → {args.target} (DeMT)", device_db, step)
        if args.reference_kind == "device":
            listening = store.curve(args.reference)
            bench.fr_curves[f"{listening.device} ({listening.source})"] = listening.db
            bench.stage("compensation", f"listening-device compensation ({args.reference})",
                        transfer_curve(FR_GRID_HZ, class_target.db, listening.db, smoothing=args.smoothing_octaves,
                                       max_boost_db=args.max_boost_db), step)
        seen = model.trained_on(name)
        rows = {(r["system"], r["seen"]): r for r in model.metrics.get("main_summary", [])}
        bench.facts[f"{step}:device_transfer"] = {
            "model": model.folder.name, "sample_rate_hz": model.sample_rate, "device": name,
            "class_target": class_target.device, "seen_in_training": seen,
            "test_snr_db": {system: round(rows[(system, seen)]["snr_db"], 2) for system in ("demt", "dsp")
                            if (system, seen) in rows}}

    def describe(self, args: p.TransferArgs) -> str:
        ref = f"your {args.reference}" if args.reference_kind == "device" else f"the {args.reference} target"
        how = "the DeMT neural model" if args.method == "demt" else (
            f"DSP, 1/{round(1 / args.smoothing_octaves)}-octave smoothing, boosts ≤ +{args.max_boost_db:g} dB")
        return f"render {args.target} relative to {ref} ({how})"

    def explain(self, args: p.TransferArgs, view: StepView) -> str:
        target = view.settings.target
        f = view.facts
        if args.method == "demt":
            return self._explain_neural(args, view)
        ref = (f"your {args.reference} ({f['reference_source']} measurement)" if args.reference_kind == "device"
               else f"the {args.reference} target, since I don't know what you listen on")
        line = (f"To sound like {args.target}, I applied its frequency response ({f['target_source']} "
                f"measurement, via AutoEq) relative to {ref}, smoothed to 1/6 octave with boosts capped at "
                f"+{args.max_boost_db:g} dB: {describe_curve(view.stages[0].curve)}; the deepest cut is "
                f"{f['min_gain_db']:+.1f} dB at {f['at_min_gain_hz']} Hz.")
        if target is not None and target.via == "profile":
            line += f" \"{target.query}\" is the {target.name} in your profile."
        if target is not None and target.alternatives:
            line += (f" You said \"{target.query}\"; close alternatives are "
                     f"{', '.join(target.alternatives)} — name one if you meant it.")
        return line

    @staticmethod
    def _explain_neural(args: p.TransferArgs, view: StepView) -> str:
        f = view.facts
        snr = f["test_snr_db"]
        group = "devices it was trained on" if f["seen_in_training"] else "devices it never saw"
        score = (f"; on simulated test tracks of {group} it scores SNR {snr['demt']:.1f} dB against the DSP "
                 f"transfer's {snr['dsp']:.1f} dB" if {"demt", "dsp"} <= set(snr) else "")
        line = (f"To sound like {args.target}, I used the DeMT neural model (checkpoint \"{f['model']}\"{score}), "
                f"conditioned on {f['device']}'s frequency response relative to the {f['class_target']} target: "
                f"{describe_curve(view.stages[0].curve)}.")
        if not f["seen_in_training"]:
            line += " This device was held out of training, so the DSP transfer is likely closer; say \"use DSP\" to switch."
        compensation = [s for s in view.stages if s.kind == "compensation"]
        if compensation:
            line += (f" Your {args.reference} is compensated by a DSP filter ({f['class_target']} target − its "
                     f"measurement): {describe_curve(compensation[0].curve)}.")
        return line


class EqualizeTool:
    name = "equalize"

    def run(self, args: p.EqualizeArgs, bench: Bench, step: int) -> None:
        curve = frequency_response_db(args.filters, FR_GRID_HZ, bench.sample_rate)
        if args.is_word:
            label = f"not {args.descriptor} (EQ)" if args.limit else f"{args.direction} {args.descriptor} (EQ)"
            bench.stage("word_eq", label, curve, step)
        else:
            bench.stage("band_eq", "your EQ: " + ", ".join(f"{e.label} {e.gain_db:+g} dB" for e in args.band_edits),
                        curve, step)
        bench.facts[f"{step}:equalize"] = _eq_facts(curve, len(args.filters))

    def describe(self, args: p.EqualizeArgs) -> str:
        if args.is_word and args.limit:
            return f"EQ keeping it from getting {args.descriptor} ({len(args.filters)} filter(s))"
        if args.is_word:
            source = f", {args.source}" if args.source else ""
            return f"EQ for \"{args.direction} {args.descriptor}\" (amount {args.amount:.2f}{source}, {len(args.filters)} filters)"
        return "EQ " + ", ".join(f"{e.label} {e.gain_db:+g} dB" + (" (capped)" if e.capped else "") for e in args.band_edits)

    def explain(self, args: p.EqualizeArgs, view: StepView) -> str:
        curve = view.stages[0].curve
        if args.is_word and args.limit:
            return (f"So that it doesn't get {args.descriptor}, I took its region back by "
                    f"{args.amount * TARGET_DB:.1f} dB ({describe_curve(curve, 0.5)}).")
        if args.is_word:
            f = view.facts
            kept = f", kept out of {args.kept_out}" if args.kept_out else ""
            return (f"For {_tone_source(view.settings.adjustments, args)} — {f['n_filters']} filter(s){kept}, together "
                    f"{f['min_gain_db']:+.1f} to {f['max_gain_db']:+.1f} dB: {describe_curve(curve)}.")
        line = ("As you asked, I set " + ", ".join(f"{e.label} {e.gain_db:+.1f} dB" for e in args.band_edits)
                + f" ({describe_curve(curve)}).")
        for e in (e for e in args.band_edits if e.capped):
            line += (f" You asked for {e.requested_gain_db:+g} dB on {e.label}; I capped it at {e.gain_db:+g} dB: "
                     "12 dB is the most SENSE boosts or cuts any band, to protect your hearing and your speakers.")
        return line


class FinalizeTool:
    name = "finalize"

    def run(self, args: p.FinalizeArgs, bench: Bench, step: int) -> None:
        whole = [s.curve for s in bench.stages if s.whole_mix]
        bench.applied_db = np.clip(sum(whole, np.zeros_like(FR_GRID_HZ)), MAX_CUT_DB, MAX_GAIN_DB)
        source = bench.signal
        if bench.neural_db is not None:
            from demt.infer import apply_demt

            start = time.perf_counter()
            source = apply_demt(source, bench.sample_rate, bench.neural_db)
            bench.seconds["demt"] = time.perf_counter() - start
        start = time.perf_counter()
        if whole:
            filtered, bench.facts["filter"] = device_transfer(source, bench.sample_rate, FR_GRID_HZ, bench.applied_db)
        else:
            filtered = source.copy()
        bench.seconds["filter"] = time.perf_counter() - start
        start = time.perf_counter()
        bench.output, bench.facts["finalize"] = finalize(filtered, bench.original, bench.sample_rate,
                                                         ceiling_dbtp=args.ceiling_dbtp)
        bench.seconds["finalize"] = time.perf_counter() - start

    def describe(self, args: p.FinalizeArgs) -> str:
        return f"loudness matched to the input (BS.1770), true peak limited to {args.ceiling_dbtp:+.1f} dBTP"

    def explain(self, args: p.FinalizeArgs, view: StepView) -> None:
        return None  # the measured summary says it


TOOLS: dict[str, Tool] = {t.name: t for t in (
    SeparateTool(), StemEqTool(), StemGainTool(), StemSwitchTool("stem_mute", "muted", "mute the {stem}", "I removed the {stem}", " (karaoke).", "."),
    StemSwitchTool("stem_solo", "solo", "keep only the {stem}", "I kept only the {stem}", " (a cappella).",
                   ", muting the others."), RemixTool(), TransferTool(),
    EqualizeTool(), FinalizeTool())}


def describe(call: p.ToolCall) -> str:
    """The one sentence for a plan call (trace, UI, eval report)."""
    return TOOLS[call.tool].describe(call.args)


def describe_plan(plan: list[p.ToolCall]) -> str:
    """The plan in one line: ``render … → EQ for "less harsh" … → loudness matched …``, or ``(no plan)``."""
    return " → ".join(describe(c) for c in plan) if plan else "(no plan)"
