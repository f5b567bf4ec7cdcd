"""Run independent array jobs on all CPU cores (threads: numpy and scipy release the GIL)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS = max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def map_threads(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[function(item) for item in items]``, run on up to WORKERS threads, results in order.

    For jobs that spend their time in numpy/scipy calls that release the GIL (sosfilt, FFTs,
    upfirdn, large ufuncs); one item, or one core, runs inline. Exceptions propagate.
    """
    items = list(items)
    if len(items) < 2 or WORKERS == 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(function, items))
