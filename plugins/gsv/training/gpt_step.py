"""The GPT (s1) training step: next-semantic-token cross-entropy (``Text2SemanticDecoder.forward_old``).

Inputs per item: phone ids (P,), BERT features (1024, P) and the semantic tokens (T,). The text
(with its own positions) is followed by the tokens (with theirs); text rows attend to all text,
token rows to all text and earlier tokens; padding is never attended. From the last text position
on, the head predicts each next token and finally EOS (1024): ``sum`` cross-entropy over the
T + 1 targets of every item (the official reduction: longer utterances weigh more).

Optimiser: the official trainer uses ScaledAdam (lr 0.01 nominal; its scheduler actually pins the
rate at 0.002) and steps only every 4th batch. Here AdamW steps every batch with the official
``WarmupCosineLRSchedule`` shape (init -> peak linearly over ``warmup_steps``, cosine to ``end``):
AdamW's step size does not scale with the parameter norm as ScaledAdam's does, so its peak is 1e-4
(the rate of the official ``lr_end``) rather than 0.002. Not yet measured against ScaledAdam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.engine.training import NonFiniteLoss
from anchorvoice.plugins.gsv.t2s_model import Text2SemanticDecoder


@dataclass
class GptTrainConfig:
    """Hyper-parameters of the s1 fine-tune."""

    lr_init: float = 1e-5
    """Learning rate at step 0."""
    lr_peak: float = 1e-4
    """Learning rate at the end of the warm-up."""
    lr_end: float = 1e-5
    """Learning rate at ``decay_steps`` and after."""
    warmup_steps: int = 200
    """Steps of linear warm-up (official 2000 over a large corpus; a fine-tune has a few hundred steps)."""
    decay_steps: int = 4000
    """Step at which the cosine decay reaches ``lr_end``."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    gradient_clip: float = 1.0
    """Max gradient norm (official ``train.gradient_clip``)."""


@dataclass
class GptBatch:
    """Right-padded s1 batch."""

    phones: Tensor
    """(B, P) phone ids."""
    phone_lens: Tensor
    """(B,)"""
    bert: Tensor
    """(B, 1024, P)"""
    semantic: Tensor
    """(B, T) tokens, padded with EOS."""
    semantic_lens: Tensor
    """(B,)"""

    def to(self, device: torch.device | str) -> GptBatch:
        return GptBatch(*(t.to(device) for t in (self.phones, self.phone_lens, self.bert, self.semantic,
                                                 self.semantic_lens)))


def collate_gpt(items: list[tuple[list[int], Tensor, list[int]]], eos: int = 1024) -> GptBatch:
    """Items ``(phones, bert (1024, P), semantic)`` -> :class:`GptBatch`."""
    b = len(items)
    p = max(len(x[0]) for x in items)
    t = max(len(x[2]) for x in items)
    phones = torch.zeros(b, p, dtype=torch.long)
    bert = torch.zeros(b, 1024, p)
    sem = torch.full((b, t), eos, dtype=torch.long)
    for i, (ph, be, se) in enumerate(items):
        phones[i, : len(ph)] = torch.tensor(ph)
        bert[i, :, : be.shape[1]] = be
        sem[i, : len(se)] = torch.tensor(se)
    return GptBatch(phones, torch.tensor([len(x[0]) for x in items]), bert, sem,
                    torch.tensor([len(x[2]) for x in items]))


class GptTrainModel(nn.Module):
    """Wraps a :class:`Text2SemanticDecoder` under the official attribute ``model``; ``forward`` -> summed loss."""

    def __init__(self, model: Text2SemanticDecoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: GptBatch) -> tuple[Tensor, Tensor]:
        """-> (sum cross-entropy, number of targets)."""
        m = self.model
        eos = m.config.eos
        b, p = batch.phones.shape
        t = batch.semantic.shape[1]
        dev = batch.phones.device
        x = m.embed_text(batch.phones, batch.bert)
        y_valid = torch.arange(t, device=dev)[None] < batch.semantic_lens[:, None]  # (B, T)
        codes = torch.where(y_valid, batch.semantic, torch.full_like(batch.semantic, eos))
        targets = torch.cat([codes, torch.full((b, 1), eos, device=dev, dtype=torch.long)], 1)
        y = m.embed_audio(codes)
        x_valid = torch.arange(p, device=dev)[None] < batch.phone_lens[:, None]
        key_ok = torch.cat([x_valid, y_valid], 1)  # (B, P + T)
        attend = torch.zeros(p + t, p + t, dtype=torch.bool, device=dev)
        attend[:, :p] = True
        attend[p:, p:] = torch.ones(t, t, dtype=torch.bool, device=dev).tril()
        mask = (attend[None] & key_ok[:, None, :]).unsqueeze(1)  # (B, 1, L, L)
        h = torch.cat([x, y], 1)
        for layer in m.h.layers:
            h = layer(h, mask)
        # Target 0 is predicted at item i's last real phone, target j >= 1 at token j - 1 (position P + j - 1).
        pred_pos = torch.where(torch.arange(t + 1, device=dev)[None] == 0, batch.phone_lens[:, None] - 1,
                               p - 1 + torch.arange(t + 1, device=dev)[None])
        hid = torch.gather(h, 1, pred_pos[..., None].expand(-1, -1, h.shape[-1]))
        logits = m.ar_predict_layer(hid)  # (B, T + 1, V)
        tgt_ok = torch.arange(t + 1, device=dev)[None] <= batch.semantic_lens[:, None]
        loss = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
        return (loss * tgt_ok).sum(), tgt_ok.sum()


def lr_at(step: int, cfg: GptTrainConfig) -> float:
    """Official ``WarmupCosineLRSchedule`` shape (without its pin at 0.002)."""
    if step < cfg.warmup_steps:
        return cfg.lr_init + (cfg.lr_peak - cfg.lr_init) * step / max(1, cfg.warmup_steps)
    if step > cfg.decay_steps:
        return cfg.lr_end
    ratio = (step - cfg.warmup_steps) / max(1, cfg.decay_steps - cfg.warmup_steps)
    return cfg.lr_end + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr_peak - cfg.lr_end)


class GptTrainer:
    """AdamW step per batch on the summed cross-entropy."""

    def __init__(self, model: nn.Module, cfg: GptTrainConfig, precision: str = "fp32",
                 params: list[nn.Parameter] | None = None, loss_scale: float = 1.0) -> None:
        """``loss_scale``: the number of processes under DDP (which averages gradients), so that the
        summed loss gives the same gradient as one process on the whole global batch."""
        self.model, self.cfg, self.loss_scale = model, cfg, loss_scale
        self.device = next(model.parameters()).device
        self.precision = precision if self.device.type == "cuda" else "fp32"
        trainable = params if params is not None else [p for p in model.parameters() if p.requires_grad]
        self.params = trainable
        self.optim = torch.optim.AdamW(trainable, lr=cfg.lr_init, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
        self.steps = 0
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def step(self, batch: GptBatch) -> dict[str, float]:
        batch = batch.to(self.device)
        for g in self.optim.param_groups:
            g["lr"] = lr_at(self.steps, self.cfg)
        self.model.train()
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            loss, n = self.model(batch)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"GPT loss is {float(loss)} at step {self.steps}")
        self.optim.zero_grad()
        self.scaler.scale(loss * self.loss_scale).backward()
        self.scaler.unscale_(self.optim)
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.gradient_clip)
        self.scaler.step(self.optim)
        self.scaler.update()
        self.steps += 1
        return {"loss": float(loss.detach()), "loss_per_token": float(loss.detach()) / max(1, int(n))}

    def state_dict(self) -> dict[str, Any]:
        return {"optim": self.optim.state_dict(), "steps": self.steps, "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optim.load_state_dict(state["optim"])
        self.steps = int(state["steps"])
        self.scaler.load_state_dict(state["scaler"])
