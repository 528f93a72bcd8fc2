"""Ring buffer throughput and audio-callback cost.

Usage: ``python bench/ring_throughput.py [--seconds 1.0] [--repeats 5]``

Reports, each as the median of ``--repeats`` runs:

* single-thread write+read throughput of :class:`anchorvoice.streaming.ring.RingBuffer` in samples/s for
  several block sizes;
* SPSC throughput with a producer and a consumer thread;
* the cost of one ``LiveRunner.callback`` call (input write + output read, stereo device buffers)
  in microseconds, median and 99th percentile, with the worker stepping between calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.ring import RingBuffer
from anchorvoice.streaming.runner import LiveRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.machine import machine_line  # noqa: E402


def single_thread(block: int, seconds: float) -> float:
    ring = RingBuffer(8 * block)
    data = np.random.default_rng(0).standard_normal(block).astype(np.float32)
    out = np.empty(block, dtype=np.float32)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            ring.write(data)
            ring.read_into(out)
        n += 100 * block
    return n / (time.perf_counter() - t0)


def two_threads(block: int, total: int) -> float:
    ring = RingBuffer(16 * block)
    data = np.ones(block, dtype=np.float32)

    def producer() -> None:
        sent = 0
        while sent < total:
            if ring.free() >= block:
                ring.write(data)
                sent += block
            else:
                time.sleep(0)

    def consumer() -> None:
        out = np.empty(block, dtype=np.float32)
        got = 0
        while got < total:
            n = ring.read_into(out)
            got += n
            if n == 0:
                time.sleep(0)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - t0)


def callback_cost(frames: int, calls: int) -> tuple[float, float]:
    runner = LiveRunner(lambda f: f, LiveConfig(sample_rate=48000))
    indata = (0.1 * np.random.default_rng(1).standard_normal((frames, 2))).astype(np.float32)
    outdata = np.zeros((frames, 2), dtype=np.float32)
    costs = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        runner.callback(indata, outdata)
        costs.append(time.perf_counter_ns() - t0)
        while runner.step():
            pass
    assert runner.stats().callback_errors == 0
    arr = np.array(costs[calls // 10 :]) / 1000.0  # skip warm-up calls
    return float(np.median(arr)), float(np.percentile(arr, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="duration of each throughput run")
    ap.add_argument("--repeats", type=int, default=5, help="runs per figure (the median is reported)")
    args = ap.parse_args()
    result: dict[str, object] = {}
    for block in (128, 960, 4096):
        runs = [single_thread(block, args.seconds) for _ in range(args.repeats)]
        result[f"single_thread_block{block}_samples_per_s"] = statistics.median(runs)
    runs = [two_threads(960, int(2e7 * args.seconds)) for _ in range(args.repeats)]
    result["spsc_threads_block960_samples_per_s"] = statistics.median(runs)
    for frames in (256, 960):
        meds, p99s = zip(*(callback_cost(frames, 2000) for _ in range(args.repeats)))
        result[f"callback_{frames}x2_median_us"] = statistics.median(meds)
        result[f"callback_{frames}x2_p99_us"] = statistics.median(p99s)
    print(machine_line())
    for key, value in result.items():
        print(f"{key:42s} {value:>16,.1f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
