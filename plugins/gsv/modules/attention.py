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
    ``emb_rel_k``/``emb_rel_v`` of shape ``(1, 2w+1, C/h)`` (Shaw et al. 2018, as in VITS).
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
        if self.window_size is not None:
            if t_s != t_t:
                raise ValueError("relative attention needs self-attention (equal lengths)")
            rel_k = self._relative_embeddings(self.emb_rel_k, t_s)  # (1, 2T-1, kc)
            rel_logits = torch.matmul(query, rel_k.unsqueeze(0).transpose(-2, -1))  # (B, h, T, 2T-1)
            scores = scores + _relative_to_absolute(rel_logits)
        if attn_mask is not None:
            # -1e4 (not -inf) as the official code: a fully masked row stays finite.
            scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = F.softmax(scores, dim=-1)
        out = torch.matmul(p_attn, value)  # (B, h, Tq, kc)
        if self.window_size is not None:
            rel_w = _absolute_to_relative(p_attn)  # (B, h, T, 2T-1)
            rel_v = self._relative_embeddings(self.emb_rel_v, t_s)
            out = out + torch.matmul(rel_w, rel_v.unsqueeze(0))
        out = out.transpose(2, 3).contiguous().view(b, d, t_t)
        return self.conv_o(out)

    def _relative_embeddings(self, emb: Tensor, length: int) -> Tensor:
        """Embeddings for offsets -(length-1)..(length-1): zero-padded beyond the window."""
        w = self.window_size
        assert w is not None
        pad = max(length - (w + 1), 0)
        start = max((w + 1) - length, 0)
        if pad > 0:
            emb = F.pad(emb, (0, 0, pad, pad))
        return emb[:, start : start + 2 * length - 1]


def _relative_to_absolute(x: Tensor) -> Tensor:
    """(B, h, L, 2L-1) relative logits -> (B, h, L, L) absolute (the VITS pad-and-reshape skew)."""
    b, h, length, _ = x.shape
    x = F.pad(x, (0, 1))
    flat = F.pad(x.reshape(b, h, length * 2 * length), (0, length - 1))
    return flat.view(b, h, length + 1, 2 * length - 1)[:, :, :length, length - 1 :]


def _absolute_to_relative(x: Tensor) -> Tensor:
    """(B, h, L, L) attention weights -> (B, h, L, 2L-1) per relative offset."""
    b, h, length, _ = x.shape
    x = F.pad(x, (0, length - 1))
    flat = F.pad(x.reshape(b, h, length * length + length * (length - 1)), (length, 0))
    return flat.view(b, h, length, 2 * length)[:, :, :, 1:]


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
        for attn, norm1, ffn, norm2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2
        ):
            x = norm1(x + attn(x, x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask
