"""T2S (GPT) speed: prefill time and decode tokens/s of the full-size v2 model, vs BASELINE.md.

Work (as ``shared/gsv_reference/BASELINE.md``): full-size v2 T2S (24 layers, 512 wide, 16 heads,
FFN 2048, vocab 1025, 732 phones) with random weights, ``torch.set_num_threads(2)``; prefill =
60 phones (BERT zeros) + 150 prompt tokens up to the first sampled token; decode = 250 tokens with
EOS kept off (the EOS row of the head is zeroed, and the count is checked), official sampling
defaults (top_k 15, penalty 1.35). Median of ``--repeats`` runs after a warm-up.

Reduced precision is compared with float32 on the same inputs: greedy decode until the first
differing token, and teacher-forced top-1 agreement (both fed the float32 tokens, EOS column
dropped) over all steps. Random weights give flatter logits than a trained model, so these
agreement figures are a pessimistic proxy.

``int8`` decode steps run the numba weight-only-int8 step (:mod:`anchorvoice.plugins.gsv.t2s_step`) with
``--threads`` numba threads; its one-time JIT compile (or on-disk cache load) falls in the warm-up,
whose time is printed.

``--official DIR`` (a GPT-SoVITS checkout's ``GPT_SoVITS`` folder) also times the official
``T2STransformer.process_prompt`` / ``decode_next_token`` loop on the same weights in the same run,
for a same-machine ratio (its training-only imports tqdm/torchmetrics are stubbed if missing).

Usage: ``python bench/t2s_rtf.py [--repeats 5] [--precisions float32,int8] [--official DIR]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anchorvoice.plugins.gsv.kv_cache import T2SRuntime  # noqa: E402
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder, prefix_mask  # noqa: E402
from anchorvoice.plugins.gsv.t2s_sampling import SamplingConfig, decode_stream, make_generator, sample_tokens  # noqa: E402
from bench.machine import machine_line  # noqa: E402

OFFICIAL_PREFILL_S = 0.29  # BASELINE.md: T2S prefill, 60 phones + 150 prompt tokens
OFFICIAL_DECODE_MS = 32.5  # BASELINE.md: T2S decode, KV cache, batch 1, 250 tokens, EOS off


def build_model(seed: int) -> Text2SemanticDecoder:
    torch.manual_seed(seed)
    model = Text2SemanticDecoder(T2SConfig()).eval().requires_grad_(False)
    # like the reference fixture (README 8): a sharper head so greedy margins resemble a trained model
    model.ar_predict_layer.weight.mul_(4.0)
    model.ar_predict_layer.weight[model.config.eos].zero_()  # EOS logit 0: never the top-15 choice here
    return model


def time_ours(runtime: T2SRuntime, phones, bert, prompt, tokens: int, seed: int) -> tuple[float, float]:
    """(prefill seconds to the first token, decode ms per later token)."""
    cfg = SamplingConfig(early_stop_num=tokens - 1)
    t0 = time.perf_counter()
    first, n = 0.0, 0
    for _ in decode_stream(runtime, phones, bert, prompt, cfg, make_generator(seed)):
        n += 1
        if n == 1:
            first = time.perf_counter()
    end = time.perf_counter()
    if n != tokens:
        raise RuntimeError(f"decoded {n} tokens, expected {tokens} (EOS must stay off)")
    return first - t0, (end - first) / (tokens - 1) * 1000


def official_timer(folder: Path, model: Text2SemanticDecoder) -> Callable[..., tuple[float, float]]:
    """Load the official T2S classes from a checkout and return a timer like :func:`time_ours`."""
    from bench.official_stubs import stub_module

    stub_module("tqdm", tqdm=lambda it, *a, **k: it)
    stub_module("torchmetrics")
    stub_module("torchmetrics.classification", MulticlassAccuracy=lambda *a, **k: torch.nn.Identity())
    sys.path.insert(0, str(folder))
    from AR.models.t2s_model import Text2SemanticDecoder as Official  # type: ignore[import-not-found]
    from AR.models.utils import sample  # type: ignore[import-not-found]

    c = model.config
    conf = {"model": {"hidden_dim": c.hidden_dim, "embedding_dim": c.embedding_dim, "head": c.head,
                      "n_layer": c.n_layer, "vocab_size": c.vocab_size, "phoneme_vocab_size": c.phoneme_vocab_size,
                      "dropout": 0, "EOS": c.eos}}  # fmt: skip
    off = Official(conf, top_k=3)
    off.load_state_dict(model.state_dict(), strict=True)
    off.eval()

    @torch.no_grad()
    def run(phones, bert, prompt, tokens: int, seed: int) -> tuple[float, float]:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        x = off.ar_text_position(off.ar_text_embedding(phones[None]) + off.bert_proj(bert[None].transpose(1, 2)))
        y = prompt[None]
        xy = torch.cat([x, off.ar_audio_position(off.ar_audio_embedding(y))], dim=1)
        blocked = ~prefix_mask(x.shape[1], y.shape[1])[None, None].expand(1, c.head, -1, -1)
        dec, k, v = off.t2s_transformer.process_prompt(xy, blocked, None)
        first = 0.0
        for idx in range(tokens):
            logits = off.ar_predict_layer(dec[:, -1])[:, :-1]  # EOS kept off
            s = sample(logits, y, top_k=15, top_p=1.0, repetition_penalty=1.35, temperature=1.0)[0]
            y = torch.cat([y, s], dim=1)
            if idx == 0:
                first = time.perf_counter()
            if idx == tokens - 1:
                break
            emb = off.ar_audio_embedding(y[:, -1:])
            xy = emb * off.ar_audio_position.x_scale + off.ar_audio_position.alpha * off.ar_audio_position.pe[
                :, prompt.shape[0] + idx
            ].to(emb.dtype)
            dec, k, v = off.t2s_transformer.decode_next_token(xy, k, v)
        end = time.perf_counter()
        return first - t0, (end - first) / (tokens - 1) * 1000

    return run


VARIANTS = {
    "float32-aten": dict(precision="float32", fused_step=False),
    "int8-f32cache": dict(precision="int8", int8_cache=False),
}
"""Variants besides the plain precisions: float32 decode steps through the per-layer ATen calls; int8
weights attending over the float32 cache instead of its int8 copy."""


def runtime_for(model: Text2SemanticDecoder, variant: str) -> T2SRuntime:
    """The runtime of a ``--precisions`` entry (a precision or a name in VARIANTS)."""
    return T2SRuntime(model, **VARIANTS.get(variant, {"precision": variant}))  # type: ignore[arg-type]


def agreement(model: Text2SemanticDecoder, variant: str, phones, bert, prompt, tokens: int) -> tuple[int, float]:
    """(first greedy step where the tokens differ or ``tokens``, teacher-forced top-1 agreement)."""
    cfg = SamplingConfig(top_k=1, early_stop_num=tokens - 1)
    ref = list(decode_stream(T2SRuntime(model), phones, bert, prompt, cfg, make_generator(0)))
    red = list(decode_stream(runtime_for(model, variant), phones, bert, prompt, cfg, make_generator(0)))
    first_diff = next((i for i, (a, b) in enumerate(zip(ref, red, strict=True)) if a != b), tokens)
    same = 0
    runtimes = [T2SRuntime(model), runtime_for(model, variant)]
    with torch.inference_mode():
        xy = torch.cat([model.embed_text(phones[None], bert[None]), model.embed_audio(prompt[None])], dim=1)
        caches = [rt.new_cache(1, xy.shape[1] + tokens) for rt in runtimes]
        step = [rt.forward(xy, cache, prefix_mask(len(phones), len(prompt))) for rt, cache in zip(runtimes, caches)]
        history = prompt[None]
        for i, tok in enumerate(ref):
            picks = [sample_tokens(s[:, :-1].clone(), history, cfg, make_generator(0)) for s in step]
            same += int(picks[0][0] == picks[1][0])
            history = torch.cat([history, torch.tensor([[tok]])], dim=1)
            nxt = model.embed_audio(torch.tensor([[tok]]), len(prompt) + i)
            step = [rt.forward(nxt, cache) for rt, cache in zip(runtimes, caches)]
    return first_diff, same / len(ref)


def fixture_agreement(variant: str) -> str:
    """Greedy tokens of the official fixture cases (shared/gsv_reference, small s1) in ``variant``."""
    import numpy as np

    from anchorvoice.plugins.gsv.t2s_model import load_t2s

    root = Path(__file__).resolve().parents[2] / "shared" / "gsv_reference"
    if not (root / "s1_v2_small.ckpt").is_file():
        return "fixtures not found"
    runtime = runtime_for(load_t2s(root / "s1_v2_small.ckpt"), variant)
    cfg = SamplingConfig(top_k=1, early_stop_num=29)
    same, total = 0, 0
    for case in ("t2s_prompted_greedy", "t2s_eos", "t2s_ref_free"):
        d = np.load(root / "cases" / f"{case}.npz")
        prompt = torch.from_numpy(d["in_prompt"][0]) if "in_prompt" in d else None
        args = (torch.from_numpy(d["in_phones"][0]), torch.from_numpy(d["in_bert"][0]), prompt)
        got = list(decode_stream(runtime, *args, cfg, make_generator(0)))
        exp = d["exp_generated"][0].tolist()
        same += sum(a == b for a, b in zip(got, exp)) if len(got) == len(exp) else 0
        total += len(exp)
    return f"{same}/{total} fixture tokens identical to the official float32 output (3 greedy cases)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--phones", type=int, default=60)
    ap.add_argument("--prompt", type=int, default=150)
    ap.add_argument(
        "--precisions",
        default="float32,int8",
        help="comma list of float32, bfloat16, int8, float32-aten (float32 decode steps through the "
        "per-layer ATen calls instead of the fused numba step) and int8-f32cache (int8 weights, float32 cache)",
    )
    ap.add_argument("--official", type=Path, default=None, help="GPT-SoVITS checkout's GPT_SoVITS folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    model = build_model(args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    phones = torch.randint(0, 732, (args.phones,), generator=g)
    bert = torch.zeros(1024, args.phones)
    prompt = torch.randint(0, 1024, (args.prompt,), generator=g)
    precisions = [p for p in args.precisions.split(",") if p]

    timers: dict[str, Callable[..., tuple[float, float]]] = {}
    if args.official:
        timers["official"] = official_timer(args.official, model)
    for prec in precisions:
        runtime = runtime_for(model, prec)
        timers[prec] = lambda *a, rt=runtime: time_ours(rt, *a)

    print(machine_line(args.threads), flush=True)
    load = os.getloadavg()[0]
    print(f"T2S full-size v2, random weights, {args.threads} threads, {args.phones} phones + {args.prompt} prompt, "
          f"{args.tokens} tokens, median of {args.repeats}; load average at start {load:.1f}", flush=True)  # fmt: skip
    for name, timer in timers.items():  # warm-up (allocator, oneDNN/fbgemm kernels, numba compile)
        t0 = time.perf_counter()
        timer(phones, bert, prompt, 12, args.seed)
        print(f"  warm-up {name}: {time.perf_counter() - t0:.2f} s (12 tokens, first call)", flush=True)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in timers}
    for r in range(args.repeats):  # interleaved so that machine load hits every variant alike
        for name, timer in timers.items():
            runs[name].append(timer(phones, bert, prompt, args.tokens, args.seed + r))
            pre, dec = runs[name][-1]
            print(f"  run {r + 1} {name}: prefill {pre:.3f} s, {dec:.2f} ms/token", flush=True)
    print(f"{'variant':10} {'prefill s':>10} {'ms/token':>9} {'tokens/s':>9} {'x prefill':>10} {'x decode':>9}")
    for name, got in runs.items():
        pre = statistics.median(p for p, _ in got)
        dec = statistics.median(d for _, d in got)
        print(f"{name:10} {pre:10.3f} {dec:9.2f} {1000 / dec:9.1f} {OFFICIAL_PREFILL_S / pre:10.2f} "
              f"{OFFICIAL_DECODE_MS / dec:9.2f}   (min {min(d for _, d in got):.2f} ms/token)", flush=True)  # fmt: skip
    print(
        f"x = speed-up vs BASELINE.md (official {OFFICIAL_PREFILL_S} s prefill, {OFFICIAL_DECODE_MS} ms/token, "
        "measured on another 2-core machine)"
    )
    if "official" in runs:
        off = statistics.median(d for _, d in runs["official"])
        for name in precisions:
            ours = statistics.median(d for _, d in runs[name])
            print(f"{name}: {off / ours:.2f}x the official decode tokens/s in this run (same machine, same load)")
    for prec in precisions:
        if not prec.startswith("float32"):
            first_diff, agree = agreement(model, prec, phones, bert, prompt, args.tokens)
            print(f"{prec} vs float32 (greedy): identical for the first {first_diff} of {args.tokens} tokens; "
                  f"teacher-forced top-1 agreement {100 * agree:.1f}%", flush=True)  # fmt: skip
            print(f"{prec}: {fixture_agreement(prec)}", flush=True)


if __name__ == "__main__":
    main()
