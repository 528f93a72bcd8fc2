"""The flow's WaveNet stack (time-major GEMMs) against the official conv1d formulation."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from anchorvoice.plugins.gsv.modules.flow import WN


def _official_wn(wn: WN, x: Tensor, x_mask: Tensor, g: Tensor) -> Tensor:
    """GPT-SoVITS ``modules.WN.forward`` in eval mode, on (B, h, T) with conv1d."""
    h = wn.hidden_channels
    cond = wn.cond_layer(g)
    output = torch.zeros_like(x)
    for i in range(wn.n_layers):
        x_in = wn.in_layers[i](x) + cond[:, i * 2 * h : (i + 1) * 2 * h, :]
        acts = torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:])
        res_skip = wn.res_skip_layers[i](acts)
        if i < wn.n_layers - 1:
            x = (x + res_skip[:, :h]) * x_mask
            output = output + res_skip[:, h:]
        else:
            output = output + res_skip
    return output * x_mask


@pytest.mark.parametrize(("kernel", "dilation_rate", "length"), [(5, 1, 64), (3, 2, 40), (5, 1, 1)])
def test_wn_equals_the_conv1d_formulation(kernel: int, dilation_rate: int, length: int) -> None:
    torch.manual_seed(kernel + dilation_rate)
    wn = WN(16, kernel, dilation_rate, 4, gin_channels=8).eval()
    for p in wn.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x, g = torch.randn(2, 16, length), torch.randn(2, 8, 1)
    mask = torch.ones(2, 1, length)
    mask[1, :, length // 2 + 1 :] = 0  # a padded second item
    with torch.inference_mode():
        torch.testing.assert_close(wn(x, mask, g), _official_wn(wn, x, mask, g), rtol=1e-5, atol=1e-5)


def test_wn_follows_a_weight_change() -> None:
    wn = WN(8, 5, 1, 2, gin_channels=4).eval()
    x, g, mask = torch.randn(1, 8, 20), torch.randn(1, 4, 1), torch.ones(1, 1, 20)
    with torch.inference_mode():
        before = wn(x, mask, g)
    with torch.no_grad():
        wn.in_layers[0].weight.mul_(2.0)  # e.g. a new checkpoint loaded in place
    with torch.inference_mode():
        after = wn(x, mask, g)
        torch.testing.assert_close(after, _official_wn(wn, x, mask, g), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, after)
