"""The SoVITS prior's relative-position attention: the band formulation against the official skew."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from anchorvoice.plugins.gsv.modules.attention import MultiHeadAttention


def _official_attention(m: MultiHeadAttention, x: Tensor, mask: Tensor) -> Tensor:
    """GPT-SoVITS ``attentions.MultiHeadAttention`` for self-attention, as it computes it: the relative
    embeddings widened with zeros to all 2T-1 offsets, and (T, 2T-1) <-> (T, T) pad-and-reshape skews."""
    w = m.window_size
    assert w is not None
    q, k, v = m.conv_q(x), m.conv_k(x), m.conv_v(x)
    b, d, t = k.shape
    h, kc = m.n_heads, m.k_channels
    query = q.view(b, h, kc, t).transpose(2, 3) / math.sqrt(kc)
    key = k.view(b, h, kc, t).transpose(2, 3)
    value = v.view(b, h, kc, t).transpose(2, 3)

    def widen(emb: Tensor) -> Tensor:  # (1, 2w+1, kc) -> (1, 2t-1, kc), offsets -(t-1)..t-1
        pad, start = max(t - (w + 1), 0), max((w + 1) - t, 0)
        return F.pad(emb, (0, 0, pad, pad))[:, start : start + 2 * t - 1]

    def rel_to_abs(r: Tensor) -> Tensor:
        flat = F.pad(F.pad(r, (0, 1)).reshape(b, h, 2 * t * t), (0, t - 1))
        return flat.view(b, h, t + 1, 2 * t - 1)[:, :, :t, t - 1 :]

    def abs_to_rel(a: Tensor) -> Tensor:
        flat = F.pad(F.pad(a, (0, t - 1)).reshape(b, h, t * t + t * (t - 1)), (t, 0))
        return flat.view(b, h, t, 2 * t)[:, :, :, 1:]

    scores = query @ key.transpose(-2, -1)
    scores = scores + rel_to_abs(query @ widen(m.emb_rel_k).unsqueeze(0).transpose(-2, -1))
    scores = scores.masked_fill(mask == 0, -1e4)
    p = F.softmax(scores, dim=-1)
    out = p @ value + abs_to_rel(p) @ widen(m.emb_rel_v).unsqueeze(0)
    return m.conv_o(out.transpose(2, 3).contiguous().view(b, d, t))


@pytest.mark.parametrize("length", [1, 3, 5, 6, 120, 257])
def test_band_attention_equals_the_official_skew(length: int) -> None:
    torch.manual_seed(length)
    m = MultiHeadAttention(192, 192, 2, window_size=4)
    with torch.no_grad():
        m.emb_rel_k.normal_()
        m.emb_rel_v.normal_()
    x = torch.randn(2, 192, length)
    x_mask = torch.ones(2, 1, length)
    x_mask[1, :, length - length // 3 :] = 0  # a padded second row
    mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
    with torch.inference_mode():
        ours = m(x, x, mask)
        official = _official_attention(m, x, mask)
    torch.testing.assert_close(ours, official, rtol=1e-5, atol=1e-6)


def test_relative_attention_refuses_cross_attention() -> None:
    m = MultiHeadAttention(8, 8, 2, window_size=4)
    with pytest.raises(ValueError, match="self-attention"):
        m(torch.randn(1, 8, 5), torch.randn(1, 8, 7))
