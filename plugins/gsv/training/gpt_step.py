"""The GPT (s1) training step, as the official ``Text2SemanticLightningModule.training_step`` runs it.

Loss (``Text2SemanticDecoder.forward_old``): inputs per item are phone ids (P,), BERT features
(1024, P) and the semantic tokens (T,). The text (with its own positions) is followed by the
tokens (with theirs); text rows attend to all text, token rows to all text and earlier tokens;
padding is never attended. From the last text position on, the head predicts each next token and
finally EOS (1024): ``sum`` cross-entropy over the T + 1 targets of every item (the official
reduction: longer utterances weigh more). The logged accuracy is the official top-3 accuracy over
the non-EOS targets. Dropout 0.1 after both positional embeddings, on the attention weights and in
every layer's two residual branches and FFN (the official layers hard-code 0.1; ``model.dropout``
of the config only reaches the token embeddings, 0 in every official config).

Official padding, on request (``official_padding``): the official collate pads phones on the
right but ``forward_old`` masks the *left* ``P - len`` phone positions (``make_pad_mask_left``) and
reads every item's first prediction at position ``P - 1``; it also scores the padded token
positions (EOS after EOS). An item shorter than the longest in its batch therefore loses its
first phones and is read from a padding position. Off by default (each item's loss is then what
it would be alone); on, the loss equals the official one for any batch, which the conformance
test checks. Batches whose items have equal lengths give the same loss either way.

Stepping (the official ``training_step``): the gradient of every batch is accumulated and the
optimiser steps after the batch whose index *within the epoch* is a positive multiple of 4 (4, 8,
...), so the first step of each epoch sums 5 batches (and what the previous epoch left over). An
epoch of 4 or fewer batches would never step in the official trainer; here it steps after its
last batch instead (the only departure, and a logged one). Two things the official trainer does
not do: under DDP the batches that do not step skip the all-reduce (``no_sync``), and the gradients
accumulated since the last step (:meth:`GptTrainer.pending`) are saved with the state, so a run
interrupted mid-cycle (or at an epoch end that leaves a remainder) resumes exactly where it stopped.

Optimiser: ScaledAdam (:mod:`.scaled_adam`) with lr 0.01, betas (0.9, 0.95), clipping_scale 2,
clipping_update_period 1000, no other gradient clipping (``train.gradient_clip`` of the config is
ignored by Lightning under manual optimisation). Learning rate: the official
``WarmupCosineLRSchedule`` computes a warm-up (1e-5 -> 0.01 over 2000 steps) and a cosine decay
to 1e-4 at 40000 steps, then overrides it with a constant 0.002; since it is first called after
the first optimiser step, that step runs at the optimiser's nominal 0.01. ``pinned_lr=None``
follows the computed curve instead.

AdamW (``GptTrainConfig.adamw()``) stays for LoRA: ScaledAdam moves a tensor in proportion to its
RMS, and a LoRA ``B`` starts at zero, so it would crawl at ``param_min_rms`` (1e-5) per step.
Measured (``python -m bench.train_gpt_step --compare``: fixture-size model d=128, 3 layers,
from random weights, synthetic learnable data, 240 batches of 4 = 56 optimiser steps each, dropout
0.1, held-out cross-entropy per token, start 7.01): ScaledAdam at the official rates 5.02, AdamW
warmed up to 1e-4 (the AdamW recipe before the LoRA rate scale) 5.69, AdamW warmed up to 1e-3 2.40.
The official rates are conservative (with momentum, a steady step moves each element by about 0.002
of its tensor's RMS); ScaledAdam stays the default
because it is what the official fine-tune does from a pretrained base, which this from-scratch toy
does not measure.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.engine.training import NonFiniteLoss
from anchorvoice.errors import TrainingError
from anchorvoice.plugins.gsv.t2s_model import SelfAttention, T2SLayer, Text2SemanticDecoder
from anchorvoice.plugins.gsv.training.precision import autocast, training_precision
from anchorvoice.plugins.gsv.training.scaled_adam import ScaledAdam

OPTIMIZERS = ("scaled_adam", "adamw")


@dataclass
class GptTrainConfig:
    """Hyper-parameters of the s1 fine-tune (defaults: the official trainer with s1longer-v2.yaml)."""

    optimizer: str = "scaled_adam"
    """``scaled_adam`` (official) or ``adamw``."""
    accumulate: int = 4
    """Step after in-epoch batch indices that are positive multiples of this (official 4); 1 = every batch."""
    first_step_lr: float | None = 0.01
    """Rate of optimiser step 0 (official: ScaledAdam's nominal lr, set before the scheduler first runs);
    None: step 0 follows the schedule."""
    pinned_lr: float | None = 0.002
    """Constant rate after step 0 (official ``WarmupCosineLRSchedule`` pins 0.002); None: the curve below."""
    lr_init: float = 1e-5
    """Curve: rate at its step 0 (``optimizer.lr_init``)."""
    lr_peak: float = 0.01
    """Curve: rate at the end of the warm-up (``optimizer.lr``)."""
    lr_end: float = 1e-4
    """Curve: rate at ``decay_steps`` and after (``optimizer.lr_end``)."""
    warmup_steps: int = 2000
    """Curve: optimiser steps of linear warm-up (``optimizer.warmup_steps``)."""
    decay_steps: int = 40000
    """Curve: optimiser step where the cosine reaches ``lr_end`` (``optimizer.decay_steps``)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """Both optimisers' betas (official ScaledAdam betas)."""
    clipping_scale: float | None = 2.0
    """ScaledAdam: clip to this times the median gradient norm of the last period."""
    clipping_update_period: int = 1000
    """ScaledAdam: optimiser steps per clipping period (no clipping before the first period ends)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    gradient_clip: float = 0.0
    """Max total gradient norm before the step; 0 = none (official GPT: none)."""
    dropout: float = 0.1
    """Dropout in training (official layers and positional embeddings: 0.1)."""
    official_padding: bool = False
    """Reproduce the official left-mask / padded-target loss on mixed-length batches (see module doc)."""

    @classmethod
    def adamw(cls, **overrides: Any) -> GptTrainConfig:
        """AdamW with a warm-up to 1e-4 and a cosine decay to 1e-5 (``--gpt-optimizer adamw``); with
        ``--lora`` the recipe scales it by ``--lora-lr-scale`` (30 by default: a peak of 3e-3; see
        ``options.gpt_train_config``)."""
        cfg = cls(optimizer="adamw", first_step_lr=None, pinned_lr=None, lr_init=1e-5, lr_peak=1e-4, lr_end=1e-5,
                  warmup_steps=50, decay_steps=1000, weight_decay=0.01, gradient_clip=1.0)
        return replace(cfg, **overrides)

    def scaled(self, factor: float) -> GptTrainConfig:
        """The same schedule with every rate times ``factor`` (``--lr-scale``)."""
        return replace(self, first_step_lr=None if self.first_step_lr is None else self.first_step_lr * factor,
                       pinned_lr=None if self.pinned_lr is None else self.pinned_lr * factor,
                       lr_init=self.lr_init * factor, lr_peak=self.lr_peak * factor, lr_end=self.lr_end * factor)


def lr_at(step: int, cfg: GptTrainConfig) -> float:
    """Rate of optimiser step ``step`` (0-based); the curve is the official ``WarmupCosineLRSchedule``."""
    if cfg.first_step_lr is not None:
        if step == 0:
            return cfg.first_step_lr
        step -= 1  # the scheduler's own counter lags one step behind
    if cfg.pinned_lr is not None:
        return cfg.pinned_lr
    if step < cfg.warmup_steps:
        return cfg.lr_init + (cfg.lr_peak - cfg.lr_init) * step / max(1, cfg.warmup_steps)
    if step > cfg.decay_steps:
        return cfg.lr_end
    ratio = (step - cfg.warmup_steps) / max(1, cfg.decay_steps - cfg.warmup_steps)
    return cfg.lr_end + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr_peak - cfg.lr_end)


def steps_per_epoch(batches: int, accumulate: int) -> int:
    """Optimiser steps in an epoch of ``batches`` batches under the official stepping rule (min 1)."""
    if accumulate <= 1:
        return batches
    return max(1, (batches - 1) // accumulate)


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
    """Wraps a :class:`Text2SemanticDecoder` under the official attribute ``model``.

    ``forward(batch)`` -> (summed cross-entropy, number of scored targets, top-3 accuracy).
    """

    def __init__(self, model: Text2SemanticDecoder, dropout: float = 0.0, official_padding: bool = False) -> None:
        super().__init__()
        self.model = model
        self.official_padding = official_padding
        self.drop = nn.Dropout(dropout)
        for mod in model.modules():
            if isinstance(mod, SelfAttention):
                mod.dropout_p = dropout

    def forward(self, batch: GptBatch) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        eos = m.config.eos
        b, p = batch.phones.shape
        t = batch.semantic.shape[1]
        dev = batch.phones.device
        steps = torch.arange(t + 1, device=dev)[None]
        x = self.drop(m.embed_text(batch.phones, batch.bert))
        y_valid = steps[:, :t] < batch.semantic_lens[:, None]  # (B, T)
        codes = torch.where(y_valid, batch.semantic, torch.full_like(batch.semantic, eos))
        targets = torch.cat([codes, torch.full((b, 1), eos, device=dev, dtype=torch.long)], 1)
        y = self.drop(m.embed_audio(codes))
        if self.official_padding:  # the left P - len positions count as padding, whatever they hold
            x_valid = torch.arange(p, device=dev)[None] >= (p - batch.phone_lens)[:, None]
            pred_pos = (p - 1 + steps).expand(b, -1)
            tgt_ok = torch.ones_like(targets, dtype=torch.bool)
        else:  # target 0 at the item's last phone, target j >= 1 at token j - 1 (position P + j - 1)
            x_valid = torch.arange(p, device=dev)[None] < batch.phone_lens[:, None]
            pred_pos = torch.where(steps == 0, batch.phone_lens[:, None] - 1, p - 1 + steps)
            tgt_ok = steps <= batch.semantic_lens[:, None]
        key_ok = torch.cat([x_valid, y_valid], 1)  # (B, P + T)
        attend = torch.zeros(p + t, p + t, dtype=torch.bool, device=dev)
        attend[:, :p] = True
        attend[p:, p:] = torch.ones(t, t, dtype=torch.bool, device=dev).tril()
        mask = (attend[None] & key_ok[:, None, :]).unsqueeze(1)  # (B, 1, L, L)
        h = torch.cat([x, y], 1)
        for block in m.h.layers:  # T2SLayer with the official training dropouts
            layer = cast(T2SLayer, block)
            h = layer.norm1(h + self.drop(layer.self_attn(h, mask)))
            h = layer.norm2(h + self.drop(layer.linear2(self.drop(F.relu(layer.linear1(h))))))
        hid = torch.gather(h, 1, pred_pos[..., None].expand(-1, -1, h.shape[-1]))
        logits = m.ar_predict_layer(hid)  # (B, T + 1, V)
        loss = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
        with torch.no_grad():  # official top-3 accuracy, EOS targets ignored
            counted = tgt_ok & (targets != eos)
            hit = (logits.topk(min(3, logits.shape[-1]), -1).indices == targets[..., None]).any(-1)
            acc = (hit & counted).sum() / counted.sum().clamp(min=1)
        return (loss * tgt_ok).sum(), tgt_ok.sum(), acc


class GptTrainer:
    """Accumulates every batch's gradient and steps the optimiser on the official batch indices."""

    def __init__(self, model: nn.Module, cfg: GptTrainConfig, precision: str = "fp32",
                 params: list[nn.Parameter] | None = None, loss_scale: float = 1.0,
                 batches_per_epoch: int = 0) -> None:
        """``loss_scale``: the number of processes under DDP (which averages gradients), so that the
        summed loss gives the same gradient as one process on the whole global batch.
        ``batches_per_epoch``: when at most ``cfg.accumulate``, the last batch of each epoch steps."""
        if cfg.optimizer not in OPTIMIZERS:
            raise TrainingError(f"unknown GPT optimizer {cfg.optimizer!r}; choose {' or '.join(OPTIMIZERS)}")
        self.model, self.cfg, self.loss_scale = model, cfg, loss_scale
        self.batches_per_epoch = batches_per_epoch
        self.device = next(model.parameters()).device
        self.precision = training_precision(precision, self.device)
        self.params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
        self.optim: torch.optim.Optimizer
        if cfg.optimizer == "scaled_adam":
            self.optim = ScaledAdam(self.params, lr=lr_at(0, cfg), betas=cfg.betas,
                                    clipping_scale=cfg.clipping_scale,
                                    clipping_update_period=cfg.clipping_update_period)
        else:
            self.optim = torch.optim.AdamW(self.params, lr=lr_at(0, cfg), betas=cfg.betas,
                                           weight_decay=cfg.weight_decay)
        self.steps = 0
        """Optimiser steps taken."""
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def steps_here(self, index: int) -> bool:
        """Whether the optimiser steps after the batch with in-epoch ``index``."""
        acc = self.cfg.accumulate
        if acc <= 1 or (index > 0 and index % acc == 0):
            return True
        return 0 < self.batches_per_epoch <= acc and index == self.batches_per_epoch - 1

    def step(self, batch: GptBatch, index: int) -> dict[str, float]:
        """Forward and backward one batch (``index`` within its epoch); steps the optimiser when due."""
        batch = batch.to(self.device)
        self.model.train()
        due = self.steps_here(index)
        # Under DDP a batch that does not step keeps its gradient local (no all-reduce); the batch that
        # steps all-reduces the sum of the cycle: the same mean gradient with one reduction per step.
        local = not due and isinstance(self.model, nn.parallel.DistributedDataParallel)
        with self.model.no_sync() if local else nullcontext():  # type: ignore[operator]
            with autocast(self.device, self.precision):
                loss, n, acc = self.model(batch)
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"GPT loss is {float(loss)} at optimiser step {self.steps}, batch {index}")
            self.scaler.scale(loss * self.loss_scale).backward()
        lr = lr_at(self.steps, self.cfg)
        if due:
            for g in self.optim.param_groups:
                g["lr"] = lr
            self.scaler.unscale_(self.optim)
            if self.cfg.gradient_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg.gradient_clip)
            self.scaler.step(self.optim)
            self.scaler.update()
            self.optim.zero_grad()
            self.steps += 1
        value = float(loss.detach())
        return {"loss": value, "loss_per_token": value / max(1, int(n)), "acc": float(acc), "lr": lr}

    def pending(self) -> list[Tensor | None]:
        """The gradients accumulated since the last optimiser step (under DDP: this process's own, not yet
        all-reduced); saved with the state so that a resumed run steps on the whole cycle."""
        return [None if p.grad is None else p.grad.detach().cpu().clone() for p in self.params]

    def load_pending(self, grads: list[Tensor | None]) -> None:
        """Put back what :meth:`pending` saved."""
        if len(grads) != len(self.params) or any(
                g is not None and g.shape != p.shape for g, p in zip(grads, self.params, strict=True)):
            raise TrainingError("the saved GPT gradients do not match this model; start a new run without --resume")
        for p, g in zip(self.params, grads, strict=True):
            p.grad = None if g is None else g.to(device=p.device, dtype=p.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.cfg.optimizer, "optim": self.optim.state_dict(), "steps": self.steps,
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("optimizer", "adamw")
        if saved != self.cfg.optimizer:
            raise TrainingError(f"the saved GPT state was trained with {saved}, this run uses {self.cfg.optimizer}; "
                                "resume with the same --gpt-optimizer or start a new run")
        self.optim.load_state_dict(state["optim"])
        self.steps = int(state["steps"])
        self.scaler.load_state_dict(state["scaler"])
