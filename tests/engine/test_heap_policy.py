"""`anchorvoice train` keeps freed memory in the heap: a step's tensors come back without page faults."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Allocate, touch and free a 64 MiB buffer three times; print the page faults of the last two rounds.
CHILD = """
import resource, sys
import numpy as np
from anchorvoice.engine.cli.heap import keep_heap
if sys.argv[1] == "keep":
    print(keep_heap(), file=sys.stderr)
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.empty(64 << 20, dtype=np.uint8)
    a[::4096] = 1
    del a
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[1] + faults[2])
"""

HUGE_PAGES = 2 * (64 << 20) // (2 << 20)
"""Faults of the last two rounds at the fewest: numpy asks for 2 MiB pages for large arrays."""


def _faults(mode: str) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout.strip()), out.stderr


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"), reason="glibc only")
def test_freed_buffers_are_reused_without_faulting_pages_in_again() -> None:
    default, _ = _faults("default")
    kept, log = _faults("keep")
    assert default >= HUGE_PAGES  # glibc's defaults: each round maps the buffer and faults it in again
    assert kept < max(1, default // 10), log  # kept: the later rounds reuse the first round's pages
    assert "no mmap, no trim" in log
