"""MelStyleEncoder (``ref_enc``): reference spectrogram -> global timbre vector ``ge``.

From Meta-StyleSpeech, as GPT-SoVITS ``module/modules.py`` uses it: spectral MLP (Mish), two gated
temporal convs, one multi-head self-attention (temperature sqrt(d_model)), linear to the style
dimension, masked mean over time. v2 feeds the first 704 of the 1025 linear-spectrogram bins.
Parameter names (``spectral.0.fc``, ``temporal.0.conv1.conv``, ``slf_attn.w_qs``, ``fc.fc``) and
the Sequential indices (dropouts at 2 and 5) match the official module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LinearNorm(nn.Module):
    """A Linear layer under the attribute name ``fc`` (official key layout)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


class Mish(nn.Module):
    """x * tanh(softplus(x)), written out as the official module does (not ``F.mish``)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.tanh(F.softplus(x))


class ConvNorm(nn.Module):
    """A 'same'-padded Conv1d under the attribute name ``conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Conv1dGLU(nn.Module):
    """Residual gated conv: x + a * sigmoid(b) with [a; b] = conv(x)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv1 = ConvNorm(in_channels, 2 * out_channels, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        a, b = torch.split(self.conv1(x), self.out_channels, dim=1)
        return x + a * torch.sigmoid(b)


class StyleAttention(nn.Module):
    """Self-attention with Linear projections ``w_qs``/``w_ks``/``w_vs``/``fc`` and a residual."""

    def __init__(self, n_head: int, d_model: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_k = d_model // n_head
        self.temperature = math.sqrt(d_model)  # official: np.power(d_model, 0.5), not sqrt(d_k)
        self.w_qs = nn.Linear(d_model, n_head * self.d_k)
        self.w_ks = nn.Linear(d_model, n_head * self.d_k)
        self.w_vs = nn.Linear(d_model, n_head * self.d_k)
        self.fc = nn.Linear(n_head * self.d_k, d_model)

    def forward(self, x: Tensor, pad_mask: Tensor | None) -> Tensor:
        """``x`` (B, T, D); ``pad_mask`` (B, T, T) True where masked."""
        b, t, _ = x.shape
        n, dk = self.n_head, self.d_k

        def heads(y: Tensor) -> Tensor:  # (B, T, n*dk) -> (n*B, T, dk), head-major as official
            return y.view(b, t, n, dk).permute(2, 0, 1, 3).contiguous().view(-1, t, dk)

        q, k, v = heads(self.w_qs(x)), heads(self.w_ks(x)), heads(self.w_vs(x))
        attn = torch.bmm(q, k.transpose(1, 2)) / self.temperature
        if pad_mask is not None:
            attn = attn.masked_fill(pad_mask.repeat(n, 1, 1), -math.inf)
        out = torch.bmm(torch.softmax(attn, dim=2), v)  # (n*B, T, dk)
        out = out.view(n, b, t, dk).permute(1, 2, 0, 3).contiguous().view(b, t, -1)
        return self.fc(out) + x


class MelStyleEncoder(nn.Module):
    """``x`` (B, n_mel, T), ``mask`` (B, 1, T) float -> ``ge`` (B, style_vector_dim, 1)."""

    def __init__(
        self,
        n_mel_channels: int = 80,
        style_hidden: int = 128,
        style_vector_dim: int = 256,
        style_kernel_size: int = 5,
        style_head: int = 2,
    ) -> None:
        super().__init__()
        h = style_hidden
        self.spectral = nn.Sequential(
            LinearNorm(n_mel_channels, h), Mish(), nn.Identity(), LinearNorm(h, h), Mish(), nn.Identity()
        )
        self.temporal = nn.Sequential(
            Conv1dGLU(h, h, style_kernel_size), Conv1dGLU(h, h, style_kernel_size)
        )
        self.slf_attn = StyleAttention(style_head, h)
        self.fc = LinearNorm(h, style_vector_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x.transpose(1, 2)  # (B, T, n_mel)
        pad = (mask.int() == 0).squeeze(1) if mask is not None else None  # (B, T) True = padding
        x = self.spectral(x)
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)  # (B, T, h)
        if pad is not None:
            x = x.masked_fill(pad.unsqueeze(-1), 0)
        attn_mask = pad.unsqueeze(1).expand(-1, x.shape[1], -1) if pad is not None else None
        x = self.fc(self.slf_attn(x, attn_mask))  # (B, T, style)
        if pad is None:
            w = x.mean(dim=1)
        else:
            # Official order: divide every frame by the length, then sum (not sum-then-divide).
            length = (~pad).sum(dim=1).unsqueeze(1)  # (B, 1)
            w = torch.div(x.masked_fill(pad.unsqueeze(-1), 0), length.unsqueeze(1)).sum(dim=1)
        return w.unsqueeze(-1)
