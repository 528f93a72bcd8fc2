"""HiFi-GAN multi-period discriminator of the SoVITS trainer (``module/models.py``), official names.

``discriminators.0`` is the scale discriminator (1-D convs), ``discriminators.1..5`` the period
discriminators for periods 2, 3, 5, 7, 11 (2-D convs over the audio folded by its period). Every
conv is weight-normed (``weight_g``/``weight_v``) and, as in the official trainer, those pairs are
the parameters that train (:mod:`..modules.weight_norm`); an official ``s2D*.pth`` loads as it is
(a file with folded weights too), and what we save loads back in the official trainer.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.plugins.gsv.modules.weight_norm import WNConv1d, WNConv2d, shared_weights, train_weight_norm

LRELU_SLOPE = 0.1
PERIODS = (2, 3, 5, 7, 11)


class DiscriminatorP(nn.Module):
    """Period discriminator: (B, 1, T) -> score (B, N) and feature maps."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3) -> None:
        super().__init__()
        self.period = period
        pad = (kernel_size - 1) // 2
        chans = [1, 32, 128, 512, 1024, 1024]
        self.convs = nn.ModuleList(
            WNConv2d(chans[i], chans[i + 1], (kernel_size, 1), (stride if i < 4 else 1, 1), padding=(pad, 0))
            for i in range(5)
        )
        self.conv_post = WNConv2d(1024, 1, (3, 1), 1, padding=(1, 0))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        x = x.view(b, c, t // self.period, self.period)
        return _conv_stack(self.convs, self.conv_post, x)


def _conv_stack(convs: nn.ModuleList, conv_post: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Leaky-ReLU convs then the output conv: (flattened scores, every layer's output for feature matching)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return x.flatten(1, -1), fmap


class DiscriminatorS(nn.Module):
    """Scale discriminator on the raw waveform."""

    def __init__(self) -> None:
        super().__init__()
        spec = [(1, 16, 15, 1, 1, 7), (16, 64, 41, 4, 4, 20), (64, 256, 41, 4, 16, 20), (256, 1024, 41, 4, 64, 20),
                (1024, 1024, 41, 4, 256, 20), (1024, 1024, 5, 1, 1, 2)]
        self.convs = nn.ModuleList(
            WNConv1d(i, o, k, s, groups=g, padding=p) for i, o, k, s, g, p in spec
        )
        self.conv_post = WNConv1d(1024, 1, 3, 1, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """``forward(y, y_hat)`` -> (real scores, fake scores, real fmaps, fake fmaps), one per discriminator."""

    def __init__(self) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList([DiscriminatorS(), *(DiscriminatorP(p) for p in PERIODS)])
        train_weight_norm(self)  # a training-only module: its parameters are the official (g, v) pairs

    def forward(
        self, y: Tensor, y_hat: Tensor
    ) -> tuple[list[Tensor], list[Tensor], list[list[Tensor]], list[list[Tensor]]]:
        rs, gs, frs, fgs = [], [], [], []
        for d in self.discriminators:
            with shared_weights(d):  # one weight per conv for both passes
                r, fr = d(y)
                g, fg = d(y_hat)
            rs.append(r)
            gs.append(g)
            frs.append(fr)
            fgs.append(fg)
        return rs, gs, frs, fgs
