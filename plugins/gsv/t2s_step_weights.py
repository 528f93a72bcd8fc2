"""Weights of the fused T2S decode step (:mod:`anchorvoice.plugins.gsv.t2s_step`): the stacked,
contiguous per-kind layout the numba step reads, as int8 with per-row scales or as float32.

Quantization (:func:`quantize_rows`): per output row symmetric, ``scale = max|w_row| / 127``,
``q = round(w / scale)`` in [-127, 127]. Unquantized (float32) weights carry scales of exactly 1, so
the step's ``scale * (w @ x) + bias`` is the plain float32 product. ``out_proj`` and ``linear2`` are
stored transposed (input-major) so that a partial sum over input columns reads contiguous rows (and
skips the rows ReLU zeroed); their scales stay per output row of the original matrix.

The float32 form is a copy of the layers' weights in this layout (302 MB for the full-size v2 GPT),
held next to the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from anchorvoice.plugins.gsv.t2s_model import T2SLayer

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(N, K) float -> (q (N, K) int8, scale (N,) float32) with weight ~= q * scale[:, None]."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp_min(1e-8) / 127.0
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


@dataclass
class StepWeights:
    """All layers' weights, stacked per kind, as contiguous numpy arrays (L = n_layer, D = width, F = 4 D).

    ``qkv`` (L, 3D, D) rows q | k | v; ``out_t`` (L, D, D) = out_proj^T (input-major); ``ff1`` (L, F, D);
    ``ff2_t`` (L, F, D) = linear2^T (input-major); all four int8 or all float32. ``*_scale`` and
    ``*_bias`` (L, N) float32 per output row (scales all 1 for float32). ``norm*`` (L, D) float32
    LayerNorm weight / bias.
    """

    qkv: I8 | F32
    qkv_scale: F32
    qkv_bias: F32
    out_t: I8 | F32
    out_scale: F32
    out_bias: F32
    ff1: I8 | F32
    ff1_scale: F32
    ff1_bias: F32
    ff2_t: I8 | F32
    ff2_scale: F32
    ff2_bias: F32
    norm1_weight: F32
    norm1_bias: F32
    norm2_weight: F32
    norm2_bias: F32
    eps: float

    @classmethod
    def from_layers(cls, layers: list[T2SLayer], quantize: bool = True) -> StepWeights:
        """Stack a list of :class:`anchorvoice.plugins.gsv.t2s_model.T2SLayer` (all with one LayerNorm eps):
        int8 per-row quantized (``quantize``) or float32 as they are."""
        parts: dict[str, list[np.ndarray]] = {}

        def add(name: str, value: Tensor) -> None:
            parts.setdefault(name, []).append(
                value.detach().float().numpy() if value.dtype != torch.int8 else value.numpy()
            )

        eps = {float(layer.norm1.eps) for layer in layers} | {float(layer.norm2.eps) for layer in layers}
        if len(eps) != 1:
            raise ValueError(f"the decode step needs one LayerNorm eps for all layers, got {sorted(eps)}")
        for layer in layers:
            attn = layer.self_attn
            for name, lin_w, lin_b, transpose in (
                ("qkv", attn.in_proj_weight, attn.in_proj_bias, False),
                ("out", attn.out_proj.weight, attn.out_proj.bias, True),
                ("ff1", layer.linear1.weight, layer.linear1.bias, False),
                ("ff2", layer.linear2.weight, layer.linear2.bias, True),
            ):
                if quantize:
                    q, scale = quantize_rows(lin_w)
                else:
                    q, scale = lin_w.detach().float(), torch.ones(lin_w.shape[0])
                add(name + ("_t" if transpose else ""), q.t() if transpose else q)
                add(name + "_scale", scale)
                add(name + "_bias", lin_b)
            add("norm1_weight", layer.norm1.weight)
            add("norm1_bias", layer.norm1.bias)
            add("norm2_weight", layer.norm2.weight)
            add("norm2_bias", layer.norm2.bias)
        arrays = {name: np.ascontiguousarray(np.stack(values)) for name, values in parts.items()}
        return cls(**arrays, eps=eps.pop())  # type: ignore[arg-type]

    def dequantized(self, layer: int) -> dict[str, Tensor]:
        """Float32 weights of one layer in the torch layout (N, K), for reference computations."""

        def deq(q: I8 | F32, scale: F32, transposed: bool) -> Tensor:
            w = torch.from_numpy(q.astype(np.float32))
            return (w.t() if transposed else w) * torch.from_numpy(scale)[:, None]

        return {
            "in_proj_weight": deq(self.qkv[layer], self.qkv_scale[layer], False),
            "in_proj_bias": torch.from_numpy(self.qkv_bias[layer]),
            "out_proj.weight": deq(self.out_t[layer], self.out_scale[layer], True),
            "out_proj.bias": torch.from_numpy(self.out_bias[layer]),
            "linear1.weight": deq(self.ff1[layer], self.ff1_scale[layer], False),
            "linear1.bias": torch.from_numpy(self.ff1_bias[layer]),
            "linear2.weight": deq(self.ff2_t[layer], self.ff2_scale[layer], True),
            "linear2.bias": torch.from_numpy(self.ff2_bias[layer]),
        }
