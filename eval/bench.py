"""``make bench``: load time, understanding latency over the eval suite's turns (fast path and LLM),
retrieval latency, DSP real-time factor, separation real-time factor, peak memory.

Targets (2-core CPU): understanding p50 ≤ 1.0 s and p95 ≤ 4 s after load over every turn of the
suite (played as conversations, so follow-ups and answers to questions are read in context), a
one-tool question answered in p50 ≤ 3 s (the whole turn, on a 15 s clip), retrieval ≤ 50 ms, DSP ≥
100× real time, classical separation ≥ 20× real time.
Run: ``python -m eval.bench [--model NAME] [--runs N]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

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


def understanding_latency(engine) -> dict:
    """Play every conversation of the eval suite through ``engine`` without audio (nothing is processed,
    so only understanding and the dialogue run) and time the understand step of each turn.

    Returns:
        ``{"seconds": [...], "paths": {path: count}}`` over all turns.
    """
    from eval.suite import load_conversations

    seconds, paths = [], {}
    for conv in load_conversations():
        thread = f"bench-{conv.id}"
        for turn in conv.turns:
            out = engine.turn(thread, turn.say, None, user=f"bench-{conv.id}", listening_device=conv.listening_device)
            seconds.append(out.timings_s.get("understand", 0.0))
            path = out.understood.path if out.understood else "none"
            paths[path] = paths.get(path, 0) + 1
    return {"seconds": seconds, "paths": paths}


def question_latency(engine, clip: str) -> list[float]:
    """Play the ``questions`` category of the eval suite through ``engine`` on ``clip`` and time every turn
    answered with one tool call (wall time of the whole turn: understanding, tool choice, the tool, the
    plot and trace files).

    Returns:
        seconds per one-tool answer.
    """
    import tempfile
    from pathlib import Path

    from eval.suite import load_conversations

    seconds, out_dir = [], Path(tempfile.mkdtemp(prefix="sense-bench-q-"))
    for conv in (c for c in load_conversations() if c.category == "questions"):
        thread, user = f"bench-q-{conv.id}", f"bench-q-{conv.id}"
        for device in (conv.profile.owns if conv.profile else []):
            engine.rt.prefs.own_device(user, device)
        for i, turn in enumerate(conv.turns):
            start = time.perf_counter()
            out = engine.turn(thread, turn.say, clip, user=user, output_path=str(out_dir / f"{conv.id}-{i}.wav"))
            if out.status == "answer" and len(out.asked) == 1:
                seconds.append(time.perf_counter() - start)
    return seconds


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _understanding_rows(rt) -> list[tuple[str, str, str]]:
    from agent.engine import Engine
    from agent.understand import understand

    rows = [(f"model load ({rt.llm.name})", f"{rt.load_seconds['llm']:.2f} s", "")]
    first = understand("warm it up", rt.llm).seconds  # the first call fills the prompt cache
    rows.append(("first request after load (prompt prefix evaluated)", f"{first:.2f} s", ""))
    lat = understanding_latency(Engine(rt))
    p50, p95 = _pct(lat["seconds"], 50), _pct(lat["seconds"], 95)
    paths = ", ".join(f"{k} {v}" for k, v in sorted(lat["paths"].items(), key=lambda kv: -kv[1]))
    rows.append((f"understanding, p50 over the suite's {len(lat['seconds'])} turns ({paths})", f"{p50:.2f} s",
                 "≤ 1.0 s " + ("✓" if p50 <= 1.0 else "✗")))
    rows.append(("understanding, p95 over the same turns", f"{p95:.2f} s", "≤ 4 s " + ("✓" if p95 <= 4.0 else "✗")))
    return rows


def _question_rows(rt, clip: str) -> list[tuple[str, str, str]]:
    from agent.engine import Engine

    q = question_latency(Engine(rt), clip)
    p50, p95 = _pct(q, 50), _pct(q, 95)
    return [(f"one-tool question answered (whole turn), p50 over the questions category's {len(q)} such turns",
             f"{p50:.2f} s", "≤ 3 s " + ("✓" if p50 <= 3.0 else "✗")),
            ("one-tool question answered, p95 over the same turns", f"{p95:.2f} s", "")]


def _dsp_rows(rt, samples, sample_rate: int, runs: int) -> list[tuple[str, str, str]]:
    from agent import dialogue, planner, rules
    from agent.executor import execute
    from tools.separate import separate

    request = "make this sound like it's on my AirPods, less harsh"
    decision = dialogue.read_turn(rt, dialogue.Conversation(), rules.parse(request), dialogue.TurnInput(request, "bench"))
    plan = planner.build_plan(rt, decision.conversation.settings)
    seconds = len(samples[0]) / sample_rate
    dsp_s, sep_s = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        execute(rt, plan, samples, sample_rate)
        dsp_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        separate(samples, sample_rate, "classical")
        sep_s.append(time.perf_counter() - t0)
    rtf, sep_rtf = seconds / statistics.median(dsp_s), seconds / statistics.median(sep_s)
    return [("DSP on a 3-minute 44.1 kHz stereo track (transfer + 40-band EQ + loudness + limiter)",
             f"{statistics.median(dsp_s):.2f} s = {rtf:.0f}× real time", "≥ 100× " + ("✓" if rtf >= 100 else "✗")),
            ("separation, classical backend, same 3-minute track (4 stems)",
             f"{statistics.median(sep_s):.2f} s = {sep_rtf:.0f}× real time", "≥ 20× " + ("✓" if sep_rtf >= 20 else "✗")),
            *_hybrid_rows(samples, sample_rate, seconds)]


def _hybrid_in_child(samples, sample_rate: int) -> tuple[float, float]:
    """In a fresh process: (seconds the Spleeter hybrid took on ``samples``, that process's peak RSS, MB)."""
    import torch

    from tools.separate import separate

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    separate(samples, sample_rate, "spleeter")
    return time.perf_counter() - t0, _own_peak_rss_mb()


def _own_peak_rss_mb() -> float:
    """This process's own peak RSS, MB: Linux's VmHWM (reset by exec), since ru_maxrss keeps the value the
    forking parent had (a spawned child would report the planner's 4 GB); ru_maxrss elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hybrid_rows(samples, sample_rate: int, seconds: float) -> list[tuple[str, str, str]]:
    """The Spleeter hybrid once on the same track, in its own process so that its peak RSS is its own
    (this process's peak is the planner's)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tools.separate import spleeter_weights

    if spleeter_weights() is None:
        return [("separation, Spleeter hybrid", "not run: no converted weights (run `make setup`)", "≥ 3×")]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        took, peak_mb = pool.submit(_hybrid_in_child, samples, sample_rate).result()
    rtf = seconds / took
    return [("separation, Spleeter hybrid (Spleeter vocals + classical drums/bass), same track",
             f"{took:.2f} s = {rtf:.1f}× real time", "≥ 3× " + ("✓" if rtf >= 3 else "✗")),
            ("  peak RSS of a process running only the hybrid on it (30 s chunks; input and stems included)",
             f"{peak_mb:.0f} MB", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="planner model name or .gguf path")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of the DSP measurement")
    args = parser.parse_args()

    import tempfile
    from pathlib import Path

    from agent.runtime import Runtime
    from knowledge.config import data_dir
    from tools.audio_io import load_audio, write_audio

    console = Console(width=120)
    start = time.perf_counter()
    rt = Runtime.load(model=args.model, prefs_path=Path(tempfile.mkdtemp(prefix="sense-bench-")) / "prefs.sqlite")
    rows = [("startup: knowledge (FR store, device index, prior, prefs)",
             f"{rt.load_seconds['devices'] + rt.load_seconds['prior_and_prefs']:.2f} s", "")]
    rows += _understanding_rows(rt)
    retrieval_ms = _median_ms(lambda q: rt.devices.resolve(q), RETRIEVAL_QUERIES)
    rows.append((f"device retrieval, median of {len(RETRIEVAL_QUERIES)} new phrasings", f"{retrieval_ms:.1f} ms",
                 "≤ 50 ms " + ("✓" if retrieval_ms <= 50 else "✗")))
    prior_ms = _median_ms(lambda w: rt.prior.lookup(w), DESCRIPTOR_QUERIES)
    rows.append((f"descriptor retrieval, median of {len(DESCRIPTOR_QUERIES)} new words", f"{prior_ms:.1f} ms",
                 "≤ 50 ms " + ("✓" if prior_ms <= 50 else "✗")))
    track = load_audio(data_dir() / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg")
    n = 180 * track.sample_rate
    samples = np.tile(track.samples, (1, int(np.ceil(n / track.n_samples))))[:, :n]
    with tempfile.TemporaryDirectory(prefix="sense-bench-clip-") as tmp:
        clip = Path(tmp) / "vibe_ace_15s.wav"
        write_audio(clip, track.samples[:, 10 * track.sample_rate: 25 * track.sample_rate], track.sample_rate)
        rows += _question_rows(rt, str(clip))
    rows += _dsp_rows(rt, samples, track.sample_rate, args.runs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak memory (RSS)", f"{peak_mb:.0f} MB", ""))
    rows.append(("total bench time", f"{time.perf_counter() - start:.1f} s", ""))

    table = Table("measure", "value", "target", title="SENSE benchmark (this machine)")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
