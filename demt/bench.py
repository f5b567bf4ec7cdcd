"""Real-time factor of the shipped DeMT checkpoint on CPU: 30 s of stereo 44.1 kHz audio.

``python -m demt.bench`` prints a small table and exits non-zero below 10x real time.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch


def measure_rtf(seconds: float = 30.0, sample_rate: int = 44100, threads: int | None = None, repeats: int = 2,
                model=None) -> dict:
    """Run :func:`demt.infer.apply_demt` on ``seconds`` of stereo noise-like music stand-in.

    Returns: {"audio_s", "wall_s" (best of ``repeats``), "rtf_x" (audio_s / wall_s), "threads"}.
    """
    from demt.infer import apply_demt, load_checkpoint
    from knowledge.fr_store import FR_GRID_HZ

    if threads:
        torch.set_num_threads(threads)
    loaded = model or load_checkpoint()
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, int(seconds * sample_rate)))).astype(np.float32)
    curve = 3.0 * np.sin(np.log2(FR_GRID_HZ / 20.0))
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        apply_demt(x, sample_rate, curve, loaded)
        walls.append(time.perf_counter() - t)
    wall = min(walls)
    return {"audio_s": seconds, "wall_s": wall, "rtf_x": seconds / wall, "threads": torch.get_num_threads()}


def main() -> int:
    r = measure_rtf()
    print("| audio | channels | rate | CPU threads | wall (s) | speed |")
    print("|---|---|---|---|---|---|")
    print(f"| {r['audio_s']:.0f} s | 2 | 44.1 kHz | {r['threads']} | {r['wall_s']:.2f} | {r['rtf_x']:.1f}x real time |")
    if r["rtf_x"] < 10:
        print(f"FAIL: {r['rtf_x']:.1f}x < 10x real time", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
