"""One-token T2S decode step, all layers in one numba function, on int8 or float32 weights.

A decode step multiplies one hidden vector per batch row by every weight matrix of the 24 layers
and reads every cached key/value once: it is bound by memory traffic (~75 MB of int8 weights, or
302 MB of float32, plus ``length`` x 24 layers x 4 KB of float32 cache per token on the full-size
model, or 1 KB and two scales on the int8 copy of the cache that int8 attends over:
:mod:`anchorvoice.plugins.gsv.t2s_attention`). Through torch it also pays ~250 small ATen calls and as
many fork/joins of the thread pool; :func:`decode_step` runs the whole step in one compiled call.

Weights: :class:`anchorvoice.plugins.gsv.t2s_step_weights.StepWeights`. int8 per output row
(``scale = max|w_row| / 127``, ``q = round(w / scale)`` in [-127, 127]) with float32 activations (no
activation quantization), so ``y = scale * (q @ x) + bias`` is the float32 product with the
dequantized weight ``q * scale``; or float32 with scales of 1, the model's own product in another
summation order (numba compiles one version of the step per weight dtype).

Work split: 2 parallel regions per layer (one per matrix would mean 4 fork/joins of the thread
pool), each cut into one contiguous chunk per thread with its own partial sum, added in a fixed
order (results do not depend on scheduling):

* attention block, chunks of heads: head h's q/k/v rows of ``in_proj`` (dot products), its k/v
  written into the cache at ``length``, attention of the one query over positions ``[0, length]``,
  and head h's share of ``out_proj`` (a partial sum over the head's ``head_dim`` input columns);
  then the partials are added, residual and LayerNorm 1;
* FFN block, chunks of ``FFN_BLOCK`` hidden units: ``relu(linear1)`` rows of the block and the
  block's partial sum of ``linear2``, skipping units that ReLU set to 0 (their terms are exactly
  0); then residual and LayerNorm 2.

Threads: torch's intra-op thread count at call time (``torch.set_num_threads``, which the engine's
``threads`` setting sets), capped at numba's pool size, so the step never uses more cores than the
rest of the model.

``out_proj`` and ``linear2`` are stored transposed (input-major, ``(n_layer, K, N)``) so that a
partial sum over input columns reads contiguous rows; their scales stay per output row ``N``
(the original matrix's rows), so the quantized values equal those of the untransposed layout.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import torch
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic
from torch import Tensor

from anchorvoice.plugins.gsv.t2s_attention import FAST, LAUNCH, attend, attend_int8, quantize_row
from anchorvoice.plugins.gsv.t2s_step_weights import StepWeights

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]

_NO_INT8_CACHE = (np.empty((0,) * 5, np.int8), np.empty((0,) * 4, np.float32)) * 2
"""Empty stand-ins for the int8 cache arrays (the step then attends over the float32 cache); never written."""

FFN_BLOCK = 64
"""Hidden units per block of the FFN; each thread takes a contiguous run of blocks."""

PREFETCH_ROWS = 16
"""Weight rows prefetched ahead of the one being read (8 KB at 512 int8 per row, 32 KB at float32).

One core streams from DRAM at ~7 GB/s with the hardware prefetcher alone and ~8.5 GB/s with
these software hints (~11 -> ~14 GB/s on 2 cores; measured on the 2-core dev VM, int8 GEMV).
The attention reads the cache without hints: there they made the step slower (12.7 vs 10.4 ms).
"""


@intrinsic
def _prefetch(typingctx, arr, row, col):  # type: ignore[no-untyped-def]
    """Hint the CPU to load the cache line of arr[row, col] (2-D array); no effect on results.

    ``llvm.prefetch`` (read, high locality): a hint that never faults; targets without a prefetch
    instruction drop it.
    """
    if not isinstance(arr, numba.types.Array) or arr.ndim != 2:
        return None
    sig = numba.types.void(arr, row, col)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        inds = [context.cast(builder, args[i], signature.args[i], numba.types.intp) for i in (1, 2)]
        shape = cgutils.unpack_tuple(builder, ary.shape)
        strides = cgutils.unpack_tuple(builder, ary.strides)
        ptr = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides, aty.layout, inds)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True)
def _prefetch_rows(a: npt.NDArray[np.generic], row0: int, rows: int) -> None:
    """Prefetch rows [row0, row0 + rows) of a 2-D array, clipped to its last row."""
    step = max(1, 64 // a.itemsize)
    for r in range(row0, min(row0 + rows, a.shape[0])):
        for c in range(0, a.shape[1], step):
            _prefetch(a, r, c)  # type: ignore[call-arg]


@numba.njit(fastmath=FAST, cache=True)
def _dot_rows(w: I8 | F32, row0: int, rows: int, x: F32, out: F32) -> None:
    """out[r] = sum_i w[row0 + r, i] * x[i] for r < rows; 4 rows share each load of x."""
    k = x.shape[0]
    whole = rows - rows % 4
    for r in range(0, whole, 4):
        o = row0 + r
        _prefetch_rows(w, o + PREFETCH_ROWS, 4)
        a0 = np.float32(0.0)
        a1 = np.float32(0.0)
        a2 = np.float32(0.0)
        a3 = np.float32(0.0)
        for i in range(k):
            xi = x[i]
            a0 += np.float32(w[o, i]) * xi
            a1 += np.float32(w[o + 1, i]) * xi
            a2 += np.float32(w[o + 2, i]) * xi
            a3 += np.float32(w[o + 3, i]) * xi
        out[r] = a0
        out[r + 1] = a1
        out[r + 2] = a2
        out[r + 3] = a3
    for r in range(whole, rows):
        a = np.float32(0.0)
        for i in range(k):
            a += np.float32(w[row0 + r, i]) * x[i]
        out[r] = a


@numba.njit(fastmath=FAST, cache=True)
def _axpy_rows(w_t: I8 | F32, row0: int, coef: F32, acc: F32) -> None:
    """acc[n] += sum_j coef[j] * w_t[row0 + j, n]; rows with coef 0 are skipped (ReLU zeros)."""
    n_out = acc.shape[0]
    for j in range(coef.shape[0]):
        c = coef[j]
        row = row0 + j
        _prefetch_rows(w_t, row + PREFETCH_ROWS, 1)
        if c != 0.0:
            for n in range(n_out):
                acc[n] += c * np.float32(w_t[row, n])


@numba.njit(fastmath=FAST, cache=True)
def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> None:
    """In place: x = (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as torch)."""
    d = x.shape[0]
    mean = np.float32(0.0)
    for i in range(d):
        mean += x[i]
    mean /= d
    var = np.float32(0.0)
    for i in range(d):
        t = x[i] - mean
        var += t * t
    inv = np.float32(1.0 / np.sqrt(var / d + eps))
    for i in range(d):
        x[i] = (x[i] - mean) * inv * weight[i] + bias[i]


@numba.njit(fastmath=FAST, cache=True)
def _add_partials(x: F32, partials: F32, scale: F32, bias: F32, tmp: F32) -> None:
    """x (D,) += scale * sum_c partials[c] + bias; partials (C, D) summed in a fixed order."""
    tmp[:] = partials[0]
    for c in range(1, partials.shape[0]):
        tmp += partials[c]
    for n in range(x.shape[0]):
        x[n] += tmp[n] * scale[n] + bias[n]


@numba.njit(parallel=True, fastmath=FAST, cache=True)
def _step(
    x: F32,
    qkv: I8 | F32,
    qkv_scale: F32,
    qkv_bias: F32,
    out_t: I8 | F32,
    out_scale: F32,
    out_bias: F32,
    ff1: I8 | F32,
    ff1_scale: F32,
    ff1_bias: F32,
    ff2_t: I8 | F32,
    ff2_scale: F32,
    ff2_bias: F32,
    norm1_weight: F32,
    norm1_bias: F32,
    norm2_weight: F32,
    norm2_bias: F32,
    eps: float,
    keys: F32,
    values: F32,
    keys_q: I8,
    keys_scale: F32,
    values_q: I8,
    values_scale: F32,
    length: int,
    mask: npt.NDArray[np.bool_],
    threads: int,
) -> None:
    """x (B, D) in place: input hidden -> output of the last layer. See :func:`decode_step`.

    Each parallel region is split into one contiguous chunk of heads (or FFN blocks) per thread,
    every chunk with its own partial sum, so the result does not depend on thread scheduling.
    """
    n_layer = qkv.shape[0]
    batch, d = x.shape
    heads, hd = keys.shape[2], keys.shape[4]
    f = ff1.shape[1]
    n_blocks = (f + FFN_BLOCK - 1) // FFN_BLOCK
    pos = length + 1
    head_chunks = max(1, min(threads, heads))
    ffn_chunks = max(1, min(threads, n_blocks))
    part_attn = np.empty((head_chunks, batch, d), dtype=np.float32)
    part_ffn = np.empty((ffn_chunks, batch, d), dtype=np.float32)
    proj = np.empty((head_chunks, 3 * hd), dtype=np.float32)
    score = np.empty((head_chunks, pos), dtype=np.float32)
    attn = np.empty((head_chunks, hd), dtype=np.float32)
    hidden = np.empty((ffn_chunks, FFN_BLOCK), dtype=np.float32)
    tmp = np.empty(d, dtype=np.float32)
    no_mask = np.empty(0, dtype=np.bool_)
    quantized = keys_q.shape[0] > 0
    for layer in range(n_layer):
        w_qkv = qkv[layer]
        w_out = out_t[layer]
        for c in numba.prange(head_chunks):
            part_attn[c] = 0.0
            pr = proj[c]
            for h in range(c * heads // head_chunks, (c + 1) * heads // head_chunks):
                for b in range(batch):
                    for part in range(3):  # q, k, v rows of head h
                        row0 = part * d + h * hd
                        _dot_rows(w_qkv, row0, hd, x[b], pr[part * hd : (part + 1) * hd])
                        for r in range(hd):
                            pr[part * hd + r] = (
                                pr[part * hd + r] * qkv_scale[layer, row0 + r] + qkv_bias[layer, row0 + r]
                            )
                    k_cache = keys[layer, b, h]
                    v_cache = values[layer, b, h]
                    k_cache[length] = pr[hd : 2 * hd]
                    v_cache[length] = pr[2 * hd :]
                    mask_row = mask[b] if mask.shape[1] > 0 else no_mask
                    if quantized:
                        kq, ks = keys_q[layer, b, h], keys_scale[layer, b, h]
                        vq, vs = values_q[layer, b, h], values_scale[layer, b, h]
                        ks[length] = quantize_row(k_cache[length], kq[length])
                        vs[length] = quantize_row(v_cache[length], vq[length])
                        attend_int8(pr[:hd], kq, ks, vq, vs, pos, mask_row, score[c], attn[c])
                    else:
                        attend(pr[:hd], k_cache, v_cache, pos, mask_row, score[c], attn[c])
                    _axpy_rows(w_out, h * hd, attn[c], part_attn[c, b])
        for b in range(batch):
            _add_partials(x[b], part_attn[:, b], out_scale[layer], out_bias[layer], tmp)
            _layer_norm(x[b], norm1_weight[layer], norm1_bias[layer], eps)
        w1 = ff1[layer]
        w2 = ff2_t[layer]
        for c in numba.prange(ffn_chunks):
            part_ffn[c] = 0.0
            for blk in range(c * n_blocks // ffn_chunks, (c + 1) * n_blocks // ffn_chunks):
                row0 = blk * FFN_BLOCK
                size = min(FFN_BLOCK, f - row0)
                hid = hidden[c, :size]
                for b in range(batch):
                    _dot_rows(w1, row0, size, x[b], hid)
                    for r in range(size):
                        v = hid[r] * ff1_scale[layer, row0 + r] + ff1_bias[layer, row0 + r]
                        hid[r] = v if v > 0.0 else 0.0
                    _axpy_rows(w2, row0, hid, part_ffn[c, b])
        for b in range(batch):
            _add_partials(x[b], part_ffn[:, b], ff2_scale[layer], ff2_bias[layer], tmp)
            _layer_norm(x[b], norm2_weight[layer], norm2_bias[layer], eps)


def decode_step(
    weights: StepWeights,
    x: Tensor,
    keys: Tensor,
    values: Tensor,
    length: int,
    attend: Tensor | None,
    int8_cache: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
) -> Tensor:
    """Run all layers for one new position per batch row.

    x (B, D) float32: the embedded token; keys/values (L, B, H, capacity, hd) float32 CPU cache
    tensors (written in place at ``length``, so capacity > length); attend None or bool
    (B, length + 1), True = may attend (every row needs at least one True). Returns the last
    layer's output (B, D) float32 (a new tensor). The cache length is not advanced here.

    ``int8_cache``: (keys_q, keys_scale, values_q, values_scale), int8 (L, B, H, capacity, hd) and
    float32 (L, B, H, capacity), holding positions ``[0, length)`` quantized
    (:func:`anchorvoice.plugins.gsv.t2s_attention.quantize_row`); attention then reads them instead of
    the float32 cache, and the new position is written to both.
    """
    batch, d = x.shape
    if keys.dtype != torch.float32 or keys.device.type != "cpu" or not keys.is_contiguous():
        raise ValueError("the fused decode step needs a contiguous float32 CPU cache")
    if keys.shape[3] <= length:
        raise ValueError(f"cache capacity {keys.shape[3]} has no room for position {length}")
    if keys.shape[1] != batch or keys.shape[2] * keys.shape[4] != d:
        raise ValueError(f"cache shape {tuple(keys.shape)} does not match hidden states {tuple(x.shape)}")
    if attend is None:
        mask = np.ones((batch, 0), dtype=np.bool_)
    else:
        if attend.dtype != torch.bool or attend.shape != (batch, length + 1):
            raise ValueError(f"attend must be bool ({batch}, {length + 1}), got {attend.dtype} {tuple(attend.shape)}")
        mask = np.ascontiguousarray(attend.numpy())
    quant: tuple[npt.NDArray[Any], ...]
    if int8_cache is None:
        quant = _NO_INT8_CACHE
    else:
        if any(t.shape[:4] != keys.shape[:4] or not t.is_contiguous() for t in int8_cache):
            raise ValueError("the int8 cache must be contiguous and shaped like the float32 cache")
        quant = tuple(t.numpy() for t in int8_cache)
    out = x.detach().to(torch.float32, copy=True).contiguous()
    w = weights
    with LAUNCH:
        _step(
            out.numpy(),
            w.qkv,
            w.qkv_scale,
            w.qkv_bias,
            w.out_t,
            w.out_scale,
            w.out_bias,
            w.ff1,
            w.ff1_scale,
            w.ff1_bias,
            w.ff2_t,
            w.ff2_scale,
            w.ff2_bias,
            w.norm1_weight,
            w.norm1_bias,
            w.norm2_weight,
            w.norm2_bias,
            w.eps,
            keys.numpy(),
            values.numpy(),
            quant[0],
            quant[1],
            quant[2],
            quant[3],
            length,
            mask,
            _threads(),
        )
    return out


def _numba_thread_pool() -> int:
    """Threads numba launched (the documented ``numba.config.NUMBA_NUM_THREADS``; numba.config sets its
    attributes through ``globals()`` at import, so a type checker cannot see them)."""
    config: Any = numba.config
    return int(config.NUMBA_NUM_THREADS)


def _threads() -> int:
    """Threads for this call: torch's intra-op count (numba's own setting is per calling thread)."""
    n = max(1, min(torch.get_num_threads(), _numba_thread_pool()))
    numba.set_num_threads(n)
    return n
