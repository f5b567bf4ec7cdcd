"""``make bench``: load time, plan latency, retrieval latency, DSP real-time factor, peak memory.

Targets (2-core CPU): plan ≤ 4 s median after load, retrieval ≤ 50 ms, DSP ≥ 100× real time,
classical separation ≥ 20× real time.
Run: ``python -m eval.bench [--model NAME] [--runs N]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table

PLAN_REQUESTS = [
    "make this sound like it's on my AirPods, less harsh",
    "make it warmer",
    "how would this sound on Bose QC35 headphones?",
    "less muddy and a bit brighter",
    "a bit more",
    "make it sound like Galaxy Buds2 Pro with more bass",
    "what's the weather like?",
]
RETRIEVAL_QUERIES = ["my airpods pro 2", "bose qc35", "sony xm4", "galaxy buds 2 pro", "airpod max", "zorblax 3000",
                     "pixel buds pro", "wh1000xm4", "airpdos pro", "quiet comfort 35", "AirPods Max", "buds2pro"]
DESCRIPTOR_QUERIES = ["harsh", "warmer", "muddiness", "sparkly", "bass", "treble", "crunchy", "velvety", "thin", "boxy"]


def _median_ms(fn, items) -> float:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="planner model name or .gguf path")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of the DSP measurement")
    args = parser.parse_args()

    from agent.executor import execute
    from agent.planner import build_plan, merge_settings, adjustment_settings
    from agent.runtime import Runtime
    from agent.schemas import Adjustment, Intent
    from agent.understand import understand
    from knowledge.config import data_dir
    from tools.audio_io import load_audio

    console = Console(width=120)
    rows: list[tuple[str, str, str]] = []
    start = time.perf_counter()
    rt = Runtime.load(model=args.model)
    rows.append(("startup: knowledge (FR store, device index, prior, prefs)",
                 f"{rt.load_seconds['devices'] + rt.load_seconds['prior_and_prefs']:.2f} s", ""))
    rows.append((f"model load ({rt.llm.name})", f"{rt.load_seconds['llm']:.2f} s", ""))
    first = understand("warm it up", rt.llm).seconds  # the first call fills the prompt cache
    rows.append(("first request after load (prompt prefix evaluated)", f"{first:.2f} s", ""))
    plan_s = []
    for request in PLAN_REQUESTS:
        plan_s.append(understand(request, rt.llm).seconds)
    plan_median = statistics.median(plan_s)
    rows.append((f"plan latency, median of {len(plan_s)} (understand, LLM)", f"{plan_median:.2f} s",
                 "≤ 4 s " + ("✓" if plan_median <= 4 else "✗")))
    retrieval_ms = _median_ms(lambda q: rt.devices.resolve(q), RETRIEVAL_QUERIES)
    rows.append((f"device retrieval, median of {len(RETRIEVAL_QUERIES)} new phrasings", f"{retrieval_ms:.1f} ms",
                 "≤ 50 ms " + ("✓" if retrieval_ms <= 50 else "✗")))
    prior_ms = _median_ms(lambda w: rt.prior.lookup(w), DESCRIPTOR_QUERIES)
    rows.append((f"descriptor retrieval, median of {len(DESCRIPTOR_QUERIES)} new words", f"{prior_ms:.1f} ms",
                 "≤ 50 ms " + ("✓" if prior_ms <= 50 else "✗")))

    track = load_audio(data_dir() / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg")
    n = 180 * track.sample_rate
    samples = np.tile(track.samples, (1, int(np.ceil(n / track.n_samples))))[:, :n]
    intent = Intent(action="process", target_device="AirPods",
                    adjustments=[Adjustment(descriptor="harsh", direction="less")])
    target = {"name": rt.devices.resolve("AirPods").device}
    settings = merge_settings(None, intent, target, None, adjustment_settings(rt, "bench", "less harsh", intent.adjustments))
    plan = build_plan(rt, settings)
    dsp_s = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        execute(rt, plan, samples, track.sample_rate)
        dsp_s.append(time.perf_counter() - t0)
    rtf = 180.0 / statistics.median(dsp_s)
    rows.append(("DSP on a 3-minute 44.1 kHz stereo track (transfer + 40-band EQ + loudness + limiter)",
                 f"{statistics.median(dsp_s):.2f} s = {rtf:.0f}× real time", "≥ 100× " + ("✓" if rtf >= 100 else "✗")))
    from tools.separate import separate

    sep_s = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        separate(samples, track.sample_rate, "classical")
        sep_s.append(time.perf_counter() - t0)
    sep_rtf = 180.0 / statistics.median(sep_s)
    rows.append(("separation, classical backend, same 3-minute track (4 stems)",
                 f"{statistics.median(sep_s):.2f} s = {sep_rtf:.0f}× real time", "≥ 20× " + ("✓" if sep_rtf >= 20 else "✗")))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak memory (RSS)", f"{peak_mb:.0f} MB", ""))
    rows.append(("total bench time", f"{time.perf_counter() - start:.1f} s", ""))

    table = Table("measure", "value", "target", title="SENSE benchmark (this machine)")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
