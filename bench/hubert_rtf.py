"""HuBERT base (chinese-hubert-base size) real-time factor on CPU.

Usage: ``python bench/hubert_rtf.py [--seconds 10] [--threads 2] [--repeats 5] [--hubert DIR]``

Builds the full-size model (94.4 M parameters; random weights unless ``--hubert`` names a real
chinese-hubert-base folder), runs it on ``--seconds`` of 16 kHz speech-like audio with
``torch.set_num_threads(--threads)``, float32, and prints the median of ``--repeats`` runs after one
warm-up, the minimum, the RTF, and the ratio against the official implementation's 0.97 s for 10 s
on the same 2-core machine (``shared/gsv_reference/BASELINE.md``; ratio > 1 = we are faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from engine.checkpoints import load_hubert
from plugins.gsv.hubert import HubertConfig, HubertModel, build_hubert

# BASELINE.md: "HuBERT base (chinese-hubert-base size, 94.4 M params) on 10 s at 16 kHz | 0.97 s".
OFFICIAL_SECONDS_FOR_10S = 0.97


def speech_like(seconds: float, sr: int = 16000) -> np.ndarray:
    """Harmonic 150 Hz tone with a syllable-rate envelope and a little noise (peak ~0.6)."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 150.0 * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    rng = np.random.default_rng(0)
    x = voice * env + 0.003 * rng.standard_normal(len(t))
    return (0.6 * x / np.max(np.abs(x))).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--hubert", default="", help="chinese-hubert-base folder (default: random weights)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_hubert(load_hubert(args.hubert)) if args.hubert else HubertModel(HubertConfig()).eval()
    n_params = sum(p.numel() for p in model.parameters())
    wav = torch.from_numpy(speech_like(args.seconds))[None]

    times = []
    with torch.inference_mode():
        model(wav)  # warm-up
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = model(wav)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    official = OFFICIAL_SECONDS_FOR_10S * args.seconds / 10.0
    print(
        json.dumps(
            {
                "params_m": round(n_params / 1e6, 2),
                "audio_s": args.seconds,
                "frames": int(out.shape[1]),
                "threads": args.threads,
                "median_s": round(med, 4),
                "min_s": round(min(times), 4),
                "rtf": round(med / args.seconds, 4),
                "official_s": official,
                "speedup_vs_official": round(official / med, 3),
                "runs_s": [round(t, 4) for t in times],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
