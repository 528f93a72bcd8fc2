"""Block-DFT convolution: 'same' 1-D convolutions with fewer multiply-adds for large kernels.

A stride-1 convolution with kernel ``k``, dilation ``d`` and zero padding ``p = (k - 1) d / 2`` costs
``k * Cin * Cout`` multiply-adds per output sample done directly. Here the signal is cut into
blocks of ``L`` samples; each block plus ``p`` samples of context on each side (a frame of
``N = L + 2p`` samples) goes through a real DFT of size ``N``, every frequency bin is multiplied
by the kernel's spectrum (a complex ``Cout x Cin`` matrix per bin), and the inverse DFT's samples
``p .. p + L - 1`` are the exact convolution outputs of the block (overlap-save). The per-bin
products cost ``4 F / L * Cin * Cout`` real multiply-adds per output sample (F = N // 2 + 1 bins),
independent of ``k`` and ``d``: for ``k = 11``, L = 64, 3-4.6x fewer than direct, plus about
``2F (N / L + 1)`` per sample and channel for the two transforms.

Why DFT matrices and not an FFT: with ``N`` of 34-150 points, the DFT as a matrix product costs
``~N`` multiply-adds per sample and channel, small beside the ``C``-sized per-bin products for
``C >= 128``, and it lets every step run as a large GEMM on one layout, with no transposes.
``torch.fft`` along an outer dimension writes its output with the frequency axis innermost, so the
per-bin GEMM then needs a transposing copy of the spectrum (and the inverse one back). Measured
(C = 128, 40000 samples, N = 256, 1 thread): rfft along dim 0 20-28 ms against 5.4 ms along the
last dim, the transposing copy of the spectrum 8-19 ms, the inverse from a frequency-outer
spectrum 20 ms against 7 ms; the whole FFT conv took 95-140 ms against 97-125 ms for the direct
k = 11 conv, where the DFT-matrix conv below takes 50-90 ms.

Memory: each conv keeps its real-form spectrum, ``4 F Cout Cin`` floats (C = 256, N = 74:
40 MB; the full-size v2 decoder with the default rule of :class:`anchorvoice.plugins.gsv.hifigan.BlockDFTRule`:
about 630 MB), against ``k Cout Cin`` for the direct weights.

Layout (:class:`BlockLayout`): a (B, C, T) signal is held as a (L, C, B * M) tensor, ``M`` blocks
per batch item, sample ``t`` of item ``b`` at ``[t % L, c, b * M + t // L]``. Frames (N, C, B * M)
are built from it by copies of whole rows (:meth:`BlockLayout.frames`); the forward DFT is one
GEMM ``(2F, N) @ (N, C * B * M)`` whose output is already the per-bin layout
``(F, 2 * Cin, B * M)`` ([real; imaginary] rows), the per-bin product is one batched GEMM with
the real form ``[[Hr, -Hi], [Hi, Hr]]`` of the spectrum, and the inverse DFT is one GEMM
``(L, 2F) @ (2F, Cout * B * M)`` that returns only the ``L`` valid samples, straight in the block
layout (with a residual added by the same GEMM). Elementwise ops work on the block layout as is.

Accuracy: float32 GEMMs over ``N`` and ``2F`` terms; against ``F.conv1d`` the max |difference| is
~1e-6 relative to the output scale (tests/gsv/test_fft_conv.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class BlockLayout:
    """Blocked time layout of a (B, C, T) signal: sample t of item b at ``[t % L, c, b * M + t // L]``."""

    batch: int
    """B: batch items."""
    length: int
    """T: samples per item (>= 1)."""
    block: int
    """L: samples per block."""

    @property
    def blocks(self) -> int:
        """M: blocks per item, ceil(T / L)."""
        return -(-self.length // self.block)

    @property
    def cols(self) -> int:
        """B * M: columns of the block layout."""
        return self.batch * self.blocks

    @property
    def tail(self) -> int:
        """Valid samples in the last block of each item (1..L)."""
        return self.length - (self.blocks - 1) * self.block

    def to_blocks(self, x: Tensor) -> Tensor:
        """(B, C, T) of any strides -> new (L, C, B * M) tensor; samples past T are zero."""
        b, c, t = x.shape
        n_l, m = self.block, self.blocks
        out = x.new_empty(n_l, c, b, m)
        full = t // n_l
        if full:
            out[:, :, :, :full].copy_(x[:, :, : full * n_l].unflatten(2, (full, n_l)).permute(3, 1, 0, 2))
        if full < m:
            out[:, :, :, full].zero_()
            out[: t - full * n_l, :, :, full].copy_(x[:, :, full * n_l :].permute(2, 1, 0))
        return out.view(n_l, c, b * m)

    def from_blocks(self, xb: Tensor, out: Tensor, add: bool = False) -> Tensor:
        """Write (or with ``add`` add) the (L, C, B * M) ``xb`` into ``out`` (B, C, T) of any strides."""
        b, c, t = out.shape
        n_l, m = self.block, self.blocks
        src = xb.view(n_l, c, b, m).permute(2, 1, 3, 0).reshape(b, c, m * n_l)[:, :, :t]
        return out.add_(src) if add else out.copy_(src)

    def frames(self, halo: int, channels: int, scratch: Scratch) -> tuple[Tensor, Tensor]:
        """A frame buffer (N, C, B * M) from ``scratch``, N = L + 2 * halo, and its centre view (L, C, B * M).

        Write the block samples into the centre, then call :meth:`fill_halos`. The buffer is
        reused by the next call (one frame buffer is live at a time).
        """
        if halo > self.block:
            raise ValueError(f"halo {halo} exceeds the block length {self.block}")
        buf = scratch.get("frames", (self.block + 2 * halo, channels, self.cols))
        return buf, buf[halo : halo + self.block]

    def fill_halos(self, buf: Tensor, halo: int) -> Tensor:
        """Zero the samples past T in the centre of ``buf`` (N, C, B * M), then copy each block's
        neighbours into its ``halo`` rows on either side (zero beyond the item's ends, as the
        convolution's zero padding)."""
        n_l, m, h = self.block, self.blocks, halo
        f = buf.view(buf.shape[0], buf.shape[1], self.batch, m)
        if self.tail < n_l:
            f[h + self.tail : h + n_l, :, :, m - 1].zero_()
        if h:
            f[:h, :, :, 1:].copy_(f[n_l : n_l + h, :, :, :-1])
            f[:h, :, :, 0].zero_()
            f[h + n_l :, :, :, :-1].copy_(f[h : 2 * h, :, :, 1:])
            f[h + n_l :, :, :, m - 1].zero_()
        return buf


class Scratch:
    """Reusable flat work buffers, so that a chain of block convolutions does not allocate (and
    page-fault in) fresh multi-megabyte tensors for every step. One per forward call; not shared
    between threads."""

    def __init__(self, like: Tensor) -> None:
        self._like = like
        self._bufs: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> Tensor:
        """A contiguous tensor of ``shape`` backed by buffer ``name`` (contents undefined)."""
        numel = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < numel:
            buf = self._like.new_empty(numel)
            self._bufs[name] = buf
        return buf[:numel].view(shape)


def _dft_matrices(n: int, block: int, halo: int) -> tuple[Tensor, Tensor]:
    """Real DFT of size ``n`` as matrices (float64).

    Returns ``analysis`` (2F, N) with rows (f, re/im) = (cos, -sin)(2 pi f j / N), F = N // 2 + 1,
    and ``synthesis`` (L, 2F) giving the inverse real DFT at samples ``halo .. halo + L - 1``.
    """
    f = torch.arange(n // 2 + 1, dtype=torch.float64)
    ang = 2 * math.pi * f[:, None] * torch.arange(n, dtype=torch.float64)[None, :] / n  # (F, N)
    analysis = torch.stack([ang.cos(), -ang.sin()], 1).reshape(-1, n)
    weight = torch.full_like(f, 2.0)  # bins 1..N/2-1 stand for themselves and their mirror image
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    ang = 2 * math.pi * torch.arange(halo, halo + block, dtype=torch.float64)[:, None] * f[None, :] / n  # (L, F)
    synthesis = torch.stack([weight * ang.cos(), -weight * ang.sin()], 2).reshape(block, -1) / n
    return analysis, synthesis


class BlockDFTConv1d:
    """A stride-1 'same' Conv1d (Cout, Cin, k), dilation d, on the block layout via size-N real DFTs.

    Holds copies built once from the conv's weights (in its dtype): ``analysis`` (2F, N),
    ``synthesis`` (L, 2F) and ``spectrum`` (F, 2 Cout, 2 Cin): ``4 F Cout Cin`` floats, e.g. 40 MB
    for C = 256, k = 11, d = 1, L = 64 (N = 74, F = 38), against 2.9 MB for the direct weights.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, dilation: int, block: int) -> None:
        """``weight`` (Cout, Cin, k), ``bias`` (Cout,); ``(k - 1) * dilation`` must be even ('same' padding)."""
        c_out, c_in, k = weight.shape
        if (k - 1) * dilation % 2:
            raise ValueError(f"kernel {k} with dilation {dilation} has no symmetric 'same' padding")
        self.halo = (k - 1) * dilation // 2
        self.block = block
        self.n = block + 2 * self.halo
        self.c_out, self.c_in = c_out, c_in
        analysis, synthesis = _dft_matrices(self.n, block, self.halo)
        # y[j] = sum_i W[:, :, i] x[j + i d - p] = sum_m h[m] x[j - m] (circular, size N), m = p - i d, so
        # H[f] = sum_i W[:, :, i] exp(-2 pi i f m_i / N): two (F, k) @ (k, Cout Cin) products in float64
        m = torch.tensor([(self.halo - i * dilation) % self.n for i in range(k)], dtype=torch.float64)
        ang = 2 * math.pi * torch.arange(self.n // 2 + 1, dtype=torch.float64)[:, None] * m[None, :] / self.n
        taps = weight.detach().to("cpu", torch.float64).permute(2, 0, 1).reshape(k, c_out * c_in)
        hr = (ang.cos() @ taps).view(-1, c_out, c_in)
        hi = (-ang.sin() @ taps).view(-1, c_out, c_in)
        dtype, device = weight.dtype, weight.device
        real_form = torch.empty((hr.shape[0], 2 * c_out, 2 * c_in), dtype=dtype)  # [[Hr, -Hi], [Hi, Hr]]
        real_form[:, :c_out, :c_in] = hr
        real_form[:, :c_out, c_in:] = -hi
        real_form[:, c_out:, :c_in] = hi
        real_form[:, c_out:, c_in:] = hr
        self.analysis = analysis.to(device, dtype).contiguous()
        self.synthesis = synthesis.to(device, dtype).contiguous()
        self.spectrum = real_form.to(device)
        # a constant b in every sample is N * b in the real part of bin 0 (synthesis weight 1 / N)
        self.dc = None if bias is None else (bias.detach().double() * self.n).to(dtype)[:, None]

    def __call__(self, frames: Tensor, out: Tensor, scratch: Scratch, accumulate: bool = False) -> Tensor:
        """``frames`` (N, Cin, cols) -> conv output written to ``out`` (L, Cout, cols, contiguous);
        with ``accumulate`` added to what ``out`` holds (a residual add inside the last GEMM)."""
        n, c_in, cols = frames.shape
        if n != self.n or c_in != self.c_in:
            raise ValueError(f"frames {tuple(frames.shape)} do not match N={self.n}, Cin={self.c_in}")
        n_f = self.spectrum.shape[0]
        u = scratch.get("spectrum_in", (2 * n_f, c_in * cols))
        torch.mm(self.analysis, frames.view(n, c_in * cols), out=u)
        v = scratch.get("spectrum_out", (n_f, 2 * self.c_out, cols))
        torch.bmm(self.spectrum, u.view(n_f, 2 * c_in, cols), out=v)
        if self.dc is not None:
            v[0, : self.c_out].add_(self.dc)
        v2, y = v.view(2 * n_f, self.c_out * cols), out.view(self.block, self.c_out * cols)
        if accumulate:
            y.addmm_(self.synthesis, v2)
        else:
            torch.mm(self.synthesis, v2, out=y)
        return out
