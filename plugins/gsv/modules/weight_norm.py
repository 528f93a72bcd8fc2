"""Convolutions that accept legacy weight-norm checkpoints and fold them at load time.

Official GPT-SoVITS checkpoints store weight-normed layers as ``<name>.weight_g`` (magnitude, shape
``(out, 1, 1)``; ``(in, 1, 1)`` for transposed convs, weight norm over dim 0) and ``<name>.weight_v``
(direction). At inference the effective weight never changes, so these layers keep one plain
``weight`` and compute ``g * v / ||v||`` once when the state dict is loaded, with the same
``torch._weight_norm`` kernel the official forward uses (bit-identical weights, no per-call cost).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _fold(module: nn.Module, state_dict: dict[str, Any], prefix: str) -> None:
    g_key, v_key = prefix + "weight_g", prefix + "weight_v"
    if g_key in state_dict and v_key in state_dict:
        dtype = module.weight.dtype  # type: ignore[union-attr]
        g = state_dict.pop(g_key).to(dtype)
        v = state_dict.pop(v_key).to(dtype)
        state_dict[prefix + "weight"] = torch._weight_norm(v, g, 0)


class WNConv1d(nn.Conv1d):
    """``nn.Conv1d`` trained with weight norm; loads ``weight_g``/``weight_v`` or a folded ``weight``."""

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        _fold(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class WNConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` trained with weight norm (see :class:`WNConv1d`)."""

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        _fold(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def official_key_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes as the official (un-folded, weight-normed) model names them."""
    wn_prefixes = {
        name + "." for name, mod in model.named_modules() if isinstance(mod, (WNConv1d, WNConvTranspose1d))
    }
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
