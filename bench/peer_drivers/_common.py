"""What every peer driver shares: the job file, 2-core pinning, the timing loop, the JSON line.

A driver is run as ``<venv python> bench/peer_drivers/run_<peer>.py JOB.json`` and prints one line
``PEER_RESULT {json}`` with first_chunk_s (time to the first chunk the engine yields), first_audio_s
(to the first non-empty one), wall_s (lists over the timed runs), audio_s, tokens, version.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def job() -> dict[str, Any]:
    """The job file given on the command line, after pinning this process to ``threads`` CPUs.

    Pinning (before any runtime starts its thread pool) holds engines without a thread setting in
    their public API (genie-tts's ONNX Runtime sessions) to the same cores as the others.
    """
    with open(sys.argv[1], encoding="utf-8") as f:
        spec: dict[str, Any] = json.load(f)
    cpus = sorted(os.sched_getaffinity(0))[: spec["threads"]]
    os.sched_setaffinity(0, cpus)
    return spec


def timed(spec: dict[str, Any], speak: Callable[[], Iterator[np.ndarray]], sample_rate: int) -> dict[str, Any]:
    """One warm-up, then ``repeats`` runs of ``speak`` (an iterator of audio chunks)."""
    for _ in speak():
        pass
    chunks, firsts, walls, audio_s = [], [], [], 0.0
    for _ in range(spec["repeats"]):
        t0, chunk_t, first, n = time.perf_counter(), float("nan"), float("nan"), 0
        for chunk in speak():
            if chunk_t != chunk_t:  # nan: this is the first chunk
                chunk_t = time.perf_counter() - t0
            if n == 0 and len(chunk):
                first = time.perf_counter() - t0
            n += len(chunk)
        walls.append(time.perf_counter() - t0)
        chunks.append(chunk_t)
        firsts.append(first)
        audio_s = n / sample_rate
    return {"first_chunk_s": chunks, "first_audio_s": firsts, "wall_s": walls, "audio_s": audio_s}


def emit(result: dict[str, Any]) -> None:
    from importlib.metadata import PackageNotFoundError, version

    libs = {}
    for name in ("torch", "onnxruntime", "torchaudio", "transformers"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            pass
    result["libs"] = libs
    print("PEER_RESULT " + json.dumps(result), flush=True)
