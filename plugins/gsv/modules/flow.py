"""Normalising flow of the SoVITS prior: WaveNet-style residual coupling layers (VITS), reverse pass.

Official layout (GPT-SoVITS ``module/modules.py`` / ``models.py``): ``flows`` alternates
``ResidualCouplingLayer`` (mean-only, kernel 5, dilation rate 1, 4 WN layers, conditioned on the
speaker vector ``g``) and a parameter-free channel ``Flip``; 4 couplings -> indices 0, 2, 4, 6 hold
weights. WN layers are weight-normed in training (folded at load, see :mod:`.weight_norm`).
Shapes: ``x`` (B, C, T), ``x_mask`` (B, 1, T), ``g`` (B, gin, 1).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.plugins.gsv.modules.derived import DerivedWeights
from anchorvoice.plugins.gsv.modules.weight_norm import WNConv1d, computes_weights


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
        self._taps: DerivedWeights[list[Tensor]] = DerivedWeights()

    def _convs(self, layers: nn.ModuleList) -> list[WNConv1d]:
        """``in_layers`` / ``res_skip_layers`` as what they hold (a ModuleList is typed as holding Modules)."""
        return [cast(WNConv1d, layer) for layer in layers]

    def _tap_weights(self) -> list[Tensor]:
        """Each ``in_layers`` weight (2h, h, k) as k contiguous (h, 2h) GEMM operands."""
        layers = self._convs(self.in_layers)
        weights = [layer.weight for layer in layers]
        # training: keep the graph; weights computed from (g, v) pairs or adapters are new tensors on every access
        if computes_weights(layers) or (torch.is_grad_enabled() and any(w.requires_grad for w in weights)):
            return [w.permute(2, 1, 0) for w in weights]
        return self._taps.get(weights, lambda: [w.detach().permute(2, 1, 0).contiguous() for w in weights])

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        """(B, h, T) -> (B, h, T). Runs time-major: each dilated conv is a sum of k GEMMs on shifted row
        views of the padded (T, h) input (no im2col copy), about 1.7x faster than ``conv1d`` on (B, h, T)
        at the prior's sizes (h = 192, k = 5, T = 500); same sums up to rounding."""
        cond = self.cond_layer(g) if g is not None else None  # (B, 2h*n_layers, 1)
        xt, mt = x.transpose(1, 2), x_mask.transpose(1, 2)  # (B, T, h), (B, T, 1)
        taps = self._tap_weights()
        if torch.is_autocast_enabled(x.device.type):  # cast each tap once, not once per item and GEMM
            dtype = torch.get_autocast_dtype(x.device.type)
            taps = [w.to(dtype) for w in taps]
        out = [self._forward_one(xt[i], mt[i], None if cond is None else cond[i, :, 0], taps) for i in range(x.size(0))]
        return torch.stack(out).transpose(1, 2)

    def _forward_one(self, x: Tensor, mask: Tensor, cond: Tensor | None, taps: list[Tensor]) -> Tensor:
        """One item: ``x`` (T, h), ``mask`` (T, 1), ``cond`` (2h*n_layers,), ``taps`` of each layer -> (T, h)."""
        h, t = self.hidden_channels, x.size(0)
        autocast = torch.is_autocast_enabled(x.device.type)
        output: Tensor | None = None
        layers = zip(self._convs(self.in_layers), taps, self._convs(self.res_skip_layers))
        for i, (in_layer, w, res_skip_layer) in enumerate(layers):
            dilation, pad = in_layer.dilation[0], in_layer.padding
            assert isinstance(pad, tuple)
            padded = F.pad(x, (0, 0, pad[0], pad[0]))
            if autocast:  # the k row views then share one cast
                padded = padded.to(w.dtype)
            bias = in_layer.bias
            assert bias is not None  # every in_layer is built with a bias (official layout)
            if cond is not None:
                bias = bias + cond[i * 2 * h : (i + 1) * 2 * h]
            x_in = torch.addmm(bias, padded[:t], w[0])  # (T, 2h)
            for j in range(1, len(w)):
                rows = padded[j * dilation : j * dilation + t]
                if autocast:  # in-place ops are not autocast: x_in is bf16 there, rows and w are not
                    x_in = torch.addmm(x_in, rows, w[j])
                else:
                    x_in.addmm_(rows, w[j])
            acts = torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:])
            res_skip = F.linear(acts, res_skip_layer.weight[:, :, 0], res_skip_layer.bias)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * mask
                skip = res_skip[:, h:]
            else:
                skip = res_skip
            output = skip if output is None else output + skip
        assert output is not None
        return output * mask


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

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        """Training direction (latent ``z`` -> prior space): x1 <- m(x0) + x1 (mean-only, logs = 0)."""
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        m = self.post(h) * x_mask
        return torch.cat([x0, m + x1 * x_mask], 1)

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

    def forward(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        """Training direction: posterior latent ``z`` (B, C, T) -> ``z_p`` in the prior's space."""
        for flow in self.flows:
            x = flow(x, x_mask, g=g) if isinstance(flow, ResidualCouplingLayer) else flow(x)
        return x

    def reverse(self, x: Tensor, x_mask: Tensor, g: Tensor | None = None) -> Tensor:
        """Prior sample ``z_p`` (B, C, T) -> latent ``z`` (B, C, T)."""
        for flow in reversed(self.flows):
            if isinstance(flow, ResidualCouplingLayer):
                x = flow.reverse(x, x_mask, g=g)
            else:
                x = flow(x)
        return x
