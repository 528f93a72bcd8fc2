"""ScaledAdam behaviours a fine-tune relies on (the exact numbers are checked against the official class in
test_gpt_train_oracle.py)."""

from __future__ import annotations

import pytest
import torch

from anchorvoice.plugins.gsv.training.scaled_adam import ScaledAdam


def _step(opt: ScaledAdam, params: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()


def test_update_is_relative_to_the_parameter_rms() -> None:
    torch.manual_seed(0)
    base = torch.randn(8, 8)
    grad = torch.randn(8, 8)
    big, small = torch.nn.Parameter(base.clone()), torch.nn.Parameter(0.01 * base)
    start = (big.detach().clone(), small.detach().clone())
    opt = ScaledAdam([big, small], lr=0.01)
    for _ in range(3):
        _step(opt, [big, small], [grad, grad])
    moved_big = float((big.detach() - start[0]).norm())
    moved_small = float((small.detach() - start[1]).norm())
    assert moved_big / moved_small == pytest.approx(100.0, rel=1e-3)  # same relative move, 100x the absolute
    adam_a, adam_b = torch.nn.Parameter(base.clone()), torch.nn.Parameter(0.01 * base)
    adam = torch.optim.Adam([adam_a, adam_b], lr=1e-3)
    for _ in range(3):
        for p in (adam_a, adam_b):
            p.grad = grad.clone()
        adam.step()
    ratio = float((adam_a.detach() - start[0]).norm()) / float((adam_b.detach() - start[1]).norm())
    assert ratio == pytest.approx(1.0, rel=1e-3)  # plain Adam moves both by the same absolute amount


def test_clipping_starts_after_one_period_and_catches_a_spike() -> None:
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(16, 16))
    opt = ScaledAdam([p], lr=1e-3, clipping_scale=2.0, clipping_update_period=4)
    grad = torch.randn(16, 16)
    factors = []
    for step in range(10):
        _step(opt, [p], [grad * (50.0 if step == 8 else 1.0)])
        factors.append(opt.clip_stats[0]["last_factor"])
    assert factors[:8] == [1.0] * 8
    # threshold = 2 x the median norm of an ordinary step, the spike is 50x one: factor ~ 2 / 50
    assert factors[8] == pytest.approx(2.0 / 50.0, rel=0.05)
    assert factors[9] == 1.0


def test_scale_limits_shrink_a_huge_tensor_and_let_a_zero_one_move_only_slowly() -> None:
    huge = torch.nn.Parameter(torch.full((4, 4), 5.0))  # rms 5 > param_max_rms 3
    zero = torch.nn.Parameter(torch.zeros(4, 4))  # rms 0 < param_min_rms: steps use 1e-5 as its size
    opt = ScaledAdam([huge, zero], lr=0.01)
    for _ in range(8):
        _step(opt, [huge, zero], [torch.zeros(4, 4), torch.ones(4, 4)])
    assert float(huge.detach().abs().max()) < 5.0  # shrunk without any gradient
    moved = float(zero.detach().abs().max())
    assert 0 < moved < 8 * 0.01 * 1e-5 * 1.01  # at most lr * param_min_rms per step: why LoRA uses AdamW


def test_state_dict_round_trip_continues_identically() -> None:
    torch.manual_seed(2)
    grads = [torch.randn(5, 3) for _ in range(12)]
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(a.detach().clone())
    opt_a = ScaledAdam([a], lr=0.01, clipping_update_period=3)
    opt_b = ScaledAdam([b], lr=0.01, clipping_update_period=3)
    for g in grads[:6]:
        _step(opt_a, [a], [g])
        _step(opt_b, [b], [g])
    saved = opt_b.state_dict()
    opt_c = ScaledAdam([b], lr=0.01, clipping_update_period=3)
    opt_c.load_state_dict(saved)
    for g in grads[6:]:
        _step(opt_a, [a], [g])
        _step(opt_c, [b], [g])
    torch.testing.assert_close(b.detach(), a.detach(), rtol=0, atol=0)


def test_bad_betas_are_refused() -> None:
    with pytest.raises(ValueError, match="beta1 <= beta2"):
        ScaledAdam([torch.nn.Parameter(torch.zeros(2, 2))], betas=(0.99, 0.9))
