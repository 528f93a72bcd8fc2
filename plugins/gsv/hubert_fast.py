"""Fast inference paths for HuBERT's feature encoder and positional convolution (CPU first).

Same results as the plain ``nn.Conv1d`` / ``nn.GroupNorm`` modules of :mod:`anchorvoice.plugins.gsv.hubert` up
to float32 rounding (~1e-6 relative; ``tests/gsv/test_hubert_fast.py``), timed by
``bench/hubert_rtf.py --parts``:

* The feature encoder runs in ``(B, T, C)`` layout from the first conv on, so every conv is a GEMM
  on strided row views of its input (no im2col copy, no transposes; the projection wants
  ``(B, T, C)`` anyway).
* The first GroupNorm (one group per channel) is folded into the first conv: the per-channel mean
  and variance of ``y = frames @ w`` follow from the mean vector and ``K x K`` covariance of the
  waveform frames (float64, centred), so ``GN(conv0(x)) = (frames - mean) @ (w^T * s) + beta``.
* The grouped positional conv (kernel 128, 16 groups) runs as an overlap-save FFT convolution:
  per frequency one ``(blocks, C/G) x (C/G, C/G)`` complex product per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_GELU_ = torch.ops.aten.gelu_
"""In-place exact (erf) GELU: saves a fresh output buffer per layer."""


@dataclass(frozen=True)
class FoldedConv0:
    """First conv with its GroupNorm folded in, for one input batch: ``y = (frames - mean) @ weight + bias``."""

    mean: Tensor
    """(B, K) float32 mean of the waveform frames, subtracted before the GEMM (keeps DC out of it)."""
    weight: Tensor
    """(B, K, C) conv taps scaled per channel by ``gamma / sqrt(var + eps)``."""
    bias: Tensor
    """(B, C) the GroupNorm's ``beta`` (the conv bias, if any, cancels in the normalisation), less the
    rounding error of ``mean`` mapped through ``weight``."""


def wave_frames(wav: Tensor, kernel: int, stride: int) -> Tensor:
    """(B, N) samples -> (B, T, K) overlapping frames (a view), ``T = (N - K) // stride + 1``."""
    return wav.unfold(-1, kernel, stride)


def fold_first_norm(wav: Tensor, conv: nn.Conv1d, norm: nn.GroupNorm) -> FoldedConv0:
    """Fold ``norm(conv(wav[:, None]))`` into one affine map of the frames, per batch row.

    ``wav`` (B, N) float32; ``conv`` 1 -> C channels; ``norm`` one group per channel, biased
    variance over all T frames of the row (as ``nn.GroupNorm``). The statistics are taken in
    float64 so the fold is at least as precise as normalising the float32 conv output.
    """
    c_out, c_in, k = conv.weight.shape
    if c_in != 1 or norm.num_groups != c_out or norm.num_channels != c_out or not norm.affine:
        raise ValueError("fold_first_norm needs a 1 -> C conv and an affine GroupNorm with one group per channel")
    if wav.shape[-1] < k:
        raise ValueError(f"fold_first_norm needs at least {k} samples, got {wav.shape[-1]}")
    frames = wave_frames(wav, k, conv.stride[0]).double()  # (B, T, K)
    mean = frames.mean(1)  # (B, K)
    centred = frames - mean[:, None]
    cov = centred.transpose(1, 2) @ centred / frames.shape[1]  # (B, K, K)
    w = conv.weight[:, 0].double()  # (C, K)
    var = ((w @ cov) * w).sum(-1)  # (B, C): w_c^T cov w_c
    scale = norm.weight.double() / torch.sqrt(var + norm.eps)  # (B, C)
    folded = w.t()[None] * scale[:, None, :]  # (B, K, C)
    mean32 = mean.to(wav.dtype)
    # The GEMM subtracts the rounded mean; its rounding error would shift every frame alike.
    shift = ((mean - mean32.double())[:, None, :] @ folded)[:, 0]  # (B, C)
    bias = (norm.bias.double() - shift).to(wav.dtype)
    return FoldedConv0(mean=mean32, weight=folded.to(wav.dtype), bias=bias)


def tap_matrix(weight: Tensor) -> Tensor:
    """(C_out, C_in, K) ``nn.Conv1d`` weight -> (K * C_in, C_out) GEMM operand; row ``j * C_in + i``: tap j, input i."""
    c_out, c_in, k = weight.shape
    return weight.permute(2, 1, 0).reshape(k * c_in, c_out).contiguous()


def strided_conv(x: Tensor, taps: Tensor, stride: int, bias: Tensor | None, out: Tensor) -> Tensor:
    """One conv of the stack in (T, C) layout into ``out`` (T_out, C_out): ``sum_j x[stride*t + j] @ w_j``.

    ``x`` (T_in, C_in) contiguous, ``taps`` (K * C_in, C_out) from :func:`tap_matrix`. Taps are taken
    ``stride`` at a time: rows ``stride*t .. stride*t + stride - 1`` of ``x`` are one contiguous run of
    ``stride * C_in`` floats, so each group of taps is one GEMM on a strided view of ``x`` (no copy).
    """
    t_in, c_in = x.shape
    k = taps.shape[0] // c_in
    t_out = out.shape[0]
    for j in range(0, k, stride):
        width = min(stride, k - j)
        rows = x.as_strided((t_out, width * c_in), (stride * c_in, 1), x.storage_offset() + j * c_in)
        w = taps[j * c_in : (j + width) * c_in]
        if j:
            out.addmm_(rows, w)
        elif bias is None:
            torch.mm(rows, w, out=out)
        else:
            torch.addmm(bias, rows, w, out=out)
    return out


def conv_stack(
    wav: Tensor,
    folded: FoldedConv0,
    conv0: nn.Conv1d,
    convs: list[nn.Conv1d],
    tile: int = 250,
    taps: list[Tensor] | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """(B, N) samples -> (B, T, C) feature-encoder output: folded ``conv0`` + GELU, then each conv + GELU.

    ``convs`` are the layers after the first (their weights and biases are used; ``conv0`` only gives
    kernel and stride, its weight is in ``folded``). Frame t sees samples ``hop*t .. hop*t + span - 1``
    only (hop 320, span 400 for the base config), so the stack runs ``tile`` output frames (5 s) at a
    time on the matching sample slice, through two buffers reused by every tile and layer. That bounds
    the working memory (32 + 16 MB for the base config, where one 60 s pass would take 384 MB for the
    first conv's output alone) and measured ~4% faster than whole-signal GEMMs on 10 s; smaller tiles
    (8 to 128 frames) were slower (smaller GEMMs). Needs ``N >= span``.
    """
    k0, s0 = conv0.kernel_size[0], conv0.stride[0]
    hop, span = receptive_field([k0, *(c.kernel_size[0] for c in convs)], [s0, *(c.stride[0] for c in convs)])
    bsz, n = wav.shape
    if n < span:
        raise ValueError(f"conv_stack needs at least {span} samples, got {n}")
    dtype = dtype or wav.dtype
    if taps is None:  # callers that run often pass them cached (one 17 MB copy per call for the base config)
        taps = [tap_matrix(c.weight).to(dtype) for c in convs]
    biases = [None if c.bias is None else c.bias.detach().to(dtype) for c in convs]
    chans = [folded.weight.shape[2], *(c.out_channels for c in convs)]
    t_final = (n - span) // hop + 1
    out = wav.new_empty(bsz, t_final, chans[-1], dtype=dtype)
    rows = [(min(tile, t_final) - 1) * hop + span]  # samples of a full tile, then rows of each layer
    for k, s in [(k0, s0), *((c.kernel_size[0], c.stride[0]) for c in convs)]:
        rows.append((rows[-1] - k) // s + 1)
    # Layer i (0 = conv0) writes into bufs[i % 2]; the last layer writes into ``out``.
    sizes = [r * c for r, c in zip(rows[1:-1], chans[:-1], strict=True)]
    bufs = [wav.new_empty(max(sizes[p::2], default=0), dtype=dtype) for p in (0, 1)]
    aug = wav.new_empty(rows[1], k0 + 1)  # frames minus their mean, and a column of ones for the bias
    aug[:, k0] = 1.0
    for b in range(bsz):
        w0 = torch.cat([folded.weight[b], folded.bias[b, None]])  # (K + 1, C)
        for a in range(0, t_final, tile):
            e = min(a + tile, t_final)
            frames = wave_frames(wav[b, a * hop : (e - 1) * hop + span], k0, s0)  # (T0, K) view
            x_in = aug[: frames.shape[0]]
            torch.sub(frames, folded.mean[b], out=x_in[:, :k0])
            dest = out[b, a:e] if not convs else bufs[0][: x_in.shape[0] * chans[0]].view(-1, chans[0])
            if dtype == wav.dtype:
                x = _GELU_(torch.mm(x_in, w0, out=dest))  # (T0, C)
            else:
                x = dest.copy_(_GELU_(torch.mm(x_in, w0)))
            for i, conv in enumerate(convs):
                k, s = conv.kernel_size[0], conv.stride[0]
                t_out = (x.shape[0] - k) // s + 1
                last = i == len(convs) - 1
                y = out[b, a:e] if last else bufs[(i + 1) % 2][: t_out * chans[i + 1]].view(t_out, chans[i + 1])
                x = _GELU_(strided_conv(x, taps[i], s, biases[i], y))
    return out


def receptive_field(kernels: list[int], strides: list[int]) -> tuple[int, int]:
    """(hop, span) in input samples of one output frame of a conv stack: frame t sees ``hop*t .. hop*t+span-1``."""
    span = 1
    for k, s in zip(reversed(kernels), reversed(strides), strict=True):
        span = (span - 1) * s + k
    return math.prod(strides), span


def overlap_save_size(kernel: int) -> int:
    """FFT length for the positional conv: 1.5x the kernel (192 for 128 taps), a balance between
    FFT work per output (grows with n / (n - kernel + 1)) and the cached weight spectrum (grows with n)."""
    return kernel + max(kernel // 2, 1)


def grouped_spectrum(weight: Tensor, groups: int, n: int) -> Tensor:
    """(C, C/G, K) grouped conv weight -> (G, F, C/G in, C/G out) complex conj-spectrum, F = n // 2 + 1."""
    c, cg, _ = weight.shape
    spec = torch.fft.rfft(weight, n=n)  # (C, cg, F)
    return spec.view(groups, cg, cg, -1).permute(0, 3, 2, 1).conj().contiguous()


def fft_same_conv(x: Tensor, spectrum: Tensor, bias: Tensor | None, kernel: int, n: int) -> Tensor:
    """Grouped 'same' conv ``y[t] = bias + sum_k w_k x[t + k - kernel // 2]`` (zeros outside 0..T-1).

    ``x`` (B, T, C), ``spectrum`` from :func:`grouped_spectrum` with the same ``n`` -> (B, T, C).
    This is ``nn.Conv1d(padding=kernel // 2)`` with the last frame dropped for an even kernel
    (HF ``HubertSamePadLayer``). Overlap-save: blocks of ``n - kernel + 1`` outputs.
    """
    b, t, c = x.shape
    g, fq, cg, _ = spectrum.shape
    s = n - kernel + 1
    nb = -(-t // s)
    left = kernel // 2
    xp = F.pad(x.transpose(1, 2), (left, nb * s + kernel - 1 - t - left))  # (B, C, L)
    xf = torch.fft.rfft(xp.unfold(2, n, s), dim=-1)  # (B, C, nb, F)
    xf = xf.view(b, g, cg, nb, fq).permute(1, 4, 0, 3, 2).reshape(g, fq, b * nb, cg)
    yf = torch.matmul(xf, spectrum)  # (G, F, B*nb, cg)
    yf = yf.view(g, fq, b, nb, cg).permute(2, 0, 4, 3, 1).reshape(b, c, nb, fq)
    y = torch.fft.irfft(yf, n=n, dim=-1)[..., :s]  # (B, C, nb, s)
    y = y.reshape(b, c, nb * s)[:, :, :t]
    y = y.transpose(1, 2)  # (B, T, C)
    return y if bias is None else y + bias
