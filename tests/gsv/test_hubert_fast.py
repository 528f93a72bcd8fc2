"""HuBERT's fast inference paths (plugins/gsv/hubert_fast.py) against plain torch convs with the same weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel
from anchorvoice.plugins.gsv.hubert_fast import (
    conv_stack,
    fft_same_conv,
    fold_first_norm,
    grouped_spectrum,
    overlap_save_size,
)
from tests.conftest import needs_bf16_kernels

SMALL = {
    "conv_dim": [32] * 7,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}


def _model(conv_bias: bool = False) -> HubertModel:
    """Random weights everywhere, including GroupNorm's affine (torch initialises it to 1 / 0)."""
    torch.manual_seed(0)
    model = HubertModel(HubertConfig.from_json({**SMALL, "conv_bias": conv_bias})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
        norm = model.feature_extractor.conv_layers[0].layer_norm
        norm.weight.uniform_(0.5, 1.5)
    return model


def _plain_conv_features(model: HubertModel, wav: torch.Tensor) -> torch.Tensor:
    """(B, N) -> (B, T, C) with F.conv1d / F.group_norm / F.gelu in (B, C, T), as HF's feature encoder."""
    x = wav[:, None, :]
    for i, layer in enumerate(model.feature_extractor.conv_layers):
        x = F.conv1d(x, layer.conv.weight, layer.conv.bias, stride=layer.conv.stride)
        if i == 0:
            norm = layer.layer_norm
            x = F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
        x = F.gelu(x)
    return x.transpose(1, 2)


def _signal(b: int, n: int) -> torch.Tensor:
    """Rows with different scale and DC offset (the folded GroupNorm must use per-row statistics)."""
    g = torch.Generator().manual_seed(1)
    wav = torch.randn(b, n, generator=g) * 0.3
    if b > 1:
        wav[1] = wav[1] * 20 + 3.0
    return wav


@pytest.mark.parametrize(("b", "n"), [(1, 16000), (2, 16000), (1, 12347), (2, 400), (1, 719)])
@pytest.mark.parametrize("conv_bias", [False, True])
def test_conv_features_equal_plain_convs(b: int, n: int, conv_bias: bool) -> None:
    model = _model(conv_bias)
    wav = _signal(b, n)
    with torch.inference_mode():
        fast = model.conv_features(wav)
    ref = _plain_conv_features(model, wav).detach()
    assert fast.shape == ref.shape == (b, (n - 400) // 320 + 1, 32)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize("tile", [1, 7, 49])
def test_conv_stack_tiles_equal_plain_convs(tile: int) -> None:
    """Several time tiles (49 frames in 1 s): the seams reuse buffers but must not change any frame."""
    model = _model()
    layers = model.feature_extractor.conv_layers
    wav = _signal(2, 16000)
    with torch.inference_mode():
        folded = fold_first_norm(wav, layers[0].conv, layers[0].layer_norm)
        fast = conv_stack(wav, folded, layers[0].conv, [layer.conv for layer in layers[1:]], tile=tile)
    ref = _plain_conv_features(model, wav).detach()
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_silent_row_gives_the_group_norm_bias() -> None:
    """All-zero input: zero variance, GroupNorm output is beta (no division blow-up in the fold)."""
    model = _model()
    wav = torch.zeros(2, 3200)
    wav[0] = _signal(1, 3200)[0]
    with torch.inference_mode():
        fast = model.conv_features(wav)
    ref = _plain_conv_features(model, wav).detach()
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_large_dc_offset_stays_precise() -> None:
    """A quiet signal on a DC offset (1.0 + 1e-4 noise): the fold centres the frames before the GEMM,
    so it matches a float64 reference to 1e-5 (normalising the float32 conv output is off by ~1e-3)."""
    model = _model()
    wav = 1.0 + 1e-4 * _signal(1, 16000)
    with torch.inference_mode():
        fast = model.conv_features(wav)
    ref = _plain_conv_features(model.double(), wav.double()).detach()
    assert float((fast.double() - ref).abs().max()) < 1e-5 * float(ref.abs().max())


def test_conv_stack_frame_sees_only_its_samples() -> None:
    """With the normalisation statistics fixed (folded once from the whole signal), frame t of a chunk
    starting at sample 320 * a is frame a + t of the whole signal: the stack is local, 400 samples per frame.

    (``conv_features`` itself folds the statistics of whatever it is given, as HF's GroupNorm does, so a
    chunk's frames differ from the whole signal's; a live caller freezes the fold this way.)
    """
    model = _model()
    layers = model.feature_extractor.conv_layers
    wav = _signal(1, 16000)
    with torch.inference_mode():
        folded = fold_first_norm(wav, layers[0].conv, layers[0].layer_norm)
        convs = [layer.conv for layer in layers[1:]]
        whole = conv_stack(wav, folded, layers[0].conv, convs)
        torch.testing.assert_close(whole, model.conv_features(wav))
        for a, frames in [(0, 1), (7, 5), (20, 29)]:
            chunk = wav[:, 320 * a : 320 * (a + frames - 1) + 400]
            part = conv_stack(chunk, folded, layers[0].conv, convs)
            assert part.shape[1] == frames
            torch.testing.assert_close(part, whole[:, a : a + frames], rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="at least 400 samples"):
            conv_stack(wav[:, :399], folded, layers[0].conv, convs)


@pytest.mark.parametrize("kernel", [16, 15, 128])
@pytest.mark.parametrize(("b", "t"), [(1, 1), (2, 33), (1, 500), (2, 131)])
def test_fft_positional_conv_equals_conv1d(kernel: int, b: int, t: int) -> None:
    torch.manual_seed(0)
    c, groups = 32, 4
    conv = torch.nn.Conv1d(c, c, kernel, padding=kernel // 2, groups=groups)
    x = torch.randn(b, t, c)
    with torch.no_grad():
        ref = conv(x.transpose(1, 2))[:, :, :t].transpose(1, 2)  # HF drops the last frame of an even kernel
        n = overlap_save_size(kernel)
        fast = fft_same_conv(x, grouped_spectrum(conv.weight, groups, n), conv.bias, kernel, n)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_forward_equals_the_plain_path_and_follows_new_weights() -> None:
    """Inference (fast paths) and grad-enabled (plain modules) forward agree, also after the positional
    conv and a feature-encoder conv weight change in place (cached spectrum and taps must not go stale)."""
    model = _model()
    wav = _signal(2, 8000 + 77)
    for step in range(2):
        with torch.inference_mode():
            fast = model(wav)
        ref = model(wav).detach()
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
        with torch.no_grad():
            model.encoder.pos_conv_embed.conv.weight.mul_(-1.5)
            model.feature_extractor.conv_layers[2].conv.weight.mul_(1.5)  # the cached GEMM taps too
        assert step == 1 or not torch.allclose(model(wav).detach(), ref, atol=1e-3)


@pytest.mark.parametrize("precision", ["float32", pytest.param("bfloat16", marks=needs_bf16_kernels)])
def test_packed_utterances_give_what_each_gives_alone(precision: str) -> None:
    """forward_packed stacks the clips' rows for the row-wise GEMMs; attention, the positional conv and the
    first GroupNorm must still see each clip alone (clips of different loudness and length)."""
    model = _model()
    model.use_precision(precision)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(5)
    wavs = [torch.randn(n, generator=g) * s + dc for n, s, dc in ((8000, 0.3, 0.0), (3217, 3.0, 1.0), (400, 0.1, 0.0))]
    with torch.inference_mode():
        alone = [model(w[None])[0] for w in wavs]
        packed = model.forward_packed(wavs)
        stacked = model(torch.cat(wavs)[None])[0]  # what would happen without the per-clip boundaries
    assert [p.shape for p in packed] == [a.shape for a in alone]
    tol = 1e-5 if precision == "float32" else 2e-2
    for a, p in zip(alone, packed, strict=True):
        torch.testing.assert_close(p, a, rtol=tol, atol=tol * float(a.abs().max()))
    assert not torch.allclose(stacked[: alone[0].shape[0]], alone[0], atol=1e-2)
    with pytest.raises(RuntimeError, match="inference"):
        model.forward_packed(wavs)  # grad enabled: the packed path is inference only
