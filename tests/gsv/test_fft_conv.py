"""Block-DFT convolution (plugins/gsv/fft_conv.py) and the HiFi-GAN generator's use of it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anchorvoice.plugins.gsv.fft_conv import BlockDFTConv1d, BlockLayout, Scratch
from anchorvoice.plugins.gsv.hifigan import BlockDFTRule, Generator, HiFiGANConfig


def _block_conv(x: torch.Tensor, conv: BlockDFTConv1d, residual: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, T) -> (B, Cout, T) through the block layout, as the generator chains it."""
    b, c, t = x.shape
    layout, scratch = BlockLayout(b, t, conv.block), Scratch(x)
    frames, centre = layout.frames(conv.halo, c, scratch)
    centre.copy_(layout.to_blocks(x))
    layout.fill_halos(frames, conv.halo)
    if residual is None:
        out = torch.empty(conv.block, conv.c_out, layout.cols)
        conv(frames, out, scratch)
    else:
        out = layout.to_blocks(residual)
        conv(frames, out, scratch, accumulate=True)
    return layout.from_blocks(out, torch.empty(b, conv.c_out, t))


@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "d", "t", "block"),
    [
        (16, 16, 11, 5, 1, 32),  # one sample: all context is zero padding
        (16, 16, 11, 5, 20, 32),  # shorter than a block
        (16, 16, 11, 5, 64, 32),  # exactly two blocks
        (16, 8, 7, 3, 333, 32),  # a partial last block, Cout != Cin
        (32, 32, 11, 1, 1000, 64),
        (8, 8, 3, 1, 97, 40),  # L not a power of two
        (8, 8, 3, 5, 100, 16),  # halo 5 of a 16-sample block
    ],
)
def test_block_dft_conv_equals_conv1d(c_in: int, c_out: int, k: int, d: int, t: int, block: int) -> None:
    torch.manual_seed(k * 100 + t)
    x = torch.randn(2, c_in, t)
    w, bias = torch.randn(c_out, c_in, k) / (c_in * k) ** 0.5, torch.randn(c_out)
    conv = BlockDFTConv1d(w, bias, d, block)
    want = F.conv1d(x, w, bias, padding=(k - 1) * d // 2, dilation=d)
    got = _block_conv(x, conv)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    # the batch items do not leak into each other through the halos
    torch.testing.assert_close(_block_conv(x[1:], conv), want[1:], atol=2e-5, rtol=1e-5)
    # a residual added by the last GEMM
    r = torch.randn(2, c_out, t)
    torch.testing.assert_close(_block_conv(x, conv, r), want + r, atol=2e-5, rtol=1e-5)
    nobias = BlockDFTConv1d(w, None, d, block)
    torch.testing.assert_close(_block_conv(x, nobias), want - bias[:, None], atol=2e-5, rtol=1e-5)


def test_block_layout_round_trip_and_zero_tail() -> None:
    x = torch.randn(3, 5, 70)
    layout = BlockLayout(3, 70, 32)
    xb = layout.to_blocks(x)
    assert xb.shape == (32, 5, 3 * 3) and layout.tail == 6
    assert xb.view(32, 5, 3, 3)[6:, :, :, 2].abs().max() == 0
    assert torch.equal(xb.view(32, 5, 3, 3)[4, 2, 1, 1], x[1, 2, 36])
    nhwc = torch.empty(3, 5, 1, 70, memory_format=torch.channels_last)
    assert torch.equal(layout.from_blocks(xb, nhwc.view(3, 5, 70)), x)
    assert torch.equal(layout.from_blocks(xb, nhwc.view(3, 5, 70), add=True), 2 * x)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="'same' padding"):
        BlockDFTConv1d(torch.randn(4, 4, 4), None, 1, 32)
    conv = BlockDFTConv1d(torch.randn(4, 4, 11), None, 5, 32)
    with pytest.raises(ValueError, match="do not match"):
        conv(torch.zeros(conv.n + 1, 4, 2), torch.empty(32, 4, 2), Scratch(torch.zeros(1)))
    with pytest.raises(ValueError, match="exceeds the block length"):
        BlockLayout(1, 100, 16).frames(25, 4, Scratch(torch.zeros(1)))


def _generator(rule: BlockDFTRule | None) -> Generator:
    """Random weights scaled so that the pre-tanh output is O(1) (default init decays to ~1e-3)."""
    torch.manual_seed(0)
    cfg = HiFiGANConfig(initial_channel=16, upsample_initial_channel=64, gin_channels=8)
    gen = Generator(cfg, block_dft=rule).eval().requires_grad_(False)
    for m in gen.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            m.weight.normal_(0, 1.25 / (m.weight[0].numel()) ** 0.5)
    return gen


@pytest.mark.parametrize("frames", [1, 3, 12])
def test_generator_on_the_dft_path_equals_the_direct_path(frames: int) -> None:
    """Every type-1 block on the DFT path (a rule admitting all) vs all-direct channels-last convs."""
    every = BlockDFTRule(block=32, paths=((3, 1, 1),))
    direct, dft = _generator(None), _generator(every)
    dft.load_state_dict(direct.state_dict())
    z, g = torch.randn(2, 16, frames), torch.randn(2, 8, 1)
    with torch.inference_mode():
        want = direct(z, g, apply_tanh=False)
        got = dft(z, g, apply_tanh=False)
        ncw = Generator(direct.cfg, channels_last=False, block_dft=every).eval()
        ncw.load_state_dict(direct.state_dict())
        official_order = ncw(z, g, apply_tanh=False)
    assert dft._nhwc is not None and len(dft._nhwc.dft) == 6 * 3 * 5  # every residual conv was planned
    assert got.shape == want.shape == (2, 1, frames * 640)
    assert want.abs().max() > 0.5
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(official_order, want, atol=1e-4, rtol=0)  # NCW path ignores the rule


def test_plans_are_built_at_load_for_the_admitted_blocks_only() -> None:
    """Loading weights builds the spectra (the first, often streaming, call must not pay for them)."""
    gen = _generator(BlockDFTRule(block=32, paths=((11, 16, 1),)))  # the k = 11 blocks of the 32/16-channel scales
    gen.load_state_dict(gen.state_dict())
    assert gen._nhwc is not None and len(gen._nhwc.dft) == 2 * 6
    assert {p.c_in for p in gen._nhwc.dft.values()} == {32, 16}
    assert gen.block_dft_bytes() > 0


def test_loading_without_a_rule_builds_nothing_ahead() -> None:
    """A generator that is loaded but never run (the gsv-sovits prior's dec) holds no second weight copy."""
    gen = _generator(None)
    gen.load_state_dict(gen.state_dict())
    assert gen._nhwc is None and gen.block_dft_bytes() == 0


def test_default_rule_keeps_short_and_narrow_scales_direct() -> None:
    rule = BlockDFTRule()
    assert rule.use(256, 11, 5000) and rule.use(128, 7, 40000) and rule.use(64, 11, 80000)
    assert not rule.use(256, 3, 5000)  # k = 3: the DFT does more multiply-adds than direct
    assert not rule.use(32, 11, 160000)  # few channels: the transforms dominate
    assert not rule.use(256, 11, 320)  # a short streaming chunk: spectra outweigh the samples
    assert not rule.use(256, 7, 2500)
