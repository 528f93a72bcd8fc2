"""The float32 floor of a GPT (s1) training cycle on this CPU: its GEMMs and its attention alone.

    python -m bench.train_gpt_floor [--batch 4] [--phones 64] [--tokens 300] [--threads 2] [--repeats 5] [--cycle]

The shapes are `python -m bench.train_gpt_step`'s (full-size v2: 24 layers, 512 wide, 16 heads, FFN 2048;
one cycle = 4 batches of ``--batch`` items of ``--phones + --tokens`` positions). Per layer and batch it
times the three products of each of the four weight matrices (forward ``x W^T``, input gradient ``g W``,
weight gradient ``g^T x``) with MKL (``torch.mm``, what autograd runs) and with oneDNN's linear, and the
attention forward + backward with PyTorch's flash kernel and its math kernel, each the median of
``--repeats``. Scaled to a cycle, the faster GEMMs plus the faster attention are what any float32 trainer
on this CPU pays at least; ``--cycle`` also times our trainer's cycle in the same run for the share.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.machine import machine_line
from bench.timing import roomy_onednn_cache

LAYERS, WIDTH, HEADS, FFN = 24, 512, 16, 2048
BATCHES_PER_CYCLE = 4


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _mkl(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> None:
    """Forward, input-gradient and weight-gradient products as autograd runs them (MKL)."""
    torch.mm(x, w.t()), torch.mm(g, w), torch.mm(g.t(), x)


def _onednn(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor, w_t: torch.Tensor, g_t: torch.Tensor,
            x_t: torch.Tensor) -> None:
    """The same three products through oneDNN's linear (its weight operand contiguous)."""
    op = torch.ops.mkldnn._linear_pointwise
    op(x, w, None, "none", [], ""), op(g, w_t, None, "none", [], ""), op(g_t, x_t, None, "none", [], "")


def gemms_ms(rows: int, repeats: int) -> tuple[float, float, float]:
    """(MKL ms, oneDNN ms, GFLOP) of one layer's forward and backward products for one batch."""
    mkl = dnn = flop = 0.0
    with torch.no_grad():
        for n, k in ((3 * WIDTH, WIDTH), (WIDTH, WIDTH), (FFN, WIDTH), (WIDTH, FFN)):
            x, w, g = torch.randn(rows, k), torch.randn(n, k), torch.randn(rows, n)
            ops = (x, w, g, w.t().contiguous(), g.t().contiguous(), x.t().contiguous())
            mkl += median_ms(functools.partial(_mkl, x, w, g), repeats)
            dnn += median_ms(functools.partial(_onednn, *ops), repeats)
            flop += 3 * 2.0 * rows * n * k / 1e9
    return mkl, dnn, flop


def attention_ms(batch: int, phones: int, tokens: int, repeats: int) -> dict[str, float]:
    """Forward + backward ms of one layer's attention for one batch, with the training prefix mask."""
    length, head_dim = phones + tokens, WIDTH // HEADS
    q, k, v = (torch.randn(batch, HEADS, length, head_dim, requires_grad=True) for _ in range(3))
    mask = torch.ones(length, length, dtype=torch.bool).tril()
    mask[:, :phones] = True
    mask[:phones, phones:] = False

    def run(backend: SDPBackend) -> None:
        with sdpa_kernel(backend):
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()

    return {name: median_ms(lambda b=backend: run(b), repeats)
            for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("math", SDPBackend.MATH))}


def our_cycle_s(args: argparse.Namespace) -> float:
    from bench import train_gpt_step
    from bench.fullsize import write_gpt

    with tempfile.TemporaryDirectory() as d:
        ckpt = write_gpt(Path(d) / "s1.ckpt")
        ns = argparse.Namespace(batch=args.batch, phones=args.phones, tokens=args.tokens, size="full")
        run, _, _ = train_gpt_step.cycle(ns, ckpt, Path(d), "ours")
        return median_ms(run, args.repeats) / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--phones", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cycle", action="store_true", help="also time our trainer's cycle in this run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    roomy_onednn_cache()
    print(machine_line(args.threads), flush=True)
    per_cycle = LAYERS * BATCHES_PER_CYCLE
    mkl, dnn, flop = gemms_ms(args.batch * (args.phones + args.tokens), args.repeats)
    attn = attention_ms(args.batch, args.phones, args.tokens, args.repeats)
    print(f"one layer, one batch: GEMMs MKL {mkl:.1f} ms ({flop / mkl * 1e3:.0f} GFLOP/s), oneDNN {dnn:.1f} ms; "
          f"attention fwd+bwd flash {attn['flash']:.1f} ms, math {attn['math']:.1f} ms")
    floor = per_cycle * (min(mkl, dnn) + min(attn.values())) / 1e3
    print(f"per cycle ({per_cycle} layer-batches): GEMMs {per_cycle * min(mkl, dnn) / 1e3:.2f} s + attention "
          f"{per_cycle * min(attn.values()) / 1e3:.2f} s = float32 floor {floor:.2f} s", flush=True)
    if args.cycle:
        ours = our_cycle_s(args)
        print(f"our float32 cycle in this run: {ours:.2f} s (the floor is {100 * floor / ours:.0f}% of it); a "
              f"trainer can beat an official cycle of T s by at most T / {floor:.2f}")


if __name__ == "__main__":
    main()
