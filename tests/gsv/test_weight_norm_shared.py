"""``shared_weights``: a trained (g, v) conv run twice in a block computes its weight once, same gradients."""

from __future__ import annotations

import pytest
import torch

from anchorvoice.plugins.gsv.modules import weight_norm
from anchorvoice.plugins.gsv.modules.weight_norm import WNConv1d, shared_weights
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from tests.conftest import needs_bf16_kernels


def _grads(disc: MultiPeriodDiscriminator, shared: bool, y: torch.Tensor, y_hat: torch.Tensor) -> dict:
    disc.zero_grad()
    if shared:
        rs, gs, frs, fgs = disc(y, y_hat)
    else:  # each pass computes its own weights (the official forward pre-hook)
        outs = [(d(y), d(y_hat)) for d in disc.discriminators]
        rs, gs = [r for (r, _), _ in outs], [g for _, (g, _) in outs]
        frs, fgs = [f for (_, f), _ in outs], [f for _, (_, f) in outs]
    loss = sum(((1 - r) ** 2).mean() + (g**2).mean() for r, g in zip(rs, gs))
    loss = loss + sum((a - b).abs().mean() for fr, fg in zip(frs, fgs) for a, b in zip(fr, fg))
    loss.backward()
    return {k: p.grad.clone() for k, p in disc.named_parameters()}


def test_discriminator_passes_share_weights_with_the_same_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    disc = MultiPeriodDiscriminator()
    y, y_hat = torch.randn(2, 1, 1200), torch.randn(2, 1, 1200)
    exact = _grads(disc, False, y, y_hat)
    calls = [0]
    real = torch._weight_norm

    def counting(v: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
        calls[0] += 1
        return real(v, g, dim)

    monkeypatch.setattr(weight_norm.torch, "_weight_norm", counting)
    shared = _grads(disc, True, y, y_hat)
    n_convs = sum(1 for m in disc.modules() if isinstance(m, weight_norm.WeightNormed))
    assert calls[0] == n_convs  # once per conv, not once per pass
    assert shared.keys() == exact.keys()
    for k in exact:
        torch.testing.assert_close(shared[k], exact[k], rtol=1e-5, atol=1e-6, msg=k)


def test_the_shared_weight_lives_only_inside_the_block() -> None:
    conv = WNConv1d(4, 6, 3)
    conv.train_weight_norm()
    with shared_weights(conv):
        assert conv.weight is conv.weight
        with torch.no_grad():  # another grad mode gets its own weight, without a graph
            assert not conv.weight.requires_grad
        assert conv.weight.requires_grad
    assert conv.weight is not conv.weight  # computed on every access again
    with torch.no_grad():
        conv.weight_v.mul_(2.0)  # a step moves v; the next block sees it
        before = conv.weight.clone()
    with shared_weights(conv):
        torch.testing.assert_close(conv.weight.detach(), before)


@needs_bf16_kernels
def test_under_autocast_the_shared_weight_is_cast_once() -> None:
    conv = WNConv1d(4, 6, 3)
    conv.train_weight_norm()
    with shared_weights(conv), torch.autocast("cpu", dtype=torch.bfloat16):
        w = conv.weight
        assert w.dtype == torch.bfloat16 and conv.weight is w
        out = conv(torch.randn(1, 4, 10))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert conv.weight_v.grad is not None and conv.weight_v.grad.dtype == torch.float32
