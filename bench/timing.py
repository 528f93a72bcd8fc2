"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import os
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


ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def roomy_onednn_cache(capacity: int = 8192) -> str:
    """Give oneDNN's primitive cache room for every side of an alternating bench (call before the first
    convolution: oneDNN reads the variable when it creates its cache). With the default 1024 entries, the
    official trainer's, our float32 and our bf16 convolutions (each shape forward, backward-data,
    backward-weights) evict one another, and each side re-JITs its kernels every step: measured 1.3 s
    of a 3.8 s bf16 SoVITS step; `bench/vc_live_rtf.py`'s bf16 250 ms block took 231 ms instead of 128 after
    its 125 ms variants. A real run has one configuration and gains nothing from more room (the `tts`
    preset measured the same with 8192). Returns the setting."""
    os.environ.setdefault(ONEDNN_CACHE, str(capacity))
    return os.environ[ONEDNN_CACHE]


KEEP_HEAP_HELP = (
    "apply `anchorvoice train`'s heap policy (engine/cli/heap.py: freed memory stays in the heap) to this "
    "process and its memory children; every side then runs with it"
)


def heap_policy(keep: bool) -> str:
    """Apply `anchorvoice train`'s heap policy when ``keep`` (the training benches' ``--keep-heap``); the line
    that says which memory policy the figures ran under."""
    from anchorvoice.engine.cli.heap import keep_heap

    return keep_heap() if keep else "memory: allocator defaults"
