"""Soak test of the live path: a looping file source at real time through the LiveRunner.

Usage: ``python bench/soak.py --minutes 10 [--process identity|dsp] [--input FILE] [--frames 480] [--hog 2]``

A clocked "device" thread calls ``LiveRunner.callback`` every ``--frames`` samples of wall-clock
time (absolute deadlines, like a sound card's period), feeding a looping speech file and
discarding the output; the runner's worker thread converts. At the end it reports underruns,
overruns, degradation events, callback cost, compute time, real-time factor and resident memory
growth between the end of warm-up and the end of the run. Targets (issues 3 and 17): 0 underruns, < 5 %
memory growth. Exit status 1 when a target is missed.

``--hog N`` starts N busy processes at normal priority beside the stream (a streamer's OBS, browser and
game; issue 17 uses 2 on a 2-core machine). The runner raises its threads as ``anchorvoice live`` does
(``--no-realtime`` for comparison; the clocked device thread stands in for PortAudio's and is promoted by
its first callback). The report names the CPU, its ISA flags that matter and the load average, and the
adaptive jitter buffer's size and peak (the latency the load cost).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from anchorvoice.audio_io import read_audio
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.runner import LiveRunner

ASTERISK_EN = Path("/usr/share/asterisk/sounds/en")


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def load_source(path: str | None, sr: int, seconds: float = 60.0) -> np.ndarray:
    """The file given, or about a minute of the Debian asterisk English prompts (real speech)."""
    if path:
        return read_audio(path, sample_rate=sr).samples
    clips = sorted(ASTERISK_EN.glob("*.g722"))
    if not clips:
        raise SystemExit(
            f"no --input given and no speech prompts in {ASTERISK_EN} (install asterisk-core-sounds-en-g722)"
        )
    parts: list[np.ndarray] = []
    total = 0
    for clip in clips:
        x = read_audio(clip, sample_rate=sr).samples
        parts.append(x)
        total += len(x)
        if total >= seconds * sr:
            break
    return np.concatenate(parts)


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
"""CPU flags reported with every figure."""
HOG_CODE = "while True:\n    pass\n"
"""What each --hog process runs: one core's worth of pure Python at normal priority."""


def machine_info() -> dict[str, Any]:
    """CPU model, the ISA flags that matter, core count and load average (Linux /proc; '?' elsewhere)."""
    model, flags = "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "?":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "isa": [f for f in ISA_FLAGS if f in flags],
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def start_hogs(n: int) -> list[subprocess.Popen[bytes]]:
    """``n`` busy Python processes at normal priority; stop them with ``stop_hogs``."""
    return [subprocess.Popen([sys.executable, "-c", HOG_CODE]) for _ in range(n)]


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    for p in hogs:
        p.terminate()
    for p in hogs:
        p.wait(timeout=10)


def make_process(kind: str, cfg: LiveConfig) -> Any:
    if kind == "identity":
        return lambda frame: frame
    if kind == "dsp":
        from anchorvoice.plugins.dsp.converter import DspConfig, DspVoiceConverter
        from anchorvoice.streaming.converter_stream import ConverterProcess

        conv = DspVoiceConverter(DspConfig(pitch_semitones=4.0, formant_ratio=1.12))
        conv.prepare(None)
        return ConverterProcess(conv, cfg.sample_rate, cfg.samples(cfg.block_ms))
    raise SystemExit(f"unknown --process {kind!r} (choose identity or dsp)")


class GcPauses:
    """Longest cyclic-GC pause per generation (gc.callbacks), to tell GC stalls from CPU starvation."""

    def __init__(self) -> None:
        self.max_ms = [0.0, 0.0, 0.0]
        self._t0 = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            g = info["generation"]
            self.max_ms[g] = max(self.max_ms[g], 1000.0 * (time.perf_counter() - self._t0))


class ClockedDevice:
    """Calls ``callback(in, out)`` every ``frames`` samples of wall-clock time on its own thread."""

    def __init__(self, runner: LiveRunner, source: np.ndarray, frames: int, sr: int, seconds: float) -> None:
        self.runner, self.source, self.frames, self.sr = runner, source, frames, sr
        # Preallocated so that the bench itself does not grow the memory it measures.
        self.costs_ns = np.zeros(int(seconds * sr / frames) + 1000, dtype=np.int64)
        self.late_periods = 0
        self.calls = 0
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-device", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        period = self.frames / self.sr
        indata = np.zeros(self.frames, np.float32)
        outdata = np.zeros((self.frames, 2), np.float32)
        pos, n = 0, len(self.source)
        t0 = time.perf_counter()
        while not self._stop.is_set():
            deadline = t0 + self.calls * period
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -period:
                self.late_periods += 1  # a real device would have glitched here too
            end = pos + self.frames
            if end <= n:
                indata[:] = self.source[pos:end]
            else:
                indata[: n - pos] = self.source[pos:]
                indata[n - pos :] = self.source[: end - n]
            pos = end % n
            c0 = time.perf_counter_ns()
            self.runner.callback(indata, outdata)
            self.costs_ns[self.calls % len(self.costs_ns)] = time.perf_counter_ns() - c0
            self.peak = max(self.peak, float(np.abs(outdata[:, 0]).max()))
            self.calls += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="run length in minutes of real time")
    ap.add_argument("--process", default="dsp", help="identity or dsp (the embedded DSP voice converter)")
    ap.add_argument("--input", default=None, help="audio file to loop (default: asterisk English prompts)")
    ap.add_argument("--frames", type=int, default=480, help="device buffer in samples (480 = 10 ms at 48 kHz)")
    ap.add_argument("--sample-rate", type=int, default=48000)
    ap.add_argument("--block-ms", type=float, default=LiveConfig.block_ms)
    ap.add_argument("--jitter-ms", type=float, default=LiveConfig.jitter_ms, help="jitter buffer")
    ap.add_argument("--no-freeze-gc", action="store_true", help="leave the cyclic GC as it is (for comparison)")
    ap.add_argument("--warmup-s", type=float, default=10.0, help="memory baseline is taken after this")
    ap.add_argument("--hog", type=int, default=0, help="busy processes at normal priority beside the stream")
    ap.add_argument("--no-realtime", action="store_true", help="leave the live threads at normal priority")
    args = ap.parse_args()

    cfg = LiveConfig(sample_rate=args.sample_rate, block_ms=args.block_ms, jitter_ms=args.jitter_ms,
                     freeze_gc=not args.no_freeze_gc, realtime=not args.no_realtime)
    print(f"machine: {json.dumps(machine_info())}", flush=True)
    source = load_source(args.input, cfg.sample_rate)
    events: list[dict[str, Any]] = []
    runner = LiveRunner(make_process(args.process, cfg), cfg, on_event=events.append)
    duration = args.minutes * 60.0
    device = ClockedDevice(runner, source, args.frames, cfg.sample_rate, duration)
    warmup = min(args.warmup_s, duration / 4)
    print(f"soak: {args.process} for {duration:.0f} s, {runner.latency.describe()}", flush=True)
    print(f"warm-up: {runner.warmup():.2f} s", flush=True)
    hogs = start_hogs(args.hog)
    try:
        runner.start()  # gc.collect() + gc.freeze() happen here, before the pauses are watched
        gc_pauses = GcPauses()
        device.start()
        t_start = time.monotonic()
        time.sleep(warmup)
        rss0 = rss_bytes()
        next_report = time.monotonic() + 30
        while (now := time.monotonic()) - t_start < duration:
            time.sleep(min(1.0, max(0.0, duration - (now - t_start))))
            if time.monotonic() >= next_report:
                st = runner.stats()
                print(f"  t={time.monotonic() - t_start:6.0f}s rtf={st.rtf:.3f} compute={st.compute_ms_avg:.2f} ms "
                      f"underruns={st.underruns} overruns={st.overruns} rss={rss_bytes() / 2**20:.1f} MiB", flush=True)
                next_report += 30
        rss1 = rss_bytes()
        load_under_test = [round(x, 2) for x in os.getloadavg()]
        device.stop()
        runner.stop()
    finally:
        stop_hogs(hogs)
    st = runner.stats()
    n_costs = min(device.calls, len(device.costs_ns))
    costs = device.costs_ns[n_costs // 20 : n_costs] / 1000.0
    growth = 100.0 * (rss1 - rss0) / rss0
    report = {
        "process": args.process,
        "machine": machine_info(),
        "load_avg_at_end_of_run": load_under_test,  # other work on the machine steals the CPU
        "hogs": args.hog,
        "audio_priority": st.audio_priority,
        "worker_priority": st.worker_priority,
        "priority_note": st.priority_note,
        "jitter_buffer_ms": st.jitter_buffer_ms,
        "jitter_peak_ms": st.jitter_peak_ms,
        "seconds": round(duration, 1),
        "device_calls": device.calls,
        "device_late_periods": device.late_periods,
        "blocks_processed": st.blocks_processed,
        "underruns": st.underruns,
        "overruns": st.overruns,
        "dropped_samples": st.dropped_samples,
        "events": [e["event"] + ":" + str(e.get("reason")) for e in events if e["event"] != "priority"],
        "callback_errors": st.callback_errors,
        "callback_us_median": round(float(np.median(costs)), 1),
        "callback_us_p99": round(float(np.percentile(costs, 99)), 1),
        "callback_us_max": round(float(costs.max()), 1),
        "compute_ms_avg": round(st.compute_ms_avg, 3),
        "compute_ms_max": round(st.compute_ms_max, 3),
        "rtf": round(st.rtf, 4),
        "output_peak": round(device.peak, 3),
        "algorithmic_latency_ms": st.algorithmic_latency_ms,
        "total_latency_ms": st.total_latency_ms,
        "gc_max_pause_ms_by_generation": [round(v, 2) for v in gc_pauses.max_ms],
        "rss_start_mib": round(rss0 / 2**20, 1),
        "rss_end_mib": round(rss1 / 2**20, 1),
        "rss_growth_pct": round(growth, 2),
    }
    print(json.dumps(report, indent=1))
    ok = st.underruns == 0 and growth < 5.0 and st.callback_errors == 0 and device.peak > 0.01
    print("PASS" if ok else "FAIL: targets are 0 underruns, < 5 % RSS growth, no callback errors, audible output")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
