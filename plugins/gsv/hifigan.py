"""HiFi-GAN generator (the SoVITS ``dec``): latent ``z`` (B, inter, T) at 50 Hz -> 32 kHz waveform.

Architecture and names follow GPT-SoVITS ``module/models.py::Generator`` with ``modules.ResBlock1``
/ ``ResBlock2`` (HiFi-GAN V1, Kong et al. 2020): ``conv_pre`` (k7), ``cond`` (1x1 from the speaker
vector), ``ups.N`` transposed convs (weight-normed), ``num_kernels`` residual blocks per scale whose
outputs are averaged, leaky ReLU 0.01 + ``conv_post`` (k7, no bias) + tanh. Every size comes from the
checkpoint's ``model`` config (``upsample_rates`` [10, 8, 2, 2, 2], kernels [16, 16, 8, 2, 2],
``upsample_initial_channel`` 512, ``resblock_kernel_sizes`` [3, 7, 11], dilations [1, 3, 5] in v2).

Speed (the decoder is ~97% of SoVITS inference time, gsv_reference/BASELINE.md): weight norm is
folded at load (:mod:`anchorvoice.plugins.gsv.modules.weight_norm`); the leaky ReLU that opens every residual
block of a scale is computed once and shared (all blocks of a scale see the same input); the convs
run on the channels-last (NHWC) layout, where oneDNN needs no per-call layout reorders, with the
leaky ReLU after ``convs1`` and the residual add after ``convs2`` fused into the convolution as
oneDNN post-ops. Sharing and in-place ops leave every floating-point operation unchanged; the
layout and the post-ops only change rounding inside oneDNN's convolution (1-ulp differences; max
|diff| ~1e-6 against the official outputs, see tests/conformance/test_sovits.py).

Fewer multiply-adds (:class:`BlockDFTRule`): the k = 7 and 11 residual blocks of the wide scales
run every conv as an overlap-save real DFT on a blocked layout (:mod:`anchorvoice.plugins.gsv.fft_conv`),
about 2 N / L * C^2 multiply-adds per sample instead of k * C^2. Measured per residual block against
the direct channels-last block, 1 thread on the shared 2-core machine (median of 5, same run;
noisy, +-15%), L = 64: C = 256 x 5000 samples k11 x2.0-2.2, k7 x1.4-1.7; C = 128 x 40000 k11
x1.3-1.45, k7 x1.1; C = 64 x 80000 k11 x1.1, k7 x0.8; C = 32 k11 x0.6-0.8; k3 always slower.
Short signals lose (per-bin spectra outweigh the samples): C = 256 k11 x0.56 at 320 samples, x0.95
at 640, x1.3 at 1220; C = 128 k11 x1.4 at 2560; k7 x1.0 at 2560, x1.16 at 5120. The default rule
takes the 1-thread wins only: k >= 11 with C >= 64 and T >= 1024, k >= 7 with C >= 128 and
T >= 4096. Whole generator, 10 s of audio, alternating with the direct path in one loop: x1.17-1.24
(1 thread, 3 runs), x1.05 median / x1.07 min (1 thread) and x1.01 median / x1.14 min (2 threads)
in bench/sovits_rtf.py, x1.13 median (2 threads, 5 runs); chunked streaming decode x1.08-1.11.
The machine was shared (load 2-3), which hurts the memory-heavier DFT path more at 2 threads:
per block at 2 threads C = 256 k11 gave x1.2, C = 128 k11 x1.0, the other admitted blocks x0.7-0.9
(while short signals kept winning, C = 128 k11 x1.5 at 2560 samples); re-derive on a quiet machine.
Cost: the per-bin spectra hold ~630 MB for the full-size v2 decoder (4 F C^2 floats per conv),
built after each weight load (:meth:`Generator.prepare`). Because ~630 MB buys at most ~13% of the
generator on 2 threads (and nothing measurable in a later 5-run comparison: 2.34 vs 2.41 s), it is
off by default: ``Generator(block_dft=BlockDFTRule())`` or the ``gsv-hifigan`` parameter
``block_dft = true`` turns it on.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.plugins.cpu_kernels import InferencePrecision, check_precision
from anchorvoice.plugins.gsv.fft_conv import BlockDFTConv1d, BlockLayout, Scratch
from anchorvoice.plugins.gsv.modules.weight_norm import WNConv1d, WNConvTranspose1d

LRELU_SLOPE = 0.1  # official modules.LRELU_SLOPE; the final activation uses torch's default 0.01


@dataclass
class HiFiGANConfig:
    """Generator sizes, as stored in the ``model`` section of an s2 checkpoint config."""

    initial_channel: int = 192
    """Latent channels in (``inter_channels``)."""
    resblock: str = "1"
    """Residual block type: "1" (two convs per dilation, v2) or "2" (one conv per dilation)."""
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    """Kernel size of each parallel residual block of a scale."""
    resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)
    """Dilations inside each residual block."""
    upsample_rates: list[int] = field(default_factory=lambda: [10, 8, 2, 2, 2])
    """Stride of each transposed conv; their product is the hop length (640 at 32 kHz)."""
    upsample_initial_channel: int = 512
    """Channels after ``conv_pre``; halved by every upsampling."""
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 8, 2, 2])
    """Kernel of each transposed conv."""
    gin_channels: int = 512
    """Speaker-vector channels feeding ``cond`` (0: unconditioned)."""

    @classmethod
    def from_model_config(cls, model: dict[str, Any]) -> HiFiGANConfig:
        """Pick the generator fields out of an official ``hps.model`` mapping."""
        return cls(
            initial_channel=int(model["inter_channels"]),
            resblock=str(model["resblock"]),
            resblock_kernel_sizes=[int(k) for k in model["resblock_kernel_sizes"]],
            resblock_dilation_sizes=[[int(d) for d in ds] for ds in model["resblock_dilation_sizes"]],
            upsample_rates=[int(u) for u in model["upsample_rates"]],
            upsample_initial_channel=int(model["upsample_initial_channel"]),
            upsample_kernel_sizes=[int(k) for k in model["upsample_kernel_sizes"]],
            gin_channels=int(model.get("gin_channels", 0)),
        )

    @property
    def hop_length(self) -> int:
        """Output samples per latent frame."""
        hop = 1
        for u in self.upsample_rates:
            hop *= u
        return hop


def _same_padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class ConvOps:
    """How the generator runs its conv modules: here plain NCW conv1d, activations as separate ops."""

    def conv(self, m: nn.Module, x: Tensor) -> Tensor:
        return m(x)  # type: ignore[no-any-return]

    def conv_lrelu(self, m: nn.Module, x: Tensor, slope: float) -> Tensor:
        """leaky_relu(m(x), slope)."""
        return F.leaky_relu_(self.conv(m, x), slope)

    def conv_add(self, m: nn.Module, x: Tensor, other: Tensor) -> Tensor:
        """m(x) + other (a new tensor; == other + m(x) since IEEE addition commutes)."""
        return self.conv(m, x).add_(other)


class _Conv4d:
    """A 1-D conv as a 2-D conv on (B, C, 1, T) channels-last tensors (oneDNN's NHWC path)."""

    def __init__(self, conv: nn.Conv1d | nn.ConvTranspose1d, dtype: torch.dtype = torch.float32) -> None:
        self.transposed = isinstance(conv, nn.ConvTranspose1d)
        self.weight = conv.weight.detach().to(dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        self.bias = conv.bias.detach().to(dtype) if conv.bias is not None else None
        self.stride = [1, int(conv.stride[0])]
        self.padding = [0, int(conv.padding[0])]  # type: ignore[index]
        self.dilation = [1, int(conv.dilation[0])]

    def __call__(self, x: Tensor) -> Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def unpadded(self) -> _Conv4d:
        """The same conv (same weight tensors) without its zero padding: streaming supplies the neighbours."""
        c = copy.copy(self)
        c.padding = [0, 0]
        return c


def _mkldnn_fusion_available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return bool(torch.backends.mkldnn.is_available()) and hasattr(ops, "_convolution_pointwise")


class ChannelsLastOps(ConvOps):
    """Convs on (B, C, 1, T) NHWC tensors; with oneDNN, leaky ReLU and residual adds run as conv post-ops.

    The post-ops are the ``mkldnn::_convolution_pointwise`` kernels PyTorch's own compiler uses:
    oneDNN applies them to each output value right after the convolution, saving a pass over the
    tensor per op; results equal the separate ops up to 1-ulp rounding (bias/sum order in oneDNN).
    """

    def __init__(self, modules: list[nn.Module], dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self.plan: dict[nn.Module, _Conv4d] = {
            m: _Conv4d(m, dtype) for m in modules if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))
        }
        self.fused = _mkldnn_fusion_available()
        self.dft: dict[tuple[nn.Module, int], BlockDFTConv1d] = {}

    def dft_plan(self, m: nn.Module, block: int) -> BlockDFTConv1d:
        """The block-DFT form of conv ``m`` for blocks of ``block`` samples (built on first use, kept)."""
        key = (m, block)
        if key not in self.dft:
            assert isinstance(m, nn.Conv1d)
            self.dft[key] = BlockDFTConv1d(m.weight.detach(), m.bias, int(m.dilation[0]), block)
        return self.dft[key]

    def conv(self, m: nn.Module, x: Tensor) -> Tensor:
        return self.plan[m](x)

    def conv_lrelu(self, m: nn.Module, x: Tensor, slope: float) -> Tensor:
        return self.run(self.plan[m], x, slope=slope)

    def conv_add(self, m: nn.Module, x: Tensor, other: Tensor) -> Tensor:
        return self.run(self.plan[m], x, add=other)

    def run(self, c: _Conv4d, x: Tensor, slope: float | None = None, add: Tensor | None = None) -> Tensor:
        """``c(x)``, then leaky ReLU (``slope``) or ``+ add`` when given: oneDNN post-ops where available."""
        if self.fused and not c.transposed and slope is not None:
            return torch.ops.mkldnn._convolution_pointwise(  # type: ignore[no-any-return]
                x, c.weight, c.bias, c.padding, c.stride, c.dilation, 1, "leaky_relu", [slope], ""
            )
        if self.fused and not c.transposed and add is not None:
            return torch.ops.mkldnn._convolution_pointwise.binary(  # type: ignore[no-any-return]
                x, add, c.weight, c.bias, c.padding, c.stride, c.dilation, 1, "add", 1.0, None, [], None
            )
        y = c(x)
        if slope is not None:
            return F.leaky_relu_(y, slope)
        return y.add_(add) if add is not None else y


class ResBlock1(nn.Module):
    """Per dilation d: x += conv2(lrelu(conv1_d(lrelu(x)))). ``forward`` takes lrelu(x) precomputed."""

    def __init__(self, channels: int, kernel_size: int, dilation: list[int]) -> None:
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, dilation=d, padding=_same_padding(kernel_size, d))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, padding=_same_padding(kernel_size, 1)) for _ in dilation
        )

    def forward(self, x: Tensor, x_act: Tensor, ops: ConvOps | None = None) -> Tensor:
        """``x`` (B, C, T) and ``x_act`` = leaky_relu(x, 0.1) -> (B, C, T) (new tensor)."""
        ops = ops or ConvOps()
        n = len(self.convs1)
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            xt = ops.conv_lrelu(c1, x_act, LRELU_SLOPE)
            x = ops.conv_add(c2, xt, x)
            if i < n - 1:
                x_act = F.leaky_relu(x, LRELU_SLOPE)
        return x

    def forward_blocks(
        self, xb: Tensor, layout: BlockLayout, plan: Callable[[nn.Module], BlockDFTConv1d], scratch: Scratch
    ) -> Tensor:
        """:meth:`forward` on the block layout: ``xb`` (L, C, B * M) -> new (L, C, B * M).

        Every conv runs as a :class:`BlockDFTConv1d` (``plan(conv)``); the leaky ReLUs write the
        frames the next conv reads, and each residual add happens inside the conv's last GEMM.
        """
        x = xb.clone()
        mid = scratch.get("resblock_mid", tuple(xb.shape))
        for c1, c2 in zip(self.convs1, self.convs2):
            p1, p2 = plan(c1), plan(c2)
            frames, centre = layout.frames(p1.halo, xb.shape[1], scratch)
            torch.ops.aten.leaky_relu.out(x, LRELU_SLOPE, out=centre)
            p1(layout.fill_halos(frames, p1.halo), mid, scratch)
            frames, centre = layout.frames(p2.halo, xb.shape[1], scratch)
            torch.ops.aten.leaky_relu.out(mid, LRELU_SLOPE, out=centre)
            p2(layout.fill_halos(frames, p2.halo), x, scratch, accumulate=True)
        return x


class ResBlock2(nn.Module):
    """Per dilation d: x += conv_d(lrelu(x)) (HiFi-GAN V3 block; key names ``convs.N``)."""

    def __init__(self, channels: int, kernel_size: int, dilation: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, dilation=d, padding=_same_padding(kernel_size, d))
            for d in dilation
        )

    def forward(self, x: Tensor, x_act: Tensor, ops: ConvOps | None = None) -> Tensor:
        ops = ops or ConvOps()
        n = len(self.convs)
        for i, c in enumerate(self.convs):
            x = ops.conv_add(c, x_act, x)
            if i < n - 1:
                x_act = F.leaky_relu(x, LRELU_SLOPE)
        return x


@dataclass(frozen=True)
class BlockDFTRule:
    """Which residual blocks of a scale run on the block-DFT path (:mod:`anchorvoice.plugins.gsv.fft_conv`).

    A type-1 residual block takes it when one entry of ``paths`` admits its kernel, the scale's
    channels and the samples per item; all other blocks stay on the direct channels-last convs.
    """

    block: int = 64
    """L, samples per block."""
    paths: tuple[tuple[int, int, int], ...] = ((11, 64, 1024), (7, 128, 4096))
    """(smallest kernel, fewest channels, fewest samples per item) of each admitted case. Short
    signals stay direct: the per-bin spectra (4 F C^2 floats per conv) then outweigh the samples."""

    def admits(self, channels: int, kernel: int) -> bool:
        """True when a block with ``kernel`` at a scale of ``channels`` takes the DFT path on long signals."""
        return self.use(channels, kernel, length=sys.maxsize)

    def use(self, channels: int, kernel: int, length: int) -> bool:
        """True when a block with ``kernel`` at a scale of ``channels`` x ``length`` takes the DFT path."""
        return any(kernel >= k and channels >= c and length >= t for k, c, t in self.paths)


class Generator(nn.Module):
    """HiFi-GAN generator; ``forward(z, g)`` -> (B, 1, T * hop) in [-1, 1].

    ``channels_last`` (default True) runs every conv as an NHWC 2-D conv on (B, C, 1, T) with fused
    post-ops (:class:`ChannelsLastOps`; 1.3-1.9x per conv on 2 cores in a micro-benchmark), and the
    residual blocks that ``block_dft`` admits on the block-DFT path (None, the default: none). False runs the
    plain NCW conv1d modules in the official order of operations (``block_dft`` is then unused).

    ``precision="bfloat16"`` runs the channels-last convs, their post-ops and the residual stream in
    bfloat16 (weights copied once; input and output stay float32): 2-2.6x per conv where the CPU has
    AVX512-bf16 (oneDNN), with agreement to float32 printed by ``bench/sovits_rtf.py``. The block-DFT
    path is float32 only and is not used then.
    """

    def __init__(
        self,
        cfg: HiFiGANConfig,
        channels_last: bool = True,
        block_dft: BlockDFTRule | None = None,
        precision: InferencePrecision = "float32",
    ) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.precision: InferencePrecision = "float32"
        self.use_precision(precision)
        if cfg.resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {cfg.resblock!r}")
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        self.cfg = cfg
        self.block_dft = block_dft
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(cfg.initial_channel, cfg.upsample_initial_channel, 7, 1, padding=3)
        block = ResBlock1 if cfg.resblock == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = cfg.upsample_initial_channel
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            c_in, ch = cfg.upsample_initial_channel // (2**i), cfg.upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(WNConvTranspose1d(c_in, ch, k, u, padding=(k - u) // 2))
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(block(ch, rk, rd))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        if cfg.gin_channels:
            self.cond = nn.Conv1d(cfg.gin_channels, cfg.upsample_initial_channel, 1)
        self._nhwc: ChannelsLastOps | None = None
        self.register_load_state_dict_post_hook(Generator._after_load)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._nhwc = None  # new weights: rebuild the channels-last copies on the next call
        super()._load_from_state_dict(*args, **kwargs)

    @staticmethod
    def _after_load(module: nn.Module, incompatible: Any) -> None:
        # Only the block-DFT spectra are worth building ahead; the channels-last copies stay lazy, so
        # a generator that is loaded but never run (e.g. a SynthesizerTrn.dec used only for its prior) costs
        # no second copy of its weights.
        if isinstance(module, Generator) and module.block_dft is not None and not incompatible.missing_keys:
            module.prepare()

    def use_precision(self, precision: InferencePrecision) -> None:
        """Switch the channels-last convs to ``precision`` (their copies are rebuilt on the next call)."""
        precision = check_precision(precision)
        if precision == "bfloat16" and not self.channels_last:
            raise ValueError("precision 'bfloat16' runs on the channels-last convs: keep channels_last=True")
        if precision != self.precision:
            self.precision, self._nhwc = precision, None

    def prepare(self) -> None:
        """Build the channels-last conv copies and every block-DFT plan the rule admits, now.

        Runs after every ``load_state_dict`` when a block-DFT rule is set (and otherwise on the
        first call), so that the first decode, often a streaming chunk, does not pay for the spectra
        (~630 MB for the full-size v2 decoder; about 1-3 s on 2 cores).
        """
        ops = self._ops()
        rule = self.block_dft
        if not isinstance(ops, ChannelsLastOps) or rule is None or self.conv_pre.weight.device.type != "cpu":
            return
        if ops.dtype != torch.float32:
            return
        for blk in self.resblocks:
            if isinstance(blk, ResBlock1) and rule.admits(blk.channels, blk.kernel_size):
                for conv in [*blk.convs1, *blk.convs2]:
                    ops.dft_plan(conv, rule.block)

    def _ops(self) -> ConvOps:
        if not self.channels_last:
            return ConvOps()
        if self._nhwc is None:
            dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float32
            self._nhwc = ChannelsLastOps(list(self.modules()), dtype)
        return self._nhwc

    def _resblocks(self, x: Tensor, blocks: list[nn.Module], ops: ConvOps) -> Tensor:
        """Mean of the scale's residual blocks on ``x`` (B, C, T) or channels-last (B, C, 1, T)."""
        # the rule's figures are CPU measurements: other devices keep their vendor convolutions
        # (and the block-DFT plans are float32 only)
        cpu32 = x.device.type == "cpu" and x.dtype == torch.float32
        rule = self.block_dft if isinstance(ops, ChannelsLastOps) and cpu32 else None
        b, c, t = x.shape[0], x.shape[1], x.shape[-1]
        on_dft = [rule is not None and isinstance(blk, ResBlock1) and rule.use(c, blk.kernel_size, t) for blk in blocks]
        xs: Tensor | None = None
        if not all(on_dft):
            x_act = F.leaky_relu(x, LRELU_SLOPE)  # shared by all direct blocks of this scale
            for blk, dft in zip(blocks, on_dft):
                if not dft:
                    y = blk(x, x_act, ops)
                    xs = y if xs is None else xs.add_(y)
        if any(on_dft):
            assert rule is not None and isinstance(ops, ChannelsLastOps)
            layout, scratch = BlockLayout(b, t, rule.block), Scratch(x)
            xb = layout.to_blocks(x.view(b, c, t))
            acc: Tensor | None = None
            for blk, dft in zip(blocks, on_dft):
                if dft:
                    assert isinstance(blk, ResBlock1)
                    y = blk.forward_blocks(xb, layout, lambda m: ops.dft_plan(m, rule.block), scratch)
                    acc = y if acc is None else acc.add_(y)
            assert acc is not None
            if xs is None:
                xs = torch.empty_like(x)  # keeps x's (channels-last) layout
                layout.from_blocks(acc, xs.view(b, c, t))
            else:
                layout.from_blocks(acc, xs.view(b, c, t), add=True)
        assert xs is not None
        return xs.div_(self.num_kernels)

    def block_dft_bytes(self) -> int:
        """Bytes held by the block-DFT plans built so far (spectra and DFT matrices)."""
        if self._nhwc is None:
            return 0
        return sum(
            sum(t.numel() * t.element_size() for t in (p.spectrum, p.analysis, p.synthesis))
            for p in self._nhwc.dft.values()
        )

    def forward(self, z: Tensor, g: Tensor | None = None, apply_tanh: bool = True) -> Tensor:
        """``z`` (B, inter, T), ``g`` (B, gin, 1) -> (B, 1, T * hop); pre-tanh with apply_tanh=False."""
        ops = self._ops()
        if self.channels_last:
            dtype = torch.bfloat16 if self.precision == "bfloat16" else z.dtype
            z = z.to(dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C, 1, T) NHWC
            g = g.to(dtype).unsqueeze(2) if g is not None else None
        x = ops.conv(self.conv_pre, z)
        if g is not None:
            x = x + ops.conv(self.cond, g)
        for i, up in enumerate(self.ups):
            x = ops.conv(up, F.leaky_relu(x, LRELU_SLOPE))
            x = self._resblocks(x, list(self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]), ops)
        x = ops.conv(self.conv_post, F.leaky_relu_(x))  # torch default slope 0.01, as the official code
        if self.channels_last:
            x = x.squeeze(2).float().contiguous()
        return torch.tanh(x) if apply_tanh else x
