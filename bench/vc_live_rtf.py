"""Live neural voice conversion (``gsv-vc`` ``process``): compute time per block, full-size models.

Usage: ``.venv/bin/python -m bench.vc_live_rtf [--blocks-ms 250 500] [--seconds 4] [--repeats 5]
[--threads 2] [--context-s 1.0]`` (from the repository root).

Writes full-size random-weight SoVITS v2 and HuBERT files (:mod:`bench.fullsize`), makes a voice from
a 5 s speech-like reference, and streams ``--seconds`` of speech-like input through
``GsvVoiceConverter.process`` in blocks, as ``anchorvoice live`` does. For each block size it times
two converters in the same run, interleaved stream by stream so that machine load hits both alike:

* ``whole``: every window decoded whole by the vocoder (``vocoder_context`` = 10**6, the old path);
* ``tail``: only the emitted span + 12 latent frames of vocoder context decoded (the default);
* ``bf16``: ``tail`` with ``precision = "bfloat16"`` (HuBERT and HiFi-GAN in bfloat16), its agreement
  with ``tail`` printed as SI-SNR of the converted stream.

Prints the median (and minimum) compute per block over ``--repeats`` streams, the RTF (compute per
second of audio; ``anchorvoice live`` needs <= 0.8), the speed-up, and the largest difference between
the two outputs (the tail decode must give the same samples).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from anchorvoice.engine.voices import Voice
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.cpu_kernels import bf16_kernels
from anchorvoice.plugins.gsv.stages_vc import GsvVcConfig, GsvVoiceConverter
from bench.fullsize import write_hubert, write_sovits
from bench.hubert_rtf import speech_like
from bench.machine import machine_line
from bench.metrics import si_snr_db
from bench.timing import roomy_onednn_cache

SR = 32000
WHOLE = 10**6


def stream(vc: GsvVoiceConverter, x: np.ndarray, block: int) -> tuple[float, np.ndarray]:
    """Seconds of compute per block, and the converted stream."""
    vc.reset()
    outs = []
    t0 = time.perf_counter()
    for i in range(0, len(x) - block + 1, block):
        outs.append(vc.process(AudioFrame(x[i : i + block], SR)).samples.copy())
    return (time.perf_counter() - t0) / len(outs), np.concatenate(outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks-ms", type=float, nargs="+", default=[250.0, 500.0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context-s", type=float, default=1.0)
    ap.add_argument("--bf16-vocoder-contexts", type=int, nargs="*", default=[],
                    help="also time bf16 converters with these vocoder_context values (frames; default 12), with "
                         "their SI-SNR against bf16 at 12 (float32 ones against float32 where the CPU has no bf16)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    roomy_onednn_cache()  # the variants and block sizes each have their own conv shapes
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_sovits(d / "s2.pth")
        write_hubert(d / "hubert")
        sf.write(d / "ref.wav", speech_like(5.0, SR), SR)
        voice = Voice("bench", d, [d / "ref.wav"], models={"sovits": d / "s2.pth", "hubert": d / "hubert"})
        vcs = {}
        low = "bfloat16" if bf16_kernels() else "float32"  # AVX2-only CPUs: no oneDNN bf16, the contexts in float32
        tag = "bf16" if low == "bfloat16" else "f32"
        variants = [("whole", WHOLE, "float32"), ("tail", 12, "float32")]
        if low == "bfloat16":
            variants.append(("bf16", 12, "bfloat16"))
        for name, context, precision in variants:
            vcs[name] = GsvVoiceConverter(
                GsvVcConfig(context_s=args.context_s, vocoder_context=context, precision=precision)  # type: ignore[arg-type]
            )
            vcs[name].prepare(voice)
        for ctx in args.bf16_vocoder_contexts:
            vcs[f"{tag}-c{ctx}"] = GsvVoiceConverter(GsvVcConfig(context_s=args.context_s, vocoder_context=ctx,
                                                                 precision=low))  # type: ignore[arg-type]
            vcs[f"{tag}-c{ctx}"].prepare(voice)
        x = speech_like(args.seconds, SR)
        print(machine_line(args.threads))
        print(
            f"gsv-vc live, full-size v2 + HuBERT base, {args.threads} threads, context {args.context_s} s, "
            f"{args.seconds} s streamed, median of {args.repeats}"
        )
        for block_ms in args.blocks_ms:
            block = int(SR * block_ms / 1000)
            times: dict[str, list[float]] = {name: [] for name in vcs}
            outs: dict[str, np.ndarray] = {}
            for vc in vcs.values():  # warm-up
                stream(vc, x[: 2 * block], block)
            for _ in range(args.repeats):
                for name, vc in vcs.items():
                    t, outs[name] = stream(vc, x, block)
                    times[name].append(t)
            med = {name: statistics.median(ts) for name, ts in times.items()}
            for name in vcs:
                print(
                    f"  block {block_ms:5.0f} ms  {name:8s}: {med[name] * 1000:7.1f} ms/block "
                    f"(min {min(times[name]) * 1000:7.1f})  RTF {med[name] / (block / SR):.2f}"
                )
            diff = float(np.max(np.abs(outs["tail"] - outs["whole"])))
            print(
                f"  block {block_ms:5.0f} ms  speed-up {med['whole'] / med['tail']:.2f}x, max |tail - whole| {diff:.2e}"
            )
            latency = (block + vcs["tail"].latency_samples) / SR * 1000
            base = "bf16" if "bf16" in vcs else "tail"
            if base == "bf16":
                snr = si_snr_db(outs["tail"], outs["bf16"])
                speedup = med["tail"] / med["bf16"]
                print(f"  block {block_ms:5.0f} ms  bf16 vs tail: x{speedup:.2f}, SI-SNR {snr:.1f} dB (random weights)")
            else:
                print(f"  block {block_ms:5.0f} ms  bf16 not run: this CPU has no oneDNN bf16 kernels")
            print(f"  block {block_ms:5.0f} ms  algorithmic latency {latency:.0f} ms (block + lookahead)")
            for ctx in args.bf16_vocoder_contexts:
                name = f"{tag}-c{ctx}"
                print(f"  block {block_ms:5.0f} ms  {name} vs {base} (context 12): x{med[base] / med[name]:.2f}, "
                      f"SI-SNR {si_snr_db(outs[base], outs[name]):.1f} dB")


if __name__ == "__main__":
    main()
