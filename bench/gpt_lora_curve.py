"""Part 3 of ``bench/train_curve.py``: GPT fine-tune to a new speaker, the official recipe against LoRA.

Data: each clip's phones (English: BERT features are zeros, as the official front end gives them) and
its semantic tokens from the part-1 SoVITS's frozen quantizer (``extract_latent`` on the clip's HuBERT
features). A GPT of the reference fixture's sizes (d 128, 4 heads, 3 layers; gsv_reference/README.md
section 2.1) learns the base speaker from random weights (AdamW warmed up to 1e-3 over a tenth of
``--gpt-base-steps`` optimiser steps, one batch per step, dropout 0.1), then fine-tunes to slt's clips
for ``--gpt-steps`` optimiser steps from that same base on the same batches: ``full`` with the
official recipe (``GptTrainConfig()``: ScaledAdam, 4-batch accumulation, 0.01 then 0.002) and
``lora R xS`` with ``train --lora R --lora-lr-scale S``'s (``options.gpt_train_config``: AdamW warmed
up to S x 1e-4, decayed over the run, same accumulation) for each ``--gpt-lora-scales`` factor S
(default: ``train --lora``'s). Printed: the
held-out cross-entropy per token (``GptTrainModel``, eval mode) every ``--finetune-eval-steps`` optimiser
steps.
"""

from __future__ import annotations

import argparse
import copy
import math
import random
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder
from anchorvoice.plugins.gsv.training.gpt_step import (
    GptTrainConfig,
    GptTrainer,
    GptTrainModel,
    collate_gpt,
    steps_per_epoch,
)
from anchorvoice.plugins.gsv.training.lora import add_lora_gpt
from anchorvoice.plugins.gsv.training.options import TrainOptions, gpt_train_config
from anchorvoice.plugins.gsv.training.sovits_step import SovitsTrainModel
from bench.curve_data import Clip

GptItem = tuple[list[int], Tensor, list[int]]
FIXTURE_GPT = T2SConfig(hidden_dim=128, embedding_dim=128, head=4, n_layer=3)
"""``s1_v2_small.ckpt``'s sizes."""


@torch.no_grad()
def gpt_items(sovits: SovitsTrainModel, clips: list[Clip]) -> list[GptItem]:
    sovits.eval()
    out = []
    for c in clips:
        ssl, phones = c.item[0], c.item[3]
        tokens = sovits.extract_latent(ssl[None])[0, 0].tolist()
        out.append((phones, torch.zeros(1024, len(phones)), tokens))
    return out


@torch.no_grad()
def held_out_loss(model: GptTrainModel, items: list[GptItem], eos: int) -> float:
    """Cross-entropy per scored token (EOS included) over ``items``, dropout off."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(items), 8):
        loss, n, _ = model(collate_gpt(items[i : i + 8], eos))
        total, count = total + float(loss), count + int(n)
    model.train()
    return total / count


def feed(items: list[GptItem], batch: int, eos: int) -> Any:
    """Endless (batch, in-epoch index) in seeded shuffled epochs, as the recipe steps through them."""
    epoch = 0
    while True:
        order = list(range(len(items)))
        random.Random(1000 + epoch).shuffle(order)
        for index in range(len(items) // batch):
            yield collate_gpt([items[j] for j in order[index * batch : (index + 1) * batch]], eos), index
        epoch += 1


def run(trainer: GptTrainer, wrapped: GptTrainModel, items: list[GptItem], held: list[GptItem], batch: int,
        steps: int, every: int, label: str, rows: list[dict[str, Any]]) -> None:
    """Train until ``steps`` optimiser steps; the held-out loss at the start, every ``every`` steps and at the end."""
    eos = wrapped.model.config.eos

    def evaluate() -> None:
        loss = held_out_loss(wrapped, held, eos)
        rows.append({"run": label, "step": trainer.steps, "held_out_ce_per_token": round(loss, 4)})
        print(f"  {label:>16} optimiser step {trainer.steps:4d}  held-out cross-entropy per token {loss:.3f}",
              flush=True)

    evaluate()
    data = feed(items, batch, eos)
    while trainer.steps < steps:
        before = trainer.steps
        trainer.step(*next(data))
        if trainer.steps != before and (trainer.steps % every == 0 or trainer.steps >= steps):
            evaluate()


def gpt_lora_vs_full(args: argparse.Namespace, sovits: SovitsTrainModel, base_clips: list[Clip],
                     target_clips: list[Clip], rows: list[dict[str, Any]]) -> None:
    torch.manual_seed(4321)
    base_items = gpt_items(sovits, base_clips)
    target_items = gpt_items(sovits, target_clips)
    base_held, base_train = base_items[::10], [it for i, it in enumerate(base_items) if i % 10]
    held, train = target_items[::5], [it for i, it in enumerate(target_items) if i % 5]
    eos = FIXTURE_GPT.eos
    gpt = Text2SemanticDecoder(FIXTURE_GPT)
    wrapped = GptTrainModel(gpt, dropout=0.1)
    n = args.gpt_base_steps
    base_cfg = GptTrainConfig.adamw(lr_init=1e-4, lr_peak=1e-3, lr_end=1e-4, warmup_steps=max(1, n // 10),
                                    decay_steps=n, accumulate=1)
    tokens = sum(len(it[2]) for it in base_items)
    print(f"part 3: GPT {FIXTURE_GPT.hidden_dim} wide, {FIXTURE_GPT.n_layer} layers from random weights on Allison's "
          f"{len(base_train)} clips ({tokens} tokens), {n} steps of batch {args.batch_size}", flush=True)
    run(GptTrainer(wrapped, base_cfg), wrapped, base_train, base_held, args.batch_size, n, max(1, n // 4),
        "gpt base", rows)
    per_epoch = len(train) // args.batch_size
    per_run = steps_per_epoch(per_epoch, GptTrainConfig.accumulate)
    opts = TrainOptions("bench", "", "", lora=args.lora_rank, gpt_epochs=math.ceil(args.gpt_steps / per_run))
    print(f"part 3: fine-tune to slt: {len(train)} clips ({per_epoch} batches, {per_run} optimiser step(s) per epoch), "
          f"{len(held)} held out; {args.gpt_steps} optimiser steps each, same batches", flush=True)
    before = held_out_loss(wrapped, held, eos)
    variants: list[tuple[str, GptTrainConfig, bool]] = [("full", GptTrainConfig(), False)]
    scales = [float(x) for x in args.gpt_lora_scales.split(",")] if args.gpt_lora_scales else [opts.lora_lr_scale]
    for s in scales:
        variants.append((f"lora {args.lora_rank} x{s:g}", gpt_train_config(replace(opts, lora_lr_scale=s), per_epoch),
                         True))
    finals = {}
    for label, cfg, lora in variants:
        torch.manual_seed(99)  # the same dropout masks for every variant
        model = copy.deepcopy(wrapped)
        params = add_lora_gpt(model.model, args.lora_rank) if lora else None
        trainer = GptTrainer(model, cfg, params=params, batches_per_epoch=per_epoch)
        run(trainer, model, train, held, args.batch_size, args.gpt_steps, args.finetune_eval_steps, label, rows)
        finals[label] = rows[-1]["held_out_ce_per_token"]
    print(f"part 3 summary: held-out cross-entropy per token on slt, base {before:.3f} -> "
          + ", ".join(f"{k} {v:.3f}" for k, v in finals.items()), flush=True)
