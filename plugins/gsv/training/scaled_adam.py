"""ScaledAdam: the optimiser of the official GPT (s1) trainer, written here from its algorithm.

The idea (Povey et al., Zipformer, arXiv:2310.11230, section 5): a tensor's update is
proportional to its own root-mean-square value, so every tensor moves by the same *relative*
amount whatever its scale, and the scale itself is learnt separately (in log space, bounded).
For a non-scalar tensor ``p`` with gradient ``g`` at step ``s`` (0-based), ``b1, b2 = betas``::

    v      <- b2 v + (1 - b2) g^2                     (Adam's second moment; bias-corrected while
                                                        1 - b2^(s+1) < 0.99)
    delta  <- b1 delta
              + (1 - b1) * p * scale_step              (only every ``size_update_period`` steps)
              - lr (1 - b1) max(rms(p), param_min_rms) g / (sqrt(v) + eps)
    p      <- p + delta

``rms(p)`` is re-measured every ``size_update_period`` steps (before that step's update). The
scale step learns ``log|p|`` from the accumulated ``sum(p * g)`` of the last period with its own
Adam-like denominator (``b2`` raised to the period), rate ``lr * scalar_lr_scale``, and is
zeroed while ``rms(p) < param_min_rms`` and forced to shrink at ``-lr * scalar_lr_scale * period``
while ``rms(p) > param_max_rms``. One-element tensors get plain Adam (no first-moment bias
correction) at ``lr * scalar_lr_scale``, clamped to ``+-scalar_max`` before the update.

Gradient clipping (``clipping_scale``): the norm of the whole group's gradient, each tensor's
gradient weighted by its ``rms(p)`` (because that is how much it moves the tensor), is recorded
every step; every ``clipping_update_period`` steps the threshold becomes ``clipping_scale`` times
the median of the last period's norms, and from then on a step whose norm exceeds it gets the
factor ``threshold / norm``. As in the official GPT-SoVITS copy of the optimiser (commit 48b1a01),
that factor reaches only the parameter-scale gradient ``sum(p * g)``; the main update reads the
raw gradient. Parameters without a gradient count as having a zero one (their momentum still
moves them), as in the official.

Defaults are what ``Text2SemanticLightningModule.configure_optimizers`` passes: lr 0.01,
betas (0.9, 0.95), clipping_scale 2.0, clipping_update_period 1000, and the class defaults
eps 1e-8, param_min_rms 1e-5, param_max_rms 3.0, scalar_lr_scale 0.1, scalar_max 10,
size_update_period 4.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


class ScaledAdam(torch.optim.Optimizer):
    """Parameter-scale-relative Adam with scale learning and median-based gradient clipping."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                 clipping_scale: float | None = 2.0, clipping_update_period: int = 1000,
                 scalar_lr_scale: float = 0.1, param_min_rms: float = 1e-5, param_max_rms: float = 3.0,
                 scalar_max: float = 10.0, size_update_period: int = 4) -> None:
        if not 0.0 < betas[0] <= betas[1] < 1.0:
            raise ValueError(f"ScaledAdam needs 0 < beta1 <= beta2 < 1, got betas={betas}")
        if size_update_period < 1 or clipping_update_period < 1:
            raise ValueError("size_update_period and clipping_update_period must be at least 1")
        defaults = dict(lr=lr, betas=betas, eps=eps, clipping_scale=clipping_scale,
                        clipping_update_period=clipping_update_period, scalar_lr_scale=scalar_lr_scale,
                        param_min_rms=param_min_rms, param_max_rms=param_max_rms, scalar_max=scalar_max,
                        size_update_period=size_update_period)
        super().__init__(params, defaults)
        self.clip_stats: list[dict[str, Any]] = [{} for _ in self.param_groups]
        """Per group: ``step``, ``norms`` (the last period's gradient norms), ``threshold``, ``last_factor``."""

    # ----- clipping -----
    def _clip_factor(self, gi: int, group: dict[str, Any], grads: list[Tensor]) -> float:
        stats = self.clip_stats[gi]
        step = int(stats.get("step", 0))
        scale = group["clipping_scale"]
        if scale is None or step == 0:
            return 1.0
        period = int(group["clipping_update_period"])
        total = torch.zeros((), device=grads[0].device)
        for p, g in zip(group["params"], grads):
            if p.numel() == 1:
                total = total + (g.float() ** 2).sum()
            else:
                total = total + ((g * self.state[p]["param_rms"]) ** 2).sum()
        norm = total.sqrt()
        if "norms" not in stats:
            stats["norms"] = torch.zeros(period, device=norm.device)
        stats["norms"][step % period] = norm
        if step % period == 0:
            ordered = stats["norms"].sort()[0]
            stats["threshold"] = scale * float(ordered[min(period - 1, (period // 4) * 2)])
        if step < period:
            return 1.0
        return min(1.0, stats["threshold"] / (float(norm) + 1e-20))

    # ----- step -----
    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
            params: list[Tensor] = group["params"]
            if not params:
                continue
            grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
            if any(g.is_sparse for g in grads):
                raise RuntimeError("ScaledAdam does not support sparse gradients")
            clip = self._clip_factor(gi, group, grads)
            self.clip_stats[gi]["last_factor"] = clip
            for p, g in zip(params, grads):
                self._update(group, p, g, clip)
            self.clip_stats[gi]["step"] = int(self.clip_stats[gi].get("step", 0)) + 1
        return loss

    def _update(self, group: dict[str, Any], p: Tensor, g: Tensor, clip: float) -> None:
        state = self.state[p]
        period = int(group["size_update_period"])
        if not state:
            state["step"] = 0
            state["delta"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
            if p.numel() > 1:
                state["param_rms"] = p.pow(2).mean().sqrt()
                state["scale_exp_avg_sq"] = torch.zeros_like(state["param_rms"])
                state["scale_grads"] = torch.zeros(period, dtype=p.dtype, device=p.device)
        step = int(state["step"])
        beta1 = group["betas"][0]
        state["delta"].mul_(beta1)
        if p.numel() > 1:
            clipped = g * clip if clip != 1.0 else g
            state["scale_grads"][step % period] = (p * clipped).sum()
            if step % period == period - 1:
                state["param_rms"].copy_(p.pow(2).mean().sqrt())
                if step > 0:
                    self._learn_scale(group, p, state, step)
            self._adam_step(group, p, g, state, step)
        else:
            self._scalar_step(group, p, g, state, step)
        state["step"] = step + 1

    @staticmethod
    def _learn_scale(group: dict[str, Any], p: Tensor, state: dict[str, Any], step: int) -> None:
        """Gradient step on log(scale of p) from the last period's ``sum(p * g)`` values."""
        beta1, beta2 = group["betas"]
        rate = group["lr"] * group["scalar_lr_scale"]
        grads: Tensor = state["scale_grads"]
        period = grads.shape[0]
        beta2_period = beta2**period  # one scale update per period: the second moment decays per period
        avg_sq: Tensor = state["scale_exp_avg_sq"]
        avg_sq.mul_(beta2_period).add_(grads.pow(2).mean(), alpha=1 - beta2_period)
        updates_so_far = (step + 1) // period
        correction = (1 - beta2_period**updates_so_far) ** 0.5
        scale_step = -rate * correction * grads.sum() / (avg_sq.sqrt() + group["eps"])
        rms: Tensor = state["param_rms"]
        if float(rms) < group["param_min_rms"]:
            scale_step = torch.zeros_like(scale_step)  # too small: stop shrinking
        elif float(rms) > group["param_max_rms"]:
            scale_step = torch.full_like(scale_step, -rate * period)  # too large: shrink
        state["delta"].add_(p * scale_step, alpha=1 - beta1)

    @staticmethod
    def _adam_step(group: dict[str, Any], p: Tensor, g: Tensor, state: dict[str, Any], step: int) -> None:
        beta1, beta2 = group["betas"]
        avg_sq: Tensor = state["exp_avg_sq"]
        avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        correction = 1 - beta2 ** (step + 1)
        second = avg_sq * (1.0 / correction) if correction < 0.99 else avg_sq
        denom = second.sqrt() + group["eps"]
        size = state["param_rms"].clamp(min=group["param_min_rms"])
        state["delta"].add_(g / denom * (-group["lr"] * (1 - beta1) * size))
        p.add_(state["delta"])

    @staticmethod
    def _scalar_step(group: dict[str, Any], p: Tensor, g: Tensor, state: dict[str, Any], step: int) -> None:
        beta1, beta2 = group["betas"]
        avg_sq: Tensor = state["exp_avg_sq"]
        avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (avg_sq / (1 - beta2 ** (step + 1))).sqrt() + group["eps"]
        state["delta"].add_(g / denom, alpha=-group["lr"] * group["scalar_lr_scale"] * (1 - beta1))
        p.clamp_(min=-group["scalar_max"], max=group["scalar_max"])
        p.add_(state["delta"])

    # ----- state -----
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["clip_stats"] = [dict(s) for s in self.clip_stats]
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        stats = state_dict.pop("clip_stats", None)
        super().load_state_dict(state_dict)
        if stats is not None:
            self.clip_stats = [dict(s) for s in stats]
