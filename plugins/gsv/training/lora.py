"""Low-rank adapters (LoRA) for the fine-tune: ``W x + (alpha / r) * B(A(x))`` with only A and B trained.

Targets (the issue's choice; the official v2 trainer has no LoRA): the GPT's attention
(``in_proj_weight``, ``out_proj``) and FFN (``linear1``, ``linear2``) of every layer, and the SoVITS
prior's attention projections (``conv_q/k/v/o`` of ``enc_p``'s encoders and MRTE). ``A`` starts
random (Kaiming), ``B`` at zero, so training starts exactly at the base model; alpha = rank (as the
official v3/v4 LoRA). :func:`merged_copy` folds the adapters into plain weights for export, so the
exported files are ordinary official-format models; :func:`lora_state` is what a voice store needs
to keep (a few MB).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.plugins.gsv.t2s_model import SelfAttention, T2SLayer, Text2SemanticDecoder


class LoraDelta(nn.Module):
    """The adapter pair of one weight of shape (out, in[, 1]): ``delta = scale * B @ A``."""

    def __init__(self, out_features: int, in_features: int, rank: int) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = 1.0  # alpha = rank

    def delta(self) -> Tensor:
        return self.scale * (self.lora_B @ self.lora_A)


def _attach(module: nn.Module, attr: str, rank: int) -> LoraDelta:
    weight: Tensor = getattr(module, attr)
    adapter = LoraDelta(weight.shape[0], weight.shape[1], rank).to(weight.device)
    module.register_module(f"lora_{attr}", adapter)
    return adapter


class _LoraLinear(nn.Module):
    """``nn.Linear`` with an adapter (weights kept under the original names for merging)."""

    def __init__(self, base: nn.Linear, rank: int) -> None:
        super().__init__()
        self.weight, self.bias = base.weight, base.bias
        self.lora = LoraDelta(base.out_features, base.in_features, rank).to(base.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight + self.lora.delta(), self.bias)


class _LoraConv1x1(nn.Module):
    """A kernel-1 ``nn.Conv1d`` with an adapter."""

    def __init__(self, base: nn.Conv1d, rank: int) -> None:
        super().__init__()
        self.weight, self.bias = base.weight, base.bias
        self.lora = LoraDelta(base.out_channels, base.in_channels, rank).to(base.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight + self.lora.delta()[:, :, None], self.bias)


class _LoraSelfAttention(SelfAttention):
    """T2S self-attention whose packed ``in_proj_weight`` gets an adapter."""

    lora: LoraDelta

    def forward(self, x: Tensor, attend: Tensor | None) -> Tensor:
        b, t, d = x.shape
        w = self.in_proj_weight + self.lora.delta()
        qkv = F.linear(x, w, self.in_proj_bias).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                             dropout_p=self.dropout_p if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


def _adapters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if ".lora_" in f".{n}" or "lora." in n]


def add_lora_gpt(model: Text2SemanticDecoder, rank: int) -> list[nn.Parameter]:
    """Freeze ``model`` and add adapters to every layer's attention and FFN; returns the trainable ones."""
    model.requires_grad_(False)
    for layer in model.h.layers:
        assert isinstance(layer, T2SLayer)
        attn = layer.self_attn
        attn.__class__ = _LoraSelfAttention
        attn.lora = LoraDelta(attn.in_proj_weight.shape[0], attn.in_proj_weight.shape[1], rank).to(
            attn.in_proj_weight.device)
        for owner, name in ((attn, "out_proj"), (layer, "linear1"), (layer, "linear2")):
            setattr(owner, name, _LoraLinear(getattr(owner, name), rank))
    return _adapters(model)


def add_lora_sovits(model: nn.Module, rank: int) -> list[nn.Parameter]:
    """Freeze ``model`` and add adapters to the attention projections of the prior ``enc_p``."""
    from anchorvoice.plugins.gsv.modules.attention import MultiHeadAttention

    model.requires_grad_(False)
    for mod in model.enc_p.modules():  # type: ignore[union-attr]
        if isinstance(mod, MultiHeadAttention):
            for name in ("conv_q", "conv_k", "conv_v", "conv_o"):
                setattr(mod, name, _LoraConv1x1(getattr(mod, name), rank))
    return _adapters(model)


def lora_state(model: nn.Module) -> dict[str, Tensor]:
    """Only the adapter tensors (what a voice costs over its base)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if "lora" in k}


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy with every adapter folded into its weight and the original module types restored."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for parent in list(out.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _LoraLinear):
                    lin = nn.Linear(child.weight.shape[1], child.weight.shape[0], bias=child.bias is not None)
                    lin.weight.copy_(child.weight + child.lora.delta())
                    if child.bias is not None and lin.bias is not None:
                        lin.bias.copy_(child.bias)
                    setattr(parent, name, lin)
                elif isinstance(child, _LoraConv1x1):
                    conv = nn.Conv1d(child.weight.shape[1], child.weight.shape[0], 1, bias=child.bias is not None)
                    conv.weight.copy_(child.weight + child.lora.delta()[:, :, None])
                    if child.bias is not None and conv.bias is not None:
                        conv.bias.copy_(child.bias)
                    setattr(parent, name, conv)
            if isinstance(parent, _LoraSelfAttention):
                parent.in_proj_weight.copy_(parent.in_proj_weight + parent.lora.delta())
                del parent.lora
                parent.__class__ = SelfAttention  # type: ignore[assignment]
    return out
