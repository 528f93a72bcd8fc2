"""Low-rank adapters (LoRA) for the fine-tune: each adapted weight is ``W + (alpha / r) * B @ A``, only A and B train.

Targets (the official v2 trainer has no LoRA; the choice is ours, measured in ``bench/train_curve.py``):

* GPT: every layer's attention (packed ``in_proj_weight``, ``out_proj``) and FFN (``linear1``, ``linear2``);
* SoVITS, groups of :data:`SOVITS_GROUPS` (``train --lora``: :data:`SOVITS_TARGETS`, all three):
  ``prior_attention``: the attention projections ``conv_q/k/v/o`` of ``enc_p``'s encoders and MRTE;
  ``flow``: every conv of the flow (``pre``, ``post`` and the WN ``in_layers``, ``res_skip_layers``,
  ``cond_layer``); ``decoder``: every conv of the HiFi-GAN ``dec`` (``conv_pre``, ``cond``, the
  transposed ``ups``, the residual blocks' ``convs1``/``convs2``, ``conv_post``).

Why (``bench/train_curve.py``: a small SoVITS trained 80 steps on one speaker, fine-tuned 40 steps to
flite ``slt``, rank 8, held-out prior-path mel L1 from 2.703): the prior's attention alone cannot learn
a new timbre, which the decoder and flow carry (2.70 at the stage's lr; 2.693 after 20 steps even at
30x); all three groups at the stage's lr 1e-4 crawl (2.656), because B starts at zero and B @ A moves
far less per step than a full fine-tune moves W; at 30x (``lora_lr_scale``, the default of ``train
--lora-lr-scale``) they reach 2.328 (a full fine-tune 2.467; runs differing only in A's random
start spread by about 0.04). After 20 steps the decoder's adapters alone were within that spread of
all three (2.467 against 2.441-2.477); the prior's and flow's also move the prior/posterior KL and
cost 0.5 M of the full size's 1.16 M adapter parameters. The factor, swept (SoVITS after 20 steps:
x1 2.683, x10 2.534, x30 2.477, x100 2.218 but 2.578 after 10 against x30's 2.526; GPT held-out
cross-entropy per token after 40 steps from 2.352: x1 2.335, x3 2.292, x10 2.194, x30 2.132, full
2.142): 30 matches the full fine-tune in both stages without x100's swing. All of this is a toy base
trained from random weights; a pretrained base was not measured.

A conv weight (out, in, k) gets ``A`` (r, in * k) and ``B`` (out, r), the product reshaped to the
kernel (for a transposed conv, weight (in, out, k): ``B`` (in, r), ``A`` (r, out * k)). On
weight-normed convs (trained as (g, v) pairs, :mod:`..modules.weight_norm`) the delta adds to the
effective weight ``g * v / |v|``. ``A`` starts random (Kaiming), ``B`` at zero, so training starts
exactly at the base; alpha = r (as the official v3/v4 LoRA); the rank is capped at the smaller side
of each weight. The adapted module keeps its class's behaviour through a subclass whose ``weight``
(``in_proj_weight``) attribute is base + delta, so every reader of the weight (the module's forward,
the flow's GEMM taps) sees the adapted one and caches none (``weight_is_computed``).

:func:`merged_copy` folds the adapters into plain weights (weight-normed convs get the (g, v) pair of
the merged weight), so the exported files are ordinary official-format models; the voice store keeps only
the adapters (:mod:`anchorvoice.plugins.gsv.training.lora_export`), what a voice costs over its base: at
rank 8 on the full-size v2 models, 1.16 M SoVITS parameters (2.3 MB fp16, the generator is 42.4 M) and
1.57 M GPT parameters (3.1 MB).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn

from anchorvoice.plugins.gsv.modules.attention import MultiHeadAttention
from anchorvoice.plugins.gsv.modules.weight_norm import WeightNormed, WNConv1d, WNConvTranspose1d
from anchorvoice.plugins.gsv.t2s_model import SelfAttention, T2SLayer, Text2SemanticDecoder

SOVITS_GROUPS = ("prior_attention", "flow", "decoder")
"""The SoVITS module groups that can carry adapters."""
SOVITS_TARGETS = SOVITS_GROUPS
"""What ``train --lora`` adapts in SoVITS."""


class LoraDelta(nn.Module):
    """The adapter pair of one weight of ``shape`` (d0, d1, ...): ``delta = scale * (B @ A)`` reshaped to it."""

    def __init__(self, shape: torch.Size | tuple[int, ...], rank: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        fan_in = math.prod(self.shape[1:])
        rank = max(1, min(rank, self.shape[0], fan_in))
        self.lora_A = nn.Parameter(torch.empty(rank, fan_in))
        self.lora_B = nn.Parameter(torch.zeros(self.shape[0], rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = 1.0  # alpha = rank

    def delta(self) -> Tensor:
        return (self.scale * (self.lora_B @ self.lora_A)).view(self.shape)


class _Adapted(nn.Module):
    """Mixin (first base): reading ``self.<_adapted_name>`` gives the base weight plus the adapter's delta,
    for every user of the attribute (the module's forward, the flow's GEMM taps)."""

    _adapted_name = "weight"
    lora: LoraDelta

    @property
    def weight_is_computed(self) -> bool:
        """The weight is a new tensor on every access (no cached copies of it may be kept)."""
        return True

    def __getattr__(self, name: str) -> Any:
        if name == self._adapted_name:
            base = super().__getattr__(name)
            assert isinstance(base, Tensor)
            return base + self.lora.delta()
        return super().__getattr__(name)


class _LoraLinear(_Adapted, nn.Linear):
    pass


class _LoraConv1d(_Adapted, nn.Conv1d):
    pass


class _LoraWNConv1d(_Adapted, WNConv1d):
    pass


class _LoraWNConvTranspose1d(_Adapted, WNConvTranspose1d):
    pass


class _LoraSelfAttention(_Adapted, SelfAttention):
    _adapted_name = "in_proj_weight"


_ADAPTED: dict[type[nn.Module], type[_Adapted]] = {
    nn.Linear: _LoraLinear, nn.Conv1d: _LoraConv1d, WNConv1d: _LoraWNConv1d,
    WNConvTranspose1d: _LoraWNConvTranspose1d, SelfAttention: _LoraSelfAttention,
}
_BASE = {v: k for k, v in _ADAPTED.items()}


def adapt(module: nn.Module, rank: int) -> None:
    """Give ``module`` (a Linear, Conv1d, weight-norm conv or T2S attention) an adapter, in place."""
    kind = _ADAPTED.get(type(module))
    if kind is None:
        raise TypeError(f"no LoRA adapter for {type(module).__name__}")
    weight: Tensor = getattr(module, kind._adapted_name)
    module.__class__ = kind
    module.lora = LoraDelta(weight.shape, rank).to(weight.device)


def is_adapter(name: str) -> bool:
    """Whether a parameter name is an adapter tensor (``...lora.lora_A`` / ``...lora.lora_B``)."""
    return name.rsplit(".", 1)[-1] in ("lora_A", "lora_B")


def adapters(model: nn.Module) -> list[nn.Parameter]:
    """The adapter parameters of ``model``."""
    return [p for n, p in model.named_parameters() if is_adapter(n)]


def add_lora_gpt(model: Text2SemanticDecoder, rank: int) -> list[nn.Parameter]:
    """Freeze ``model`` and add adapters to every layer's attention and FFN; returns the trainable ones."""
    model.requires_grad_(False)
    for layer in model.h.layers:
        assert isinstance(layer, T2SLayer)
        for mod in (layer.self_attn, layer.self_attn.out_proj, layer.linear1, layer.linear2):
            adapt(mod, rank)
    return adapters(model)


def sovits_target_modules(model: nn.Module, groups: tuple[str, ...]) -> list[nn.Module]:
    """The modules of a SoVITS generator that the named :data:`SOVITS_GROUPS` adapt."""
    bad = [g for g in groups if g not in SOVITS_GROUPS]
    if bad or not groups:
        raise ValueError(f"unknown SoVITS LoRA group(s) {bad or '(none)'}; choose among {', '.join(SOVITS_GROUPS)}")
    out: list[nn.Module] = []
    if "prior_attention" in groups:
        for mod in model.enc_p.modules():  # type: ignore[union-attr]
            if isinstance(mod, MultiHeadAttention):
                out += [mod.conv_q, mod.conv_k, mod.conv_v, mod.conv_o]
    convs = (nn.Conv1d, nn.ConvTranspose1d)
    for group, owner in (("flow", "flow"), ("decoder", "dec")):
        if group in groups:
            out += [m for m in getattr(model, owner).modules() if isinstance(m, convs)]
    return out


def add_lora_sovits(model: nn.Module, rank: int, groups: tuple[str, ...] = SOVITS_TARGETS) -> list[nn.Parameter]:
    """Freeze ``model`` and add adapters to the convs of ``groups``; returns the trainable ones."""
    model.requires_grad_(False)
    for mod in sovits_target_modules(model, groups):
        adapt(mod, rank)
    return adapters(model)


def lora_state(model: nn.Module) -> dict[str, Tensor]:
    """Only the adapter tensors (what a voice costs over its base)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if is_adapter(k)}


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy with every adapter folded into its weight and the original module types restored."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for mod in out.modules():
            if not isinstance(mod, _Adapted):
                continue
            name = mod._adapted_name
            merged = getattr(mod, name).detach().clone()
            del mod.lora
            mod.__class__ = _BASE[type(mod)]  # type: ignore[assignment]
            if isinstance(mod, WeightNormed) and mod.trains_weight_norm:  # the (g, v) pair of the merged weight
                mod.weight_g.copy_(torch.norm_except_dim(merged, 2, 0))
                mod.weight_v.copy_(merged)
            else:
                param = mod._parameters[name]
                assert param is not None
                param.copy_(merged)
    return out
