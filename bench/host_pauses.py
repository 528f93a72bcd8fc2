"""How long this (virtual) machine stops running us: a top-priority probe process and the kernel's steal time.

Usage: ``python -m bench.host_pauses --seconds 60 [--out pauses.json]`` (also started by the live load test
beside its stream).

A process at ``SCHED_FIFO`` 99 (where allowed; it says when it is not) sleeps 1 ms at a time and records how
late each wake-up is. Nothing in the guest outranks it, so a late wake-up of tens of milliseconds means the
host did not run this vCPU (or an interrupt storm held it): no thread priority inside the guest can keep audio
flowing through such a gap, only a buffer longer than it. ``steal_s`` is the time the hypervisor reports
having given these vCPUs to others (``/proc/stat``, summed over CPUs). Prints (or writes) JSON with the gap
counts over 5/10/20/50 ms, the longest gap, the times of the gaps over 10 ms (seconds from the start) and the
steal time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

THRESHOLDS_MS = (5, 10, 20, 50)
TICK_S = 0.001


def steal_seconds() -> float:
    """Steal time of all CPUs so far (``/proc/stat`` 'cpu' line, 8th value, in USER_HZ ticks); 0 off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def _raise_priority() -> str:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(99))
        return "SCHED_FIFO 99"
    except (AttributeError, OSError) as exc:
        return f"normal (SCHED_FIFO refused: {exc}); gaps then include ordinary scheduling delays"


def probe(seconds: float) -> dict[str, Any]:
    """Sleep ``TICK_S`` at a time for ``seconds`` (or until SIGTERM) and summarise the late wake-ups."""
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    priority = _raise_priority()
    steal0, t0 = steal_seconds(), time.monotonic()
    counts = dict.fromkeys(THRESHOLDS_MS, 0)
    longest, late_at = 0.0, []
    last = t0
    while not stop["now"] and last - t0 < seconds:
        time.sleep(TICK_S)
        now = time.monotonic()
        gap_ms = (now - last - TICK_S) * 1000
        last = now
        if gap_ms > THRESHOLDS_MS[0]:
            for th in THRESHOLDS_MS:
                counts[th] += gap_ms > th
            longest = max(longest, gap_ms)
            if gap_ms > 10:
                late_at.append([round(now - t0, 3), round(gap_ms, 1)])
    return {"seconds": round(last - t0, 1), "priority": priority,
            "gaps_over_ms": {str(k): v for k, v in counts.items()}, "longest_gap_ms": round(longest, 1),
            "gaps_over_10ms_at": late_at[:200], "steal_s": round(steal_seconds() - steal0, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to probe (SIGTERM ends it early)")
    ap.add_argument("--out", type=Path, help="write the JSON here instead of printing it")
    args = ap.parse_args(argv)
    result = json.dumps(probe(args.seconds))
    if args.out:
        args.out.write_text(result + "\n", encoding="utf-8")
    else:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
