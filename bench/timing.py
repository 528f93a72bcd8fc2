"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def time_alternately(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, float]]:
    """Median and minimum wall seconds of each callable, one call of each per round after one warm-up
    call each, so that drift in a shared machine's load hits every callable alike."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
    return {k: {"median_s": statistics.median(v), "min_s": min(v)} for k, v in wall.items()}
