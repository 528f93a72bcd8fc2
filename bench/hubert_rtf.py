"""HuBERT base (chinese-hubert-base size) real-time factor on CPU.

Usage: ``python bench/hubert_rtf.py [--seconds 10] [--threads 2] [--repeats 5] [--hubert DIR]``

Builds the full-size model (94.4 M parameters; random weights unless ``--hubert`` names a real
chinese-hubert-base folder), runs it on ``--seconds`` of 16 kHz speech-like audio with
``torch.set_num_threads(--threads)``, float32, and prints the median of ``--repeats`` runs after one
warm-up, the minimum, the RTF, and the ratio against the official implementation's 0.97 s for 10 s
on the same 2-core machine (``shared/gsv_reference/BASELINE.md``; ratio > 1 = we are faster).

``--transformers``: also time ``transformers.HubertModel`` (the class the official code runs) with
the same weights, interleaved with ours run by run so that machine load hits both alike, and
report the max abs difference of the outputs. Needs ``transformers`` importable (it is not an
anchorvoice dependency; e.g. ``pip install --target /tmp/tf --no-deps transformers ...`` and
``PYTHONPATH=/tmp/tf``).

``--bf16``: also time our bfloat16 mode (``HubertModel.use_precision("bfloat16")``) interleaved with
float32, and print its agreement with float32 on real speech: per-frame cosine of the features
(median, 1st percentile, minimum) over the first ``--agree-clips`` Asterisk prompts
(``/usr/share/asterisk/sounds/en``, Debian's asterisk-core-sounds-en-g722), and the fraction of
frames whose nearest-codebook token would need the features to agree to the last bits (not
measured here: the semantic tokens need a SoVITS quantizer; see the note printed).

``--parts``: also time the parts, interleaved run by run, median in ms: our conv stack
(``conv_features``) against the plain module path (``nn.Conv1d`` + ``nn.GroupNorm`` in (B, C, T)),
our positional conv (FFT) against the plain grouped ``nn.Conv1d``, one transformer layer; with
``--transformers`` also transformers' feature encoder and positional conv.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from anchorvoice.plugins.gsv.checkpoints import load_hubert
from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel, build_hubert
from bench.machine import machine_line
from bench.timing import roomy_onednn_cache, time_alternately

PROMPTS = "/usr/share/asterisk/sounds/en"

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


def transformers_twin(model: HubertModel) -> torch.nn.Module:
    """transformers' HubertModel with ``model``'s weights (fails if transformers is missing)."""
    import transformers

    c = model.config
    hf_cfg = transformers.HubertConfig(
        conv_dim=c.conv_dim,
        conv_kernel=c.conv_kernel,
        conv_stride=c.conv_stride,
        conv_bias=c.conv_bias,
        hidden_size=c.hidden_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        intermediate_size=c.intermediate_size,
        num_conv_pos_embeddings=c.num_conv_pos_embeddings,
        num_conv_pos_embedding_groups=c.num_conv_pos_embedding_groups,
        layer_norm_eps=c.layer_norm_eps,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        feat_proj_layer_norm=c.feat_proj_layer_norm,
    )
    hf = transformers.HubertModel(hf_cfg).eval()
    sd = dict(model.state_dict())
    w = sd.pop("encoder.pos_conv_embed.conv.weight")
    names = set(hf.state_dict())
    g_key = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
    v_key = "encoder.pos_conv_embed.conv.parametrizations.weight.original1"
    if g_key not in names:
        g_key, v_key = "encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.weight_v"
    sd[g_key], sd[v_key] = w.norm(dim=(0, 1), keepdim=True), w
    hf.load_state_dict(sd, strict=True)
    return hf


def part_times(model: HubertModel, hf: torch.nn.Module | None, wav: torch.Tensor, repeats: int) -> dict[str, float]:
    """Per-part medians (ms), ours against the plain module path (and transformers) in the same rounds."""
    layers = model.feature_extractor.conv_layers
    pos = model.encoder.pos_conv_embed

    def plain_conv_stack() -> torch.Tensor:
        x = wav[:, None, :]
        for layer in layers:
            x = layer(x)  # nn.Conv1d (+ nn.GroupNorm) + GELU in (B, C, T)
        return x.transpose(1, 2)

    feats = model.conv_features(wav)
    hidden = model.feature_projection(feats)

    def plain_pos_conv() -> torch.Tensor:
        return F.gelu(pos.conv(hidden.transpose(1, 2))[:, :, : hidden.shape[1]].transpose(1, 2))

    fns: dict[str, Callable[[], object]] = {
        "conv_stack_ours": lambda: model.conv_features(wav),
        "conv_stack_plain_modules": plain_conv_stack,
        "pos_conv_ours_fft": lambda: pos(hidden),
        "pos_conv_plain_conv1d": plain_pos_conv,
        "feature_projection": lambda: model.feature_projection(feats),
        "transformer_layer_0": lambda: model.encoder.layers[0](hidden),
    }
    if hf is not None:
        twin: Any = hf
        fns["conv_stack_transformers"] = lambda: twin.feature_extractor(wav)
        fns["pos_conv_transformers"] = lambda: twin.encoder.pos_conv_embed(hidden)
    return {k: round(v["median_s"] * 1e3, 1) for k, v in time_alternately(fns, repeats).items()}


def bf16_agreement(model: HubertModel, n_clips: int) -> dict[str, Any]:
    """Per-frame cosine between bfloat16 and float32 features on the first ``n_clips`` Asterisk prompts."""
    from pathlib import Path

    from anchorvoice.audio_io import read_audio

    files = sorted(Path(PROMPTS).glob("*.g722"))[:n_clips]
    if not files:
        return {"skipped": f"no Asterisk prompts in {PROMPTS} (apt install asterisk-core-sounds-en-g722)"}
    cos, rel = [], []
    with torch.inference_mode():
        for f in files:
            wav = torch.from_numpy(read_audio(f, 16000).samples.astype(np.float32))[None]
            if wav.shape[1] < model.min_samples:
                continue
            model.use_precision("float32")
            exact = model(wav)[0]
            model.use_precision("bfloat16")
            low = model(wav)[0]
            cos.append(F.cosine_similarity(exact, low, dim=-1))
            rel.append(float((low - exact).norm() / exact.norm()))
    model.use_precision("float32")
    c = torch.cat(cos)
    return {"clips": len(rel), "frames": int(c.numel()), "cosine_median": round(float(c.median()), 6),
            "cosine_p1": round(float(c.quantile(0.01)), 6), "cosine_min": round(float(c.min()), 6),
            "relative_l2_median": round(statistics.median(rel), 5),
            "weights": "the model's own (random unless --hubert names a real folder)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--hubert", default="", help="chinese-hubert-base folder (default: random weights)")
    ap.add_argument("--transformers", action="store_true", help="also time transformers.HubertModel")
    ap.add_argument("--parts", action="store_true", help="also time the parts (conv stack, positional conv, layer)")
    ap.add_argument("--bf16", action="store_true", help="also time the bfloat16 mode and its agreement on real speech")
    ap.add_argument("--agree-clips", type=int, default=40, help="Asterisk prompts for the bf16 agreement")
    args = ap.parse_args()
    print(machine_line(args.threads))

    torch.set_num_threads(args.threads)
    roomy_onednn_cache()  # float32, bf16 and transformers each have their own kernels
    torch.manual_seed(0)
    model = build_hubert(load_hubert(args.hubert)) if args.hubert else HubertModel(HubertConfig()).eval()
    n_params = sum(p.numel() for p in model.parameters())
    wav = torch.from_numpy(speech_like(args.seconds))[None]

    hf = transformers_twin(model) if args.transformers else None
    times: list[float] = []
    hf_times: list[float] = []
    # CPU seconds of this process per run: on a shared, overloaded machine wall time measures the
    # neighbours; CPU time / threads is what the run would take with its cores to itself.
    cpu: list[float] = []
    hf_cpu: list[float] = []
    bf_times: list[float] = []
    max_diff = None
    with torch.inference_mode():
        out = model(wav)  # warm-up
        if hf is not None:
            max_diff = float((hf(wav).last_hidden_state - out).abs().max())
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = model(wav)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            if hf is not None:
                t0, c0 = time.perf_counter(), time.process_time()
                hf(wav)
                hf_times.append(time.perf_counter() - t0)
                hf_cpu.append(time.process_time() - c0)
            if args.bf16:
                model.use_precision("bfloat16")
                if not bf_times:
                    model(wav)  # builds the bf16 weight copies
                t0 = time.perf_counter()
                model(wav)
                bf_times.append(time.perf_counter() - t0)
                model.use_precision("float32")
        parts = part_times(model, hf, wav, args.repeats) if args.parts else None
    med = statistics.median(times)
    official = OFFICIAL_SECONDS_FOR_10S * args.seconds / 10.0
    extra: dict[str, object] = {}
    if parts is not None:
        extra["parts_median_ms"] = parts
    if args.bf16:
        bf_med = statistics.median(bf_times)
        extra |= {"bf16_median_s": round(bf_med, 4), "bf16_speedup_vs_float32_same_run": round(med / bf_med, 3),
                  "bf16_agreement_real_speech": bf16_agreement(model, args.agree_clips)}
        if hf_times:
            extra["bf16_speedup_vs_transformers_same_run"] = round(statistics.median(hf_times) / bf_med, 3)
    if hf is not None:
        hf_med = statistics.median(hf_times)
        extra |= {
            "transformers_median_s": round(hf_med, 4),
            "transformers_min_s": round(min(hf_times), 4),
            "transformers_cpu_s_median": round(statistics.median(hf_cpu), 4),
            "cpu_ratio_transformers_over_ours": round(statistics.median(hf_cpu) / statistics.median(cpu), 3),
            "speedup_vs_transformers_same_run": round(hf_med / med, 3),
            "max_abs_diff_vs_transformers": max_diff,
            "transformers_runs_s": [round(t, 4) for t in hf_times],
        }
    print(
        json.dumps(
            {
                "params_m": round(n_params / 1e6, 2),
                "audio_s": args.seconds,
                "frames": int(out.shape[1]),
                "threads": args.threads,
                "median_s": round(med, 4),
                "min_s": round(min(times), 4),
                "cpu_s_median": round(statistics.median(cpu), 4),
                "cpu_s_per_thread_median": round(statistics.median(cpu) / args.threads, 4),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "rtf": round(med / args.seconds, 4),
                "official_s": official,
                "speedup_vs_official": round(official / med, 3),
                "runs_s": [round(t, 4) for t in times],
                **extra,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
