"""Process memory policy for long CPU jobs (`anchorvoice train`): keep freed memory in the C heap.

A training step allocates and frees the same large tensors every step (activations of a few to tens
of MB). glibc's malloc serves blocks that large with ``mmap`` and returns them to the kernel on
``free``, and trims the heap top back to the kernel too, so every step faults the same memory in
again, page by page, zero-filled. Measured on 2 cores of an AMX Intel Xeon (full-size v2, batch 4,
`bench/train_sovits_step.py` / `python -m bench.train_gpt_step`, ``--keep-heap`` against without):
SoVITS step 6.5 s against 7.3-8.6 s, GPT cycle 12.3 s against 12.5-13.3 s (230,000 page faults in
a cycle down to none), the peak resident memory 1-2% higher. :func:`keep_heap` turns both off for
the rest of the process: no allocation is ``mmap``-ed and the heap is never trimmed, so a step
reuses what the previous one freed. It is for processes that run one long job and exit; a live
stream or a server keeps glibc's defaults.

Process-wide and irreversible, so only the CLI's top floor calls it, when a job starts (never at
import).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
"""glibc ``mallopt`` parameter: free memory at the heap top above this many bytes goes back to the kernel."""
M_MMAP_MAX = -4
"""glibc ``mallopt`` parameter: most allocations served by ``mmap`` at once (0: none)."""
NEVER_TRIM = 2**31 - 1
"""The largest value ``mallopt`` takes (an ``int``): the heap top is never trimmed in practice."""


def keep_heap() -> str:
    """Keep freed memory in this process's heap (see the module docstring). Returns what was done, for
    the job's log: the policy, or why it does not apply (not Linux with glibc; nothing is changed)."""
    if not sys.platform.startswith("linux"):
        return f"memory: {sys.platform} allocator defaults (the heap policy is for glibc on Linux)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return "memory: allocator defaults (this C library is not glibc)"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    version.restype = ctypes.c_char_p
    if mallopt(M_MMAP_MAX, 0) != 1 or mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) != 1:
        return "memory: allocator defaults (glibc refused mallopt)"
    return f"memory: freed tensors stay in the heap for the next step (glibc {version().decode()}: no mmap, no trim)"
