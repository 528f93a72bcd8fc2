"""The GPT decode and the vocoder on a busy two-core PC: all threads, one thread, and the thread governor.

Usage: ``.venv/bin/python -m bench.busy_threads [--hog 2] [--repeats 3] [--threads 2] [--tokens 150]``

Starts ``--hog`` busy processes at normal priority (a streamer's game and OBS; :func:`bench.soak.start_hogs`)
and then times, alternately so that the load hits each alike, with full-size random weights:

* the GPT decode (``decode_stream``, int8 and float32 runtimes): ms per token over ``--tokens`` tokens;
* the HiFi-GAN (float32, and bfloat16 where the CPU has native bf16) on a 4 s latent pushed in the
  chunks the TTS pipeline uses: seconds per second of audio;

each three ways: ``fixed N`` (torch on ``--threads`` threads, the old behaviour), ``fixed 1`` and
``governed`` (:class:`anchorvoice.plugins.cpu_threads.AdaptiveThreads`, what the stages now do). With
``--hog 0`` it shows what the governor costs on a quiet machine. Medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from anchorvoice.plugins.cpu_kernels import native_bf16
from anchorvoice.plugins.cpu_threads import AdaptiveThreads
from anchorvoice.plugins.gsv.hifigan import Generator, HiFiGANConfig
from anchorvoice.plugins.gsv.kv_cache import T2SRuntime
from anchorvoice.plugins.gsv.streaming_decode import ChunkedDecodeConfig, ChunkedDecoder
from anchorvoice.plugins.gsv.t2s_sampling import SamplingConfig, decode_stream, make_generator
from bench.machine import machine_line
from bench.soak import start_hogs, stop_hogs
from bench.t2s_rtf import build_model

MODES = ("fixed all", "fixed 1", "governed")


def gpt_timer(runtime: T2SRuntime, tokens: int, threads: int) -> Callable[[str], float]:
    torch.manual_seed(0)
    phones = torch.randint(0, runtime.model.config.phoneme_vocab_size, (60,))
    bert = torch.zeros(1024, 60)
    prompt = torch.randint(0, runtime.model.config.vocab_size - 1, (150,))
    governed = AdaptiveThreads()  # kept across runs, as a stage keeps its own

    def run(mode: str) -> float:
        torch.set_num_threads(1 if mode == "fixed 1" else threads)
        gov = governed if mode == "governed" else None
        cfg = SamplingConfig(early_stop_num=tokens - 1)
        start, n = 0.0, 0
        for _ in decode_stream(runtime, phones, bert, prompt, cfg, make_generator(0), threads=gov):
            n += 1
            if n == 1:
                start = time.perf_counter()
        return (time.perf_counter() - start) / max(1, n - 1) * 1000

    return run


def vocoder_timer(dec: Generator, threads: int) -> Callable[[str], float]:
    torch.manual_seed(0)
    z = torch.randn(dec.cfg.initial_channel, 200)  # 4 s of latent at 50 Hz
    ge = torch.randn(1, dec.cfg.gin_channels, 1)
    governed = AdaptiveThreads()
    pieces = (32, 40, 48, 80)  # the growing token chunks of a TTS sentence, as latent frames

    def run(mode: str) -> float:
        torch.set_num_threads(1 if mode == "fixed 1" else threads)
        stream = ChunkedDecoder(dec, ge, ChunkedDecodeConfig(chunk_frames=10, max_chunk_frames=400))
        t0, pos, samples = time.perf_counter(), 0, 0
        with torch.inference_mode():
            for size in pieces:
                part = z[:, pos : pos + size]
                pos += size
                if mode == "governed":
                    with governed.unit(0) as unit:
                        out = stream.push(part, final=pos >= z.shape[1])
                        unit.work = len(out)
                else:
                    out = stream.push(part, final=pos >= z.shape[1])
                samples += len(out)
        return (time.perf_counter() - t0) / (samples / 32000)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hog", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=150)
    ap.add_argument("--only", default="", help="run only the jobs whose name contains this (e.g. vocoder)")
    args = ap.parse_args()
    print(machine_line(args.threads))
    torch.set_num_threads(args.threads)
    model = build_model(0)
    jobs: dict[str, tuple[Callable[[str], float], str]] = {
        "GPT int8": (gpt_timer(T2SRuntime(model, "int8"), args.tokens, args.threads), "ms/token"),
        "GPT float32": (gpt_timer(T2SRuntime(model, "float32"), args.tokens, args.threads), "ms/token"),
    }
    for precision in ("float32", "bfloat16") if native_bf16() else ("float32",):
        dec = Generator(HiFiGANConfig(), precision=precision).eval().requires_grad_(False)  # type: ignore[arg-type]
        jobs[f"vocoder {precision}"] = (vocoder_timer(dec, args.threads), "s per s of audio")
    jobs = {name: job for name, job in jobs.items() if args.only in name}
    for run, _ in jobs.values():  # warm-up (numba compile, first-call allocation) before the load starts
        for mode in MODES:
            run(mode)
    hogs = start_hogs(args.hog)
    try:
        times: dict[str, dict[str, list[float]]] = {job: {m: [] for m in MODES} for job in jobs}
        for _ in range(args.repeats):
            for job, (run, _) in jobs.items():
                for mode in MODES:
                    times[job][mode].append(run(mode))
    finally:
        stop_hogs(hogs)
    print(f"{args.hog} busy processes at normal priority; medians of {args.repeats}; load average after "
          f"{os.getloadavg()[0]:.1f}")
    print(f"  {'work':18s}" + "".join(f"{m:>16s}" for m in MODES) + "  unit")
    for job, (_, unit) in jobs.items():
        med = {m: statistics.median(times[job][m]) for m in MODES}
        print(f"  {job:18s}" + "".join(f"{med[m]:16.3f}" for m in MODES) + f"  {unit}")
        print(f"  {'':18s} runs: " + "; ".join(f"{m} {[round(t, 3) for t in times[job][m]]}" for m in MODES))
    torch.set_num_threads(args.threads)


if __name__ == "__main__":
    main()
