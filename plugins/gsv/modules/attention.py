"""Transformer encoder of the SoVITS prior: relative-position self-attention, conv FFN, channel LayerNorm.

Layer order, sizes and parameter names follow GPT-SoVITS ``module/attentions.py`` (VITS lineage) so
that official state dicts load strictly: ``attn_layers.N.{conv_q,conv_k,conv_v,conv_o,emb_rel_k,
emb_rel_v}``, ``norm_layers_1.N.{gamma,beta}``, ``ffn_layers.N.{conv_1,conv_2}``, ``norm_layers_2.N``.
All tensors are channels-first ``(B, C, T)``; masks are ``(B, 1, T)`` float 0/1. Inference only
(no dropout modules: dropout is the identity in eval mode).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, T)`` tensor (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with 1x1-conv projections; optional relative positions (window ``w``).

    With ``window_size`` set, keys and values get shared-across-heads relative embeddings
    ``emb_rel_k``/``emb_rel_v`` of shape ``(1, 2w+1, C/h)`` (Shaw et al. 2018, as in VITS). The official
    code widens them with zeros to all 2T-1 offsets and skews (T, 2T-1) matrices by pad-and-reshape;
    here only the band ``|j - i| <= w`` is touched, which gives the same scores bit for bit and the
    same output to rounding (``tests/gsv/test_relative_attention.py``) in O(T w) instead of O(T^2)
    extra work (enc_p on 500 frames: about 2x less attention time).
    """

    def __init__(self, channels: int, out_channels: int, n_heads: int, window_size: int | None = None) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window_size is not None:
            shape = (1, 2 * window_size + 1, self.k_channels)
            self.emb_rel_k = nn.Parameter(torch.zeros(shape))
            self.emb_rel_v = nn.Parameter(torch.zeros(shape))

    def forward(self, x: Tensor, c: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """``x`` (B, C, Tq) queries, ``c`` (B, C, Tk) keys/values, mask (B, 1, Tq, Tk) -> (B, C_out, Tq)."""
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        b, d, t_s = k.shape
        t_t = q.size(2)
        h, kc = self.n_heads, self.k_channels
        query = q.view(b, h, kc, t_t).transpose(2, 3)  # (B, h, Tq, kc)
        key = k.view(b, h, kc, t_s).transpose(2, 3)  # (B, h, Tk, kc)
        value = v.view(b, h, kc, t_s).transpose(2, 3)
        query = query / math.sqrt(kc)
        scores = torch.matmul(query, key.transpose(-2, -1))  # (B, h, Tq, Tk)
        w = self.window_size
        if w is not None:
            if t_s != t_t:
                raise ValueError("relative attention needs self-attention (equal lengths)")
            scores = _add_band(scores, torch.matmul(query, self.emb_rel_k[0].t()), w)  # + q_i . e_(j-i)
        if attn_mask is not None:
            # -1e4 (not -inf) as the official code: a fully masked row stays finite.
            scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = F.softmax(scores, dim=-1)
        out = torch.matmul(p_attn, value)  # (B, h, Tq, kc)
        if w is not None:  # + sum_j p_ij e_(j-i)
            out = out + torch.matmul(_band(F.pad(p_attn, (w, w)), w), self.emb_rel_v[0])
        out = out.transpose(2, 3).contiguous().view(b, d, t_t)
        return self.conv_o(out)


def _band(padded: Tensor, w: int) -> Tensor:
    """(B, h, T, T + 2w) rows padded by ``w`` each side -> (B, h, T, 2w + 1) view: ``[i, o + w]`` is the
    padded row's column ``i + o + w``, i.e. the entry at offset ``j - i = o`` (zero pad where j is out of range)."""
    b, h, t, _ = padded.shape
    s0, s1, s2, s3 = padded.stride()
    return padded.as_strided((b, h, t, 2 * w + 1), (s0, s1, s2 + s3, s3), padded.storage_offset())


def _add_band(scores: Tensor, rel_logits: Tensor, w: int) -> Tensor:
    """``scores`` (B, h, T, T) + relative logits (B, h, T, 2w + 1) on the band ``|j - i| <= w``.

    Same sums as adding the full-width (B, h, T, 2T - 1) relative logits of the official skew, whose
    entries beyond the window are exact zeros (zero-padded embeddings), in O(T w) instead of O(T^2) work.
    """
    padded = F.pad(scores, (w, w))  # a fresh tensor: safe to add into in place
    _band(padded, w).add_(rel_logits)
    return padded[..., w : w + scores.size(-1)]


class FFN(nn.Module):
    """Two 'same'-padded convolutions with ReLU between, masked before each."""

    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)

    def _pad(self, x: Tensor) -> Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        return self.conv_2(self._pad(x * x_mask)) * x_mask


class Encoder(nn.Module):
    """Post-LN transformer encoder: ``n_layers`` x (rel-attention + LN, FFN + LN); window 4 (VITS)."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        window_size: int = 4,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, window_size=window_size)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, hidden_channels, filter_channels, kernel_size) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: Tensor, x_mask: Tensor) -> Tensor:
        """``x`` (B, C, T), ``x_mask`` (B, 1, T) -> (B, C, T)."""
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)  # (B, 1, T, T)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + attn(x, x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask
