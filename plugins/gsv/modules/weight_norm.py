"""Convolutions that accept legacy weight-norm checkpoints: folded for inference, the pair for training.

Official GPT-SoVITS checkpoints store weight-normed layers as ``<name>.weight_g`` (magnitude, shape
``(out, 1, 1)``; ``(in, 1, 1)`` for transposed convs, weight norm over dim 0) and ``<name>.weight_v``
(direction). At inference the effective weight never changes, so these layers keep one plain
``weight`` and compute ``g * v / ||v||`` once when the state dict is loaded, with the same
``torch._weight_norm`` kernel the official forward uses (bit-identical weights, no per-call cost).

Training is different: the official trainer's parameters are ``g`` and ``v``, and a gradient step
on them (AdamW normalises each parameter's gradient) moves the effective weight differently from
a step on the folded weight, by about the learning rate per element. :meth:`WeightNormed.train_weight_norm`
switches a layer to that pair: ``weight_g`` and ``weight_v`` become its parameters (official names
in its state dict) and ``weight`` is computed from them on every access, as the official forward
pre-hook does, so every user of ``.weight`` (conv forward, the flow's GEMM taps) sees the effective
weight with gradients to both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn


class WeightNormed(nn.Module):
    """Mixin of the weight-norm convs (put it before the ``nn.ConvXd`` base): folding at load, the pair to train."""

    def train_weight_norm(self) -> None:
        """Make (``weight_g``, ``weight_v``) the parameters, starting from the current weight (g = |w|, v = w)."""
        params = self._parameters
        if "weight_v" in params:
            return
        w = params.pop("weight")
        assert w is not None
        self.weight_g = nn.Parameter(torch.norm_except_dim(w.detach(), 2, 0).clone())
        self.weight_v = nn.Parameter(w.detach().clone())

    @property
    def trains_weight_norm(self) -> bool:
        return "weight_v" in self._parameters

    @property
    def weight_is_computed(self) -> bool:
        """``weight`` is a new tensor on every access (here: computed from the trained pair)."""
        return self.trains_weight_norm

    def __getattr__(self, name: str) -> Any:
        if name == "weight":
            params = self.__dict__.get("_parameters")
            if params is not None and "weight_v" in params:
                shared = self.__dict__.get("_shared_weights")
                if shared is None:
                    return torch._weight_norm(params["weight_v"], params["weight_g"], 0)
                return _shared_weight(shared, params["weight_v"], params["weight_g"])
        return super().__getattr__(name)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        g_key, v_key, w_key = prefix + "weight_g", prefix + "weight_v", prefix + "weight"
        if self.trains_weight_norm:
            if w_key in state_dict and v_key not in state_dict:  # a folded file: the pair it stands for
                w = state_dict.pop(w_key)
                state_dict[g_key], state_dict[v_key] = torch.norm_except_dim(w, 2, 0), w
        elif g_key in state_dict and v_key in state_dict:
            dtype = self._parameters["weight"].dtype  # type: ignore[union-attr]
            g = state_dict.pop(g_key).to(dtype)
            v = state_dict.pop(v_key).to(dtype)
            state_dict[w_key] = torch._weight_norm(v, g, 0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class WNConv1d(WeightNormed, nn.Conv1d):
    """``nn.Conv1d`` trained with weight norm; loads ``weight_g``/``weight_v`` or a folded ``weight``."""


class WNConvTranspose1d(WeightNormed, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` trained with weight norm (see :class:`WNConv1d`)."""


class WNConv2d(WeightNormed, nn.Conv2d):
    """``nn.Conv2d`` trained with weight norm (the discriminator's period convs)."""


def train_weight_norm(model: nn.Module) -> None:
    """Switch every weight-norm conv of ``model`` to training its (g, v) pair, as the official trainer does."""
    for m in model.modules():
        if isinstance(m, WeightNormed):
            m.train_weight_norm()


def _shared_weight(shared: dict[tuple[torch.dtype, bool], Tensor], v: Tensor, g: Tensor) -> Tensor:
    """The weight of a (g, v) pair computed once per :func:`shared_weights` block, per grad mode and dtype
    (under autocast also cast once: autocast recasts a computed weight on every use, it caches leaves only)."""
    grad = torch.is_grad_enabled()
    dtype = torch.get_autocast_dtype(v.device.type) if torch.is_autocast_enabled(v.device.type) else v.dtype
    w = shared.get((dtype, grad))
    if w is None:
        base = shared.get((v.dtype, grad))
        if base is None:
            base = shared[(v.dtype, grad)] = torch._weight_norm(v, g, 0)
        w = shared[(dtype, grad)] = base.to(dtype)
    return w


@contextlib.contextmanager
def shared_weights(model: nn.Module) -> Iterator[None]:
    """Within the block, each trained (g, v) conv of ``model`` computes its weight once, however often it
    runs (a discriminator on real then generated audio): one weight-norm and one autocast cast per layer
    instead of one per call. Gradients are the same: autograd sums the uses of the shared weight."""
    layers = [m for m in model.modules() if isinstance(m, WeightNormed) and m.trains_weight_norm]
    for m in layers:
        m.__dict__["_shared_weights"] = {}
    try:
        yield
    finally:
        for m in layers:
            m.__dict__.pop("_shared_weights", None)


def computes_weights(layers: list[Any]) -> bool:
    """Whether any of ``layers`` computes its weight on access (a trained (g, v) pair, a LoRA adapter):
    no cached copies of it may be kept then."""
    return any(getattr(m, "weight_is_computed", False) for m in layers)


def official_key_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes as the official (un-folded, weight-normed) model names them."""
    wn_prefixes = {name + "." for name, mod in model.named_modules() if isinstance(mod, WeightNormed)}
    out: dict[str, tuple[int, ...]] = {}
    for key, tensor in model.state_dict().items():
        prefix = key[: -len("weight")]
        if key.endswith(".weight") and prefix in wn_prefixes:
            shape = tuple(tensor.shape)
            out[prefix + "weight_g"] = (shape[0],) + (1,) * (len(shape) - 1)
            out[prefix + "weight_v"] = shape
        else:
            out[key] = tuple(tensor.shape)
    return out
