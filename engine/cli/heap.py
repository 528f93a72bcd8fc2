"""Process memory policy for long CPU jobs (`anchorvoice train`): keep freed memory in the C heap.

A training step allocates and frees the same large tensors every step (activations of a few to tens
of MB). glibc's malloc serves blocks that large with ``mmap`` and returns them to the kernel on
``free``, and trims the heap top back to the kernel too, so every step faults the same memory in
again, page by page, zero-filled. Measured on 2 cores of an AMX Intel Xeon (full-size v2, batch 4):
our SoVITS step alone 6.5 s with the policy against 7.3-8.6 s without (`bench/train_sovits_step.py`);
in `python -m bench.train_gpt_step`, which alternates ours and the official trainer in one process, our
GPT cycle took 12.4 s either way and the official's 13.7 s with the policy against 16.1 s without (it
allocates more per step); peak resident memory 2-11% higher. :func:`keep_heap` turns both off for
the rest of the process: no allocation is ``mmap``-ed and the heap is never trimmed, so a step
reuses what the previous one freed. It is for processes that run one long job and exit. Elsewhere
it gained nothing measurable (`dataset make` on 2 minutes of speech 9.78 against 9.85 s,
`bench/dataset_prep.py`; the `tts` preset's first audio and RTF the same, `bench/tts_first_audio.py`), and a
live stream or a server should give an evicted voice's memory back to the system: they keep glibc's
defaults.

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
