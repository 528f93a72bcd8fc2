"""Preallocated KV cache and the cached T2S forward (prefill and one-token decode).

The official decoder grows every layer's cache with ``torch.cat`` on every token (a full copy of
the cache per layer per token) and runs TorchScript classes. Here the keys and values of all
layers live in two preallocated tensors ``(n_layer, B, H, capacity, head_dim)``; a step writes its
new rows in place and attends over a view ``[..., :length]`` with ``scaled_dot_product_attention``.
Capacity grows in blocks (one copy per ``block`` tokens, not per token).

:class:`T2SRuntime` holds each layer's weights as flat kernels (packed q/k/v projection, output
projection, FFN, LayerNorm parameters) so the per-layer loop is a handful of ATen calls with no
``nn.Module`` dispatch. Precision:

* ``float32``: the model's own weights; results equal the uncached forward to float32 noise.
  One-token decode steps (T == 1) on CPU run all layers in one numba call,
  :func:`anchorvoice.plugins.gsv.t2s_step.decode_step`, on a float32 copy of the layers' weights in the
  step's layout (302 MB more memory at full size; 1.25-1.5x faster than the per-layer ATen calls on 2 cores,
  which pay ~250 dispatches and thread-pool fork/joins per token). ``fused_step=False`` keeps the
  decode in ATen (and the memory).
* ``bfloat16``: weights, activations and cache in bf16 (fast where the CPU has AVX512-bf16/AMX).
* ``int8``: prefill (T > 1) runs the linear layers as dynamically quantized int8 (per-output-channel
  weight scales, fbgemm; uses VNNI). One-token decode steps (T == 1) on CPU run the same numba step
  on weight-only int8 (float32 activations), attending over an int8 copy of the cache (one scale per
  position and head, kept beside the float32 one; ``int8_cache=False`` attends over the float32 cache).
  The embeddings, ``bert_proj`` and the prediction head stay float32.

A step mask must be one per batch row (the batched decode's (B, 1, 1, length)) for the numba step; in
``float32`` a mask that differs between heads takes the ATen layers, in ``int8`` it is refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from anchorvoice.plugins.cpu_kernels import int8_reduce_range, linear
from anchorvoice.plugins.gsv.t2s_attention import LAUNCH, quantize_positions
from anchorvoice.plugins.gsv.t2s_model import T2SLayer, Text2SemanticDecoder
from anchorvoice.plugins.gsv.t2s_step import decode_step
from anchorvoice.plugins.gsv.t2s_step_weights import StepWeights

Precision = Literal["float32", "bfloat16", "int8"]


class KVCache:
    """Keys/values of every layer: ``keys``/``values`` (n_layer, B, H, capacity, head_dim).

    ``length`` positions are filled; a forward writes ``T`` new positions for every layer, then
    :meth:`advance` moves ``length``. Batch rows can be dropped with :meth:`keep_rows`.
    """

    def __init__(
        self,
        n_layer: int,
        batch: int,
        heads: int,
        head_dim: int,
        capacity: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
        block: int = 256,
        int8: bool = False,
    ) -> None:
        shape = (n_layer, batch, heads, capacity, head_dim)
        # empty, not zeros: positions >= length are never read (every view stops at length)
        self.keys = torch.empty(shape, dtype=dtype, device=device)
        self.values = torch.empty(shape, dtype=dtype, device=device)
        self.length = 0
        self.block = block
        self.int8: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        """(keys_q, keys_scale, values_q, values_scale): the fused int8 step's copy of the cache, one
        int8 row and scale per position and head (:func:`anchorvoice.plugins.gsv.t2s_step.decode_step`)."""
        self.int8_length = 0
        """Positions of ``int8`` that hold the float32 cache's values (the rest: :meth:`sync_int8`)."""
        if int8:
            scales = shape[:4]
            self.int8 = (
                torch.empty(shape, dtype=torch.int8, device=device),
                torch.empty(scales, dtype=torch.float32, device=device),
                torch.empty(shape, dtype=torch.int8, device=device),
                torch.empty(scales, dtype=torch.float32, device=device),
            )

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    @property
    def batch(self) -> int:
        return self.keys.shape[1]

    def reserve(self, new_positions: int) -> None:
        """Make room for ``new_positions`` more; grows by whole blocks (amortised, not per token)."""
        need = self.length + new_positions
        if need <= self.capacity:
            return
        grown = need + self.block

        def grow(old: Tensor, filled: int) -> Tensor:
            new = old.new_empty(*old.shape[:3], grown, *old.shape[4:])
            new[:, :, :, :filled] = old[:, :, :, :filled]
            return new

        self.keys = grow(self.keys, self.length)
        self.values = grow(self.values, self.length)
        if self.int8 is not None:
            kq, ks, vq, vs = (grow(t, self.int8_length) for t in self.int8)
            self.int8 = (kq, ks, vq, vs)

    def write(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v (B, H, T, hd) at ``length``; return views of all ``length + T`` positions."""
        end = self.length + k.shape[2]
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, positions: int, int8_written: bool = False) -> None:
        """``positions`` more are filled; ``int8_written``: the int8 copy got them too."""
        if int8_written:
            if self.int8_length != self.length:
                raise RuntimeError("the int8 cache was written before it caught up (call sync_int8 first)")
            self.int8_length += positions
        self.length += positions

    def sync_int8(self) -> None:
        """Quantize the positions the float32 cache got since the int8 copy was last written (after a
        prefill through the ATen layers) with the fused step's own row quantizer."""
        if self.int8 is None or self.int8_length >= self.length:
            return
        kq, ks, vq, vs = self.int8
        with LAUNCH:
            quantize_positions(self.keys.numpy(), kq.numpy(), ks.numpy(), self.int8_length, self.length)
            quantize_positions(self.values.numpy(), vq.numpy(), vs.numpy(), self.int8_length, self.length)
        self.int8_length = self.length

    def keep_rows(self, rows: Tensor) -> None:
        """Keep only batch rows ``rows`` (1-D int64, ascending), e.g. after some items stopped."""
        self.keys = self.keys[:, rows].contiguous()
        self.values = self.values[:, rows].contiguous()
        if self.int8 is not None:
            kq, ks, vq, vs = (t[:, rows].contiguous() for t in self.int8)
            self.int8 = (kq, ks, vq, vs)


class _Linear:
    """y = x W^T + b in the runtime precision."""

    def __init__(self, weight: Tensor, bias: Tensor | None, precision: Precision) -> None:
        self.packed: object | None = None
        self._packed_bytes = 0
        self.reduce_range = int8_reduce_range()  # 7-bit activations where int8 sums would saturate (no VNNI)
        self.weight = weight
        self.bias = bias
        if precision == "int8":
            w = weight.detach().float()
            scale = (w.abs().amax(dim=1).clamp_min(1e-8) / 127.0).double()
            zero = torch.zeros(w.shape[0], dtype=torch.long)
            with warnings.catch_warnings():
                # quantized tensors are deprecated upstream but are the fbgemm (VNNI) path in torch 2.13
                warnings.simplefilter("ignore", UserWarning)
                qw = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
                self.packed = torch.ops.quantized.linear_prepack(qw, None if bias is None else bias.float())
            # int8 weights, float32 bias and per-row scale / zero point, inside fbgemm's packed object
            self._packed_bytes = w.numel() + 4 * w.shape[0] + 16 * w.shape[0]
            self.weight, self.bias = weight.new_empty(0), None  # the packed object holds them
        elif precision == "bfloat16":
            self.weight = weight.detach().to(torch.bfloat16)
            self.bias = None if bias is None else bias.detach().to(torch.bfloat16)
        else:
            self.weight = weight.detach()
            self.bias = None if bias is None else bias.detach()

    def hidden_host_bytes(self) -> int:
        """Bytes of the fbgemm-packed weights, which the resident budget cannot see as tensors."""
        return self._packed_bytes

    def __call__(self, x: Tensor, add: Tensor | None = None) -> Tensor:
        """x W^T + b, plus ``add`` (a residual) when given."""
        if self.packed is not None:
            y: Tensor = torch.ops.quantized.linear_dynamic(x, self.packed, self.reduce_range)
            return y if add is None else y + add
        return linear(x, self.weight, self.bias, add=add)

    def relu(self, x: Tensor) -> Tensor:
        """relu(x W^T + b); one fused kernel on the int8 path."""
        if self.packed is not None:
            return torch.ops.quantized.linear_relu_dynamic(  # type: ignore[no-any-return]
                x, self.packed, self.reduce_range
            )
        return linear(x, self.weight, self.bias, act="relu")


@dataclass
class _Layer:
    qkv: _Linear
    out: _Linear
    ff1: _Linear
    ff2: _Linear
    norm1: tuple[Tensor, Tensor, float]
    norm2: tuple[Tensor, Tensor, float]


class T2SRuntime:
    """Cached forward of a :class:`Text2SemanticDecoder` in a chosen precision.

    ``forward(x, cache, attend)``: x (B, T, D) in float32 -> logits of the LAST position (B, V)
    float32; writes T positions into ``cache``. ``attend`` is None (see every cached position) or a
    bool mask broadcastable to (B, H, T, cache.length + T), True = may attend. A T == 1 step on CPU
    runs the fused numba step (float32 and int8; see the module docstring) when the mask is the same
    for every head (e.g. the batched decode's (B, 1, 1, length)); ``step_weights`` is its weights.
    """

    def __init__(
        self, model: Text2SemanticDecoder, precision: Precision = "float32", fused_step: bool = True,
        int8_cache: bool = True,
    ) -> None:
        if precision not in ("float32", "bfloat16", "int8"):
            raise ValueError(f"precision must be 'float32', 'bfloat16' or 'int8', got {precision!r}")
        if precision == "int8" and model.ar_predict_layer.weight.device.type != "cpu":
            raise ValueError("precision 'int8' uses CPU kernels (fbgemm); use 'bfloat16' or 'float32' on a GPU")
        self.precision: Precision = precision
        self.int8_cache = precision == "int8" and int8_cache
        """Whether the fused step attends over an int8 copy of the cache (``int8`` precision only; float32 is
        the exact mode)."""
        self.model = model
        cfg = model.config
        self.heads = cfg.head
        self.dim = cfg.hidden_dim
        self.head_dim = cfg.hidden_dim // cfg.head
        self.dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        norm_dtype = self.dtype

        def norm(ln: torch.nn.LayerNorm) -> tuple[Tensor, Tensor, float]:
            return (ln.weight.detach().to(norm_dtype), ln.bias.detach().to(norm_dtype), ln.eps)

        model_layers = [cast(T2SLayer, module) for module in model.h.layers]
        self.layers: list[_Layer] = []
        for layer in model_layers:
            attn = layer.self_attn
            self.layers.append(
                _Layer(
                    qkv=_Linear(attn.in_proj_weight, attn.in_proj_bias, precision),
                    out=_Linear(attn.out_proj.weight, attn.out_proj.bias, precision),
                    ff1=_Linear(layer.linear1.weight, layer.linear1.bias, precision),
                    ff2=_Linear(layer.linear2.weight, layer.linear2.bias, precision),
                    norm1=norm(layer.norm1),
                    norm2=norm(layer.norm2),
                )
            )
        self.head_weight = model.ar_predict_layer.weight.detach()
        self.step_weights: StepWeights | None = None
        on_cpu = model.ar_predict_layer.weight.device.type == "cpu"
        if precision == "int8" or (precision == "float32" and fused_step and on_cpu):
            self.step_weights = StepWeights.from_layers(model_layers, quantize=precision == "int8")

    @property
    def layers_released(self) -> bool:
        """Whether :meth:`release_layers` dropped the model's float32 layer weights."""
        return any(p.is_meta for p in self.model.h.parameters())

    def release_layers(self) -> None:
        """Free the model's float32 transformer-layer weights, which an ``int8`` CPU runtime never reads
        again (prefill runs fbgemm's packed copies, decode steps the numba step's): 302 MB of the
        full-size model. The embeddings and the prediction head stay. The model's uncached forward and
        another runtime built from it need the weights loaded again."""
        if self.precision != "int8" or self.step_weights is None:
            raise ValueError("only an int8 CPU runtime runs without the model's float32 layer weights")
        self.model.h.to("meta")

    def new_cache(self, batch: int, capacity: int, device: torch.device | None = None) -> KVCache:
        """An empty cache sized for ``capacity`` positions (grows in blocks if exceeded)."""
        int8 = self.int8_cache and self.step_weights is not None and (device is None or device.type == "cpu")
        return KVCache(
            len(self.layers), batch, self.heads, self.head_dim, capacity, dtype=self.dtype, device=device, int8=int8
        )

    def forward(self, x: Tensor, cache: KVCache, attend: Tensor | None = None) -> Tensor:
        b, t, d = x.shape
        h, hd = self.heads, self.head_dim
        cache.reserve(t)
        if self.step_weights is not None and t == 1 and x.device.type == "cpu":
            mask = self._row_mask(attend, b, cache.length)
            if mask is not False:
                return self._fused_step(self.step_weights, x, cache, mask)
        x = x.to(self.dtype)
        for i, layer in enumerate(self.layers):
            qkv = layer.qkv(x).view(b, t, 3, h, hd).transpose(1, 3)  # (B, H, 3, T, hd)
            keys, values = cache.write(i, qkv[:, :, 1], qkv[:, :, 2])
            a = F.scaled_dot_product_attention(qkv[:, :, 0], keys, values, attn_mask=attend)
            x = layer.out(a.transpose(1, 2).reshape(b, t, d), add=x)
            x = F.layer_norm(x, (d,), *layer.norm1)
            x = layer.ff2(layer.ff1.relu(x), add=x)
            x = F.layer_norm(x, (d,), *layer.norm2)
        cache.advance(t)
        return linear(x[:, -1].float(), self.head_weight)

    def _row_mask(self, attend: Tensor | None, b: int, length: int) -> Tensor | None | Literal[False]:
        """The step's mask (B, length + 1) from ``attend``; None for no mask; False where it is not one bool
        mask per batch row (float32 then runs the ATen layers; int8 refuses it)."""
        if attend is None:
            return None
        full = attend.reshape((1,) * max(0, 4 - attend.dim()) + tuple(attend.shape))
        if attend.dtype == torch.bool and full.dim() == 4 and full.shape[1] == 1 and full.shape[2] == 1:
            return full.expand(b, 1, 1, length + 1).reshape(b, length + 1)
        if self.precision == "float32":
            return False
        if attend.dtype != torch.bool:
            raise ValueError(f"attend must be a bool mask (True = may attend), got {attend.dtype}")
        raise ValueError(
            f"the int8 decode step takes one mask per batch row (B, 1, 1, {length + 1}), got "
            f"{tuple(attend.shape)}; use precision 'float32' for per-head masks"
        )

    def _fused_step(self, weights: StepWeights, x: Tensor, cache: KVCache, mask: Tensor | None) -> Tensor:
        """One decode position (x (B, 1, D)) through the numba step; same contract as forward."""
        cache.sync_int8()
        hidden = decode_step(weights, x[:, 0], cache.keys, cache.values, cache.length, mask, cache.int8)
        cache.advance(1, int8_written=cache.int8 is not None)
        return linear(hidden, self.head_weight)
