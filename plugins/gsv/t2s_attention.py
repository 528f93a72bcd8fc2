"""Attention of one query over a head's cached keys/values, for the fused decode step.

Two cache forms:

* float32 keys/values (the exact mode);
* int8 keys/values, one float32 scale per (position, head) row of ``head_dim`` values
  (``scale = max|row| / 127``, ``q = round(row / scale)``), a quarter of the bytes. At a few hundred
  positions the cache read is a third of an int8 step's memory traffic (24 layers x 2 x
  ``length`` x 512 values per token).

Scores are computed in one pass, the exponentials in a second, vectorisable one (:func:`fast_exp`:
numba's ``np.exp`` is a scalar libm call per position, SVML is not available in PyPI's llvmlite),
and the weighted sum of values in a third.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

LAUNCH = threading.Lock()
"""One parallel numba launch at a time per process (the decode step, the cache's quantization): numba's
fallback threading layer (workqueue, used where no OpenMP or TBB runtime loads) aborts on parallel launches
from two threads at once; two concurrent steps would only fight over the same cores anyway."""

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]

FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
"""numba fastmath flags: reassociation (vectorised sums) but not 'ninf': masked scores are -inf."""

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693145751953125)
"""ln 2 to 16 bits: n * _LN2_HI is exact for the |n| <= 126 used here."""
_LN2_LO = np.float32(1.428606765330187e-06)
"""ln 2 - _LN2_HI."""


@intrinsic
def _bits_to_f32(typingctx, bits):  # type: ignore[no-untyped-def]
    """The float32 whose bit pattern is the int32 ``bits`` (an IR bitcast, so loops still vectorise)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@numba.njit(fastmath=FAST, cache=True, inline="always")
def fast_exp(x: np.float32) -> np.float32:
    """exp(x) for x <= 0 in float32, within ~2 ulp down to exp(-87); below that, exp(-87) (1.6e-38).

    e**x = 2**n e**r with n = round(x log2 e) (built in the exponent bits) and r = x - n ln 2 (ln 2 in
    two parts, Cody and Waite, so r keeps its low bits), |r| <= ln(2) / 2, by the degree-7 Taylor
    polynomial (remainder under 1e-8 relative).
    """
    x = x if x > np.float32(-87.0) else np.float32(-87.0)
    n = np.floor(x * _LOG2E + np.float32(0.5))
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = np.float32(1 / 5040)
    p = p * r + np.float32(1 / 720)
    p = p * r + np.float32(1 / 120)
    p = p * r + np.float32(1 / 24)
    p = p * r + np.float32(1 / 6)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * _bits_to_f32((np.int32(n) + np.int32(127)) << np.int32(23))  # type: ignore[call-arg]


@numba.njit(fastmath=FAST, cache=True)
def _softmax_weights(score: F32, pos: int, mask_row: npt.NDArray[np.bool_]) -> np.float32:
    """In place: score[t] = exp(score[t] - max), 0 where masked out; returns their sum."""
    use_mask = mask_row.shape[0] > 0
    if use_mask:
        for t in range(pos):
            if not mask_row[t]:
                score[t] = np.float32(-np.inf)
    top = np.float32(-np.inf)
    for t in range(pos):
        top = max(top, score[t])
    total = np.float32(0.0)
    for t in range(pos):
        s = score[t]
        e = fast_exp(s - top) if s != -np.inf else np.float32(0.0)
        score[t] = e
        total += e
    return total


@numba.njit(fastmath=FAST, cache=True)
def attend(q: F32, k_cache: F32, v_cache: F32, pos: int, mask_row: npt.NDArray[np.bool_], score: F32,
           out: F32) -> None:
    """out (hd,) = softmax(q . k[t] / sqrt(hd), t < pos, masked t left out) weighted sum of v[t].

    k_cache/v_cache (capacity, hd) float32; mask_row (pos,) bool or empty (no mask); score (>= pos,)
    scratch.
    """
    hd = q.shape[0]
    inv_sqrt = np.float32(1.0 / np.sqrt(hd))
    for t in range(pos):
        s = np.float32(0.0)
        for r in range(hd):
            s += q[r] * k_cache[t, r]
        score[t] = s * inv_sqrt
    total = _softmax_weights(score, pos, mask_row)
    out[:] = 0.0
    for t in range(pos):
        e = score[t]
        for r in range(hd):
            out[r] += e * v_cache[t, r]
    inv_total = np.float32(1.0) / total
    for r in range(hd):
        out[r] *= inv_total


@numba.njit(fastmath=FAST, cache=True)
def attend_int8(q: F32, k_q: I8, k_scale: F32, v_q: I8, v_scale: F32, pos: int,
                mask_row: npt.NDArray[np.bool_], score: F32, out: F32) -> None:
    """:func:`attend` on an int8 cache: k[t] = k_scale[t] * k_q[t], v[t] = v_scale[t] * v_q[t]."""
    hd = q.shape[0]
    inv_sqrt = np.float32(1.0 / np.sqrt(hd))
    for t in range(pos):
        s = np.float32(0.0)
        for r in range(hd):
            s += q[r] * np.float32(k_q[t, r])
        score[t] = s * (k_scale[t] * inv_sqrt)
    total = _softmax_weights(score, pos, mask_row)
    out[:] = 0.0
    for t in range(pos):
        c = score[t] * v_scale[t]
        for r in range(hd):
            out[r] += c * np.float32(v_q[t, r])
    inv_total = np.float32(1.0) / total
    for r in range(hd):
        out[r] *= inv_total


@numba.njit(fastmath=FAST, cache=True)
def quantize_row(row: F32, dest: I8) -> np.float32:
    """dest = round(row / scale) with scale = max|row| / 127 (0 for an all-zero row); returns scale.

    Computed as ``max|row| * (1 / 127)`` and ``row * (1 / scale)``, as :meth:`KVCache.sync_int8` does in
    torch, so both give the same bits."""
    top = np.float32(0.0)
    for r in range(row.shape[0]):
        top = max(top, abs(row[r]))
    scale = top * np.float32(1.0 / 127.0)
    inv = np.float32(1.0) / scale if scale > 0.0 else np.float32(0.0)
    for r in range(row.shape[0]):
        dest[r] = np.int8(np.round(row[r] * inv))
    return scale


@numba.njit(parallel=True, cache=True)
def quantize_positions(src: F32, dest: I8, scale: F32, start: int, end: int) -> None:
    """:func:`quantize_row` for positions [start, end) of a (L, B, H, capacity, hd) float32 cache into its
    int8 copy ``dest`` and ``scale`` (L, B, H, capacity)."""
    n_layer, batch, heads = src.shape[0], src.shape[1], src.shape[2]
    for i in numba.prange(n_layer * batch * heads):
        layer = i // (batch * heads)
        b = (i // heads) % batch
        h = i % heads
        for t in range(start, end):
            scale[layer, b, h, t] = quantize_row(src[layer, b, h, t], dest[layer, b, h, t])
