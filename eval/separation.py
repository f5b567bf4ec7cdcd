"""Separation report: SDR per stem on the MUSDB sample and on Slakh stems rendered from MIDI, the
per-stem path's oracle test, speed and memory; writes docs/SEPARATION.md and a bar chart.

``python -m eval.separation [--output docs/SEPARATION.md]``. SDR is museval's BSS Eval v4 (the
MUSDB18 / SiSEC 2018 metric: median over 1-s frames), computed for each backend that can run here.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf
import torch
import yaml

from knowledge.config import data_dir
from tools import separate as sep
from tools.levels import level_change_db, power_db
from tools.separate import STEMS, Separation, separate

SLAKH_TRACK = "stems/slakh_sample/Track00001"
SLAKH_SECONDS, SLAKH_OFFSET_S = 30.0, 20.0
#: Published MUSDB18-HQ test-set averages (SDR, dB; BSS Eval v4 median of medians).
PUBLISHED = [
    ("HTDemucs (htdemucs, 800 extra songs)", "9.0", "Rouard et al., ICASSP 2023; demucs README"),
    ("HTDemucs, sparse attention + per-source fine-tuning", "9.2", "Rouard et al., ICASSP 2023"),
    ("BS-RoFormer, MUSDB18-HQ only / with extra data", "9.8 / 12.0", "Lu et al., arXiv 2309.02612 (SDX'23 winner)"),
    ("SCNet (at 48 % of HTDemucs' CPU time)", "9.0", "Tong et al., ICASSP 2024"),
]


def museval_sdr(references: dict[str, np.ndarray], estimates: dict[str, np.ndarray], rate: int) -> dict[str, float]:
    """museval BSS Eval v4 SDR per stem: the median over 1-s frames (NaN frames, e.g. silent, skipped).

    Args:
        references, estimates: stem → float array, shape (channels, samples).
    Returns:
        stem → dB.
    """
    import museval

    names = list(references)
    refs = np.stack([references[k].T for k in names])
    ests = np.stack([estimates[k].T for k in names])
    sdr, _isr, _sir, _sar = museval.evaluate(refs, ests, win=rate, hop=rate)
    return {k: float(np.nanmedian(v)) for k, v in zip(names, sdr)}


def musdb_sample() -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """The MUSDB sample's stems and their exact sum (mix_sum.wav), float32 (channels, samples)."""
    folder = data_dir() / "stems/musdb_sample"
    stems = {k: sf.read(folder / f"{k}.wav", dtype="float32")[0].T for k in STEMS}
    mix, rate = sf.read(folder / "mix_sum.wav", dtype="float32")
    return stems, mix.T, rate


def slakh_stems(rate: int = 44100) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Slakh Track00001's MIDI rendered with FluidSynth, grouped as drums / bass / other (no vocals).

    Returns: (stems, mix, facts): stems drums/bass/other, float32 (2, samples); mix their sum.
    """
    from tools.synth import render_midi

    track = data_dir() / SLAKH_TRACK
    meta = yaml.safe_load((track / "metadata.yaml").read_text())
    groups: dict[str, list[str]] = {"drums": [], "bass": [], "other": []}
    stems = {k: None for k in groups}
    for name, info in meta["stems"].items():
        midi = track / "MIDI" / f"{name}.mid"
        if not midi.is_file():
            continue
        group = "drums" if info["is_drum"] else "bass" if info["inst_class"] == "Bass" else "other"
        audio = render_midi(midi, rate, seconds=SLAKH_SECONDS, offset_seconds=SLAKH_OFFSET_S)
        stems[group] = audio if stems[group] is None else stems[group] + audio
        groups[group].append(f"{name} {info['midi_program_name']}")
    mix = sum(stems.values())
    peak = float(np.abs(mix).max())
    if peak > 0.9:
        stems = {k: v * np.float32(0.9 / peak) for k, v in stems.items()}
        mix = sum(stems.values())
    return stems, mix, {"groups": groups}


def band_power(x: np.ndarray, rate: int, lo: float = 2000.0, hi: float = 5000.0) -> float:
    """Power of ``x`` (float, (channels, samples) or (samples,)) in [lo, hi) Hz: summed Welch PSD bins,
    channels summed; linear (square of full-scale units). Source: scipy.signal.welch, 4096-point segments."""
    freqs, psd = scipy.signal.welch(x.astype(np.float64), rate, nperseg=4096, axis=-1)
    return float(np.sum(psd[..., (freqs >= lo) & (freqs < hi)]))


def _vocal_estimate_by_true_stem(stems: dict[str, np.ndarray], mix: np.ndarray, rate: int) -> dict[str, np.ndarray]:
    """How much of each true stem the classical backend puts in its vocal estimate.

    The masks come from the mix (as in :func:`tools.separate.classical_masks`); applied to each
    true stem's STFT they split the vocal estimate by origin (the STFT is linear, the masks fixed).
    One chunk only (the MUSDB sample is shorter than a chunk).
    """
    window = torch.hann_window(sep.N_FFT)

    def stft(x):
        return torch.stft(torch.from_numpy(np.pad(x, ((0, 0), (0, sep.N_FFT)))), sep.N_FFT, sep.HOP,
                          window=window, return_complex=True)

    mask = torch.from_numpy(sep.classical_masks(stft(mix), rate)["vocals"])
    out = {}
    for k, s in stems.items():
        y = torch.istft(stft(s) * mask, sep.N_FFT, sep.HOP, window=window, length=s.shape[1] + sep.N_FFT)
        out[k] = y[:, : s.shape[1]].numpy()
    return out


def vocals_less_harsh(stems: dict[str, np.ndarray], mix: np.ndarray, rate: int) -> dict:
    """"make the vocals less harsh" through the agent's per-stem path, oracle and classical.

    Returns, per separation: the 2–5 kHz change level of each true stem in the output (dB, energy
    of (stem as output − stem as input) in 2–5 kHz), and vocals − loudest other, dB.
    """
    from agent import dialogue, planner, rules
    from agent.executor import execute
    from agent.runtime import Runtime

    rt = Runtime.load(use_llm=False, prefs_path=Path(os.environ.get("TMPDIR", "/tmp")) / f"sense-sep-{os.getpid()}.sqlite")
    scale = np.float32(10 ** (-3 / 20) / np.abs(mix).max())  # -3 dBFS peak: the limiter stays out of it
    stems = {k: v * scale for k, v in stems.items()}
    mix = mix * scale
    request = "make the vocals less harsh"
    decision = dialogue.read_turn(rt, dialogue.Conversation(), rules.parse(request), dialogue.TurnInput(request, "report"))
    plan = planner.build_plan(rt, decision.conversation.settings)
    results = {}
    level = lambda x: power_db(band_power(x, rate))  # noqa: E731

    oracle = execute(rt, plan, mix, rate, separation=Separation(stems, "oracle", "the true stems"))
    gain = np.float32(10 ** (oracle.facts["finalize"]["gain_db"] / 20))
    results["oracle (true stems)"] = {k: level(oracle.stems[k] * gain - stems[k]) for k in STEMS}

    real = execute(rt, plan, mix, rate, separation=separate(mix, rate, "classical"))
    gain = np.float32(10 ** (real.facts["finalize"]["gain_db"] / 20))
    curve = next(s.curve for s in real.stages if s.kind == "stem_eq" and s.stem == "vocals")
    from knowledge.fr_store import FR_GRID_HZ
    from tools.transfer import device_transfer

    shares = _vocal_estimate_by_true_stem(stems, mix, rate)
    changes = {}
    for k in STEMS:
        filtered, _ = device_transfer(shares[k], rate, FR_GRID_HZ, curve)
        changes[k] = level(gain * (stems[k] + filtered - shares[k]) - stems[k])
    results["classical backend"] = changes
    return {name: {**ch, "margin_db": ch["vocals"] - max(ch[k] for k in STEMS if k != "vocals")}
            for name, ch in results.items()}


def speed_and_memory(seconds: float = 600.0) -> dict:
    """Classical backend on a long stereo track made by repeating Vibe Ace: real-time factor and peak RSS."""
    audio, rate = sf.read(data_dir() / "music/Kevin_MacLeod_-_Vibe_Ace.hq.ogg", dtype="float32")
    reps = int(np.ceil(seconds * rate / audio.shape[0]))
    long = np.ascontiguousarray(np.tile(audio.T, (1, reps))[:, : int(seconds * rate)])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = separate(long, rate, "classical", progress=True)
    took = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    null = sum(out.stems.values()) - long
    return {"seconds": seconds, "wall_s": took, "realtime_x": seconds / took,
            "peak_rss_mb": rss_after, "rss_growth_mb": rss_after - rss_before,
            "output_mb": 4 * long.nbytes / 2 ** 20,
            "null_db": level_change_db(long, null)}


def _plot(path: Path, tables: dict[str, dict[str, dict[str, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.6), sharey=True)
    for ax, (title, rows) in zip(np.atleast_1d(axes), tables.items()):
        stems = [s for s in STEMS if any(s in r for r in rows.values())]
        width = 0.8 / len(rows)
        for i, (name, row) in enumerate(rows.items()):
            ax.bar(np.arange(len(stems)) + i * width, [row.get(s, np.nan) for s in stems], width, label=name)
        ax.set_xticks(np.arange(len(stems)) + width * (len(rows) - 1) / 2, stems)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(title)
        ax.set_ylabel("SDR, dB (museval v4)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def report(output: Path, long_seconds: float = 600.0) -> str:
    """Measure everything and write the Markdown report (atomically, replacing the previous one)."""
    lines: list[str] = []
    stems, mix, rate = musdb_sample()
    classical = separate(mix, rate, "classical")
    musdb = {"classical": museval_sdr(stems, classical.stems, rate),
             "mixture as every stem (baseline)": museval_sdr(stems, {k: mix for k in STEMS}, rate)}
    null_musdb = level_change_db(mix, sum(classical.stems.values()) - mix)
    s_stems, s_mix, s_facts = slakh_stems(rate)
    s_out = separate(s_mix, rate, "classical")
    slakh = {"classical": museval_sdr(s_stems, {k: s_out.stems[k] for k in s_stems}, rate),
             "mixture as every stem (baseline)": museval_sdr(s_stems, {k: s_mix for k in s_stems}, rate)}
    leaked_vocals = level_change_db(s_mix, s_out.stems["vocals"])
    harsh = vocals_less_harsh(stems, mix, rate)
    speed = speed_and_memory(long_seconds)
    method, why = sep.choose_method("auto")

    def sdr_table(rows: dict[str, dict[str, float]], stems_shown) -> list[str]:
        out = ["| backend | " + " | ".join(stems_shown) + " | mean |", "|---|" + "---|" * (len(stems_shown) + 1)]
        for name, row in rows.items():
            vals = [row[s] for s in stems_shown]
            out.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {np.mean(vals):.2f} |")
        out.append("| demucs (HTDemucs) | " + " | ".join("not run" for _ in stems_shown)
                   + " | no weights here |")
        return out

    lines += [
        "# Source separation: SDR per stem, per-stem processing, speed",
        "",
        f"Produced by `python -m eval.separation` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}. "
        f"Backend chosen by `auto` here: **{method}** ({why}).",
        "",
        "`tools/separate.py` has two backends behind one call, `separate(audio, sample_rate) → stems`:",
        "",
        "- **demucs** — HTDemucs through the `demucs` package, when its weights are on the machine "
        "(`SENSE_DEMUCS_MODEL`, `--demucs-model`, or demucs's own torch-hub cache). SENSE never downloads them; "
        "without them, asking for `--method demucs` says where to get the file and where to put it. The loading "
        "and separation path is tested with a small randomly initialised HTDemucs that the test builds "
        "(`tests/tools/test_separate.py`), so its numbers here would be meaningless: no SDR is reported for it.",
        "- **classical** — the offline default: median-filter harmonic/percussive separation (Fitzgerald 2010) "
        "→ drums; harmonic part below ~120–250 Hz → bass; centre-panned harmonic part of 150 Hz–8 kHz "
        "(inter-channel coherence, Avendano & Jot 2004) → vocals; the rest → other.",
        "",
        "Both run in 30 s chunks with 1 s linear crossfades, and `other` takes the residual, so the stems always "
        f"sum to the mixture: **{null_musdb:.0f} dB** residual on the MUSDB sample, {speed['null_db']:.0f} dB on a "
        f"{speed['seconds'] / 60:.0f}-minute track (the test asserts ≤ −60 dB).",
        "",
        "## SDR per stem (museval BSS Eval v4, median over 1-s frames, dB)",
        "",
        "### MUSDB18 sample: \"The Easton Ellises – Falcon 69\", 6 s, `mix_sum.wav` as the mixture",
        "",
        *sdr_table(musdb, list(STEMS)),
        "",
        f"### Slakh2100 Track00001, {SLAKH_SECONDS:g} s from {SLAKH_OFFSET_S:g} s, rendered from its MIDI with FluidSynth "
        "(FluidR3 GM soundfont)",
        "",
        "Stems grouped as Slakh's classes: drums = " + ", ".join(s_facts["groups"]["drums"]) + "; bass = "
        + ", ".join(s_facts["groups"]["bass"]) + "; other = " + ", ".join(s_facts["groups"]["other"])
        + ". The track has no vocals: the classical backend still put "
        f"{leaked_vocals:.1f} dB (re the mix) into its vocal stem, centre-panned instruments it cannot tell from a voice.",
        "",
        *sdr_table(slakh, list(s_stems)),
        "",
        "![SDR per stem](separation-sdr.png)",
        "",
        "**Reading these numbers.** The baseline is SiSEC's \"MIX\": the unprocessed mixture given as every stem. "
        "The classical backend beats it on every stem, by 1–12 dB, but it stays far below trained networks: it is "
        "good enough to move a stem by a few dB, not to isolate one (see the per-stem test below and the limits at "
        "the end).",
        "",
        "### Published figures (MUSDB18-HQ test set, 50 tracks; average SDR over the four stems, dB)",
        "",
        "| system | SDR | source |",
        "|---|---|---|",
        *[f"| {name} | {value} | {src} |" for name, value, src in PUBLISHED],
        "",
        "These come from 50 full tracks, ours from one 6 s excerpt and one rendered MIDI song: the tables show what "
        "each backend does here, not a benchmark ranking. A user with HTDemucs weights gets the demucs backend "
        "automatically (see the trace's `separate` step).",
        "",
        "## \"make the vocals less harsh\": does the change stay in the vocals?",
        "",
        "The agent's per-stem path (separate → EQ on the vocal stem → remix → loudness match and −1 dBTP limiter) on "
        "the MUSDB sample, scaled to −3 dBFS peak. For each true stem, the level of its change in 2–5 kHz: energy "
        "of (that stem as it is in the output − that stem as it was), dB re full scale. With the true stems as the "
        "separation (oracle), only the vocal stem is filtered; the other stems change only by the loudness-matching "
        "gain. With the classical backend, the vocal estimate also holds parts of the other stems, and those parts "
        "get the vocal EQ (attributed by applying the backend's masks, computed on the mix, to each true stem).",
        "",
        "| separation | vocals | drums | bass | other | vocals − loudest other |",
        "|---|---|---|---|---|---|",
        *[f"| {name} | " + " | ".join(f"{r[k]:.1f}" for k in STEMS) + f" | **{r['margin_db']:.1f} dB** |"
          for name, r in harsh.items()],
        "",
        "Acceptance asks the non-vocal change to be at least 6 dB below the vocal change with the oracle "
        "(`tests/agent/test_stems.py` asserts it).",
        "",
        "## Speed and memory (classical backend)",
        "",
        f"- {speed['seconds'] / 60:.0f}-minute stereo 44.1 kHz track: {speed['wall_s']:.1f} s, "
        f"**{speed['realtime_x']:.0f}× real time** (target ≥ 20×; `make bench` measures a 3-minute track).",
        f"- Peak RSS of the whole report process {speed['peak_rss_mb']:.0f} MB; the four output stems alone are "
        f"{speed['output_mb']:.0f} MB. Working memory beyond the output is one 30 s chunk's STFTs, so it does not grow "
        "with the track's length.",
        "",
        "## Limits of the classical backend",
        "",
        "- Centre-panned instruments (a piano, a lead guitar, a synth lead) land in vocals; a mono mix has no side "
        "information, so all harmonic midrange goes to vocals.",
        "- Kick drum energy below ~120 Hz is split between drums (percussive) and bass (harmonic).",
        "- Sustained cymbals and reverb tails count as harmonic; vocal sibilants count as percussive.",
        "- \"Karaoke\" leaves some voice in `other` and takes some centre instruments with it.",
        "",
    ]
    text = "\n".join(lines)
    output.parent.mkdir(parents=True, exist_ok=True)
    _plot(output.with_name("separation-sdr.png"), {"MUSDB sample": musdb, "Slakh (MIDI render)": slakh})
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("docs/SEPARATION.md"))
    parser.add_argument("--long-seconds", type=float, default=600.0, help="length of the speed/memory test track")
    args = parser.parse_args(argv)
    print(report(args.output, args.long_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
