"""Streaming HiFi-GAN decode: incremental (each sample once) against windowed chunks and one-shot.

Usage: ``python bench/vocoder_stream.py [--repeats 5] [--threads 2] [--seconds 16] [--precision float32]``

Workload: the full-size v2 HiFi-GAN generator (official ``configs/s2.json`` sizes, random weights), a
random latent of ``--seconds`` s (50 frames/s) and speaker vector, pushed in the pieces the streaming
TTS pipeline pushes (GPT chunks of 16 tokens, then 24 doubling to 96 tokens; 2 latent frames per
token). Timed alternately in one loop (:func:`bench.timing.time_alternately`), median and minimum of
``--repeats`` runs:

* ``one-shot``: ``Generator.forward`` on the whole latent (no streaming; the floor);
* ``incremental``: :class:`anchorvoice.plugins.gsv.hifigan_stream.IncrementalDecoder` (the default of
  ``gsv-hifigan``);
* ``windows``: :class:`anchorvoice.plugins.gsv.streaming_decode.ChunkedDecoder` with the stage's settings
  (first chunk 10 frames, cap 400; 12 frames before and 10 after every chunk decoded again).

Also printed: the time to the first audio of each streaming decoder (the first push alone) and the
max |difference| of each streamed signal from the one-shot audio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from anchorvoice.plugins.gsv.hifigan import Generator, HiFiGANConfig  # noqa: E402
from anchorvoice.plugins.gsv.hifigan_stream import IncrementalDecoder  # noqa: E402
from anchorvoice.plugins.gsv.sovits import official_v2_config  # noqa: E402
from anchorvoice.plugins.gsv.streaming_decode import ChunkedDecodeConfig, ChunkedDecoder  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from bench.timing import time_alternately  # noqa: E402


def tts_pieces(frames: int, first_tokens: int = 16, chunk_tokens: int = 24, max_tokens: int = 96) -> list[int]:
    """Latent frames per push as the TTS pipeline sends them (2 frames per 25 Hz token)."""
    pieces, size, left = [2 * first_tokens], chunk_tokens, frames - 2 * first_tokens
    while left > 0:
        pieces.append(min(left, 2 * size))
        left -= pieces[-1]
        size = min(2 * size, max_tokens)
    return pieces


def stream(decoder: Any, z: torch.Tensor, pieces: list[int]) -> tuple[np.ndarray, float]:
    """All pieces through ``decoder``; the audio and the seconds to its first non-empty output."""
    out, pos, first, t0 = [], 0, 0.0, time.perf_counter()
    for size in pieces:
        block = decoder.push(z[:, pos : pos + size], final=pos + size >= z.shape[1])
        pos += size
        if len(block) and not first:
            first = time.perf_counter() - t0
        out.append(block)
    return np.concatenate(out), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=16.0)
    ap.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line(args.threads))
    torch.manual_seed(0)
    gen = Generator(HiFiGANConfig.from_model_config(official_v2_config()["model"]), precision=args.precision).eval()
    frames = int(args.seconds * 50)
    z = torch.randn(gen.cfg.initial_channel, frames)
    ge = torch.randn(1, gen.cfg.gin_channels, 1)
    pieces = tts_pieces(frames)
    with torch.inference_mode():
        ref = gen(z[None], g=ge)[0, 0].numpy()

    def windows() -> ChunkedDecoder:
        return ChunkedDecoder(gen, ge, ChunkedDecodeConfig(chunk_frames=10, max_chunk_frames=400))

    makers = {"incremental": lambda: IncrementalDecoder(gen, ge), "windows": windows}
    firsts: dict[str, list[float]] = {k: [] for k in makers}
    diffs: dict[str, float] = {}

    def run(name: str) -> Any:
        def f() -> None:
            audio, first = stream(makers[name](), z, pieces)
            firsts[name].append(first)
            diffs[name] = float(np.abs(audio - ref).max())

        return f

    def one_shot() -> None:
        with torch.inference_mode():
            gen(z[None], g=ge)

    times = time_alternately({"one-shot": one_shot, **{k: run(k) for k in makers}}, args.repeats)
    print(f"HiFi-GAN v2 full size, {args.precision}, {args.seconds:g} s of audio ({frames} frames) pushed as "
          f"{pieces}; median (min) of {args.repeats}")
    base = times["one-shot"]["median_s"]
    for name, t in times.items():
        extra = ""
        if name in makers:
            extra = (f"  first audio {statistics.median(firsts[name][1:]):.3f} s"
                     f"  max |diff| from one-shot {diffs[name]:.1e}")
        print(f"  {name:12s} {t['median_s']:.3f} s ({t['min_s']:.3f})  RTF {t['median_s'] / args.seconds:.3f}"
              f"  x{t['median_s'] / base:.2f} of one-shot{extra}")
    ratio = times["windows"]["median_s"] / times["incremental"]["median_s"]
    print(f"  incremental is {ratio:.2f}x as fast as windows (same run)")


if __name__ == "__main__":
    main()
