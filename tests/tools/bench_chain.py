"""Speed of the processing chain on a 3-minute 44.1 kHz stereo track (not a test: run it).

    .venv/bin/python -m tests.tools.bench_chain

Builds 180 s from Vibe Ace (repeated), then times device transfer (AirPods Pro -> Harman in-ear
FIR) + a 3-band EQ + finalize (loudness match, true-peak limit), best of 3 wall-clock runs, and
prints the real-time factor per stage and in total, and the CPU time summed over threads.
"""

from __future__ import annotations

import time

import numpy as np

from knowledge.config import data_dir
from tools.audio_io import load_audio
from tools.eq import Filter, apply_eq
from tools.loudness import finalize
from tools.transfer import device_transfer, transfer_curve

SECONDS = 180.0


def _curve() -> tuple[np.ndarray, np.ndarray]:
    root = data_dir() / "fr" / "autoeq"
    grid = np.geomspace(20, 20000, 481)

    def read(rel: str) -> np.ndarray:
        table = np.loadtxt(root / rel, delimiter=",", skiprows=1)
        return np.interp(np.log(grid), np.log(table[:, 0]), table[:, 1])

    device = read("measurements/rtings/in-ear/Apple AirPods Pro.csv")
    target = read("targets/Harman in-ear 2019v2.csv")
    return grid, transfer_curve(grid, target, device)


def main() -> None:
    audio = load_audio(data_dir() / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg")
    rate = audio.sample_rate
    n = int(SECONDS * rate)
    x = np.tile(audio.samples, int(np.ceil(n / audio.n_samples)))[:, :n].copy()
    grid, curve = _curve()
    filters = [
        Filter(type="low_shelf", frequency_hz=100, gain_db=4.0),
        Filter(type="peaking", frequency_hz=3500, gain_db=-3.0, q=1.2),
        Filter(type="high_shelf", frequency_hz=10000, gain_db=2.0),
    ]
    best: dict[str, float] = {}
    cpu = np.inf
    for _ in range(3):
        c0 = time.process_time()
        t0 = time.perf_counter()
        y, _ = device_transfer(x, rate, grid, curve)
        t1 = time.perf_counter()
        y = apply_eq(y, rate, filters)
        t2 = time.perf_counter()
        y, facts = finalize(y, x, rate)
        t3 = time.perf_counter()
        cpu = min(cpu, time.process_time() - c0)
        for name, seconds in (("transfer", t1 - t0), ("eq", t2 - t1), ("finalize", t3 - t2), ("total", t3 - t0)):
            best[name] = min(best.get(name, np.inf), seconds)
    for name, seconds in best.items():
        print(f"{name:9s} {seconds:6.3f} s  {SECONDS / seconds:7.1f}x real time")
    print(f"CPU time of the whole chain (all threads): {cpu:.3f} s")
    print({k: round(v, 3) for k, v in facts.items()})


if __name__ == "__main__":
    main()
