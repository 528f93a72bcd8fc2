"""Normalising flow of the SoVITS prior: WaveNet-style residual coupling layers (VITS), reverse pass.

Official layout (GPT-SoVITS ``module/modules.py`` / ``models.py``): ``flows`` alternates
``ResidualCouplingLayer`` (mean-only, kernel 5, dilation rate 1, 4 WN layers, conditioned on the
speaker vector ``g``) and a parameter-free channel ``Flip``; 4 couplings -> indices 0, 2, 4, 6 hold
weights. WN layers are weight-normed in training (folded at load, see :mod:`.weight_norm`).
Shapes: ``x`` (B, C, T), ``x_mask`` (B, 1, T), ``g`` (B, gin, 1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plugins.gsv.modules.weight_norm import WNConv1d


class WN(nn.Module):
    """Gated dilated conv stack with skip sum (WaveNet), conditioned through one ``cond_layer``."""

    def __init__(
        self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int = 0
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels:
            self.cond_layer = WNConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(
                WNConv1d(hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation, padding=padding)
            )
            # The last layer only feeds the skip sum, so it has half the outputs (official layout).
            res_skip = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WNConv1d(hidden_channels, res_skip, 1))

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        h = self.hidden_channels
        cond = self.cond_layer(g) if g is not None else None  # (B, 2h*n_layers, 1)
        output: Tensor | None = None
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)  # (B, 2h, T)
            if cond is not None:
                x_in = x_in + cond[:, i * 2 * h : (i + 1) * 2 * h, :]
            acts = torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:])
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * x_mask
                skip = res_skip[:, h:]
            else:
                skip = res_skip
            output = skip if output is None else output + skip
        assert output is not None
        return output * x_mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: the second channel half is shifted by a function of the first."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)

    def reverse(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.pre(x0) * x_mask
        h = self.enc(h, x_mask, g=g)
        m = self.post(h) * x_mask
        # mean_only: logs == 0, so the official `* exp(-logs)` is an exact multiply by one.
        x1 = (x1 - m) * x_mask
        return torch.cat([x0, x1], 1)


class Flip(nn.Module):
    """Reverse the channel order (no parameters; keeps the official module indices)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """``n_flows`` couplings interleaved with flips; inference runs them in reverse."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int = 4,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                ResidualCouplingLayer(
                    channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels
                )
            )
            self.flows.append(Flip())

    def reverse(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        """Prior sample ``z_p`` (B, C, T) -> latent ``z`` (B, C, T)."""
        for flow in reversed(self.flows):
            if isinstance(flow, ResidualCouplingLayer):
                x = flow.reverse(x, x_mask, g=g)
            else:
                x = flow(x)
        return x
