"""ScaledAdam (the official GPT optimiser) against AdamW on a small T2S model: held-out loss per token.

Data: synthetic but learnable. 40 phone ids each stand for a fixed pair of semantic tokens (drawn
once from 64 ids); an item is 6-14 random phones and the concatenation of their pairs; BERT
features are zero. 240 training items, 40 held-out items, batch 4 (60 batches per epoch, so 14
optimiser steps per epoch under the official every-4th-batch rule), dropout 0.1 in training.
Every optimiser starts from the same random fixture-size model (d=128, 3 layers, 4 heads) and sees
the same batches in the same order.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder
from anchorvoice.plugins.gsv.training.gpt_step import (
    GptTrainConfig,
    GptTrainer,
    GptTrainModel,
    collate_gpt,
    steps_per_epoch,
)

ITEMS, HELD_OUT, BATCH = 240, 40, 4


def synthetic(seed: int) -> tuple[list[Any], list[Any]]:
    g = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, 64, (41, 2), generator=g)
    items = []
    for _ in range(ITEMS + HELD_OUT):
        n = int(torch.randint(6, 15, (1,), generator=g))
        phones = torch.randint(1, 41, (n,), generator=g).tolist()
        items.append((phones, torch.zeros(1024, n), pairs[phones].reshape(-1).tolist()))
    return items[:ITEMS], items[ITEMS:]


@torch.no_grad()
def held_out_loss(model: GptTrainModel, items: list[Any]) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(items), BATCH):
        loss, n, _ = model(collate_gpt(items[i : i + BATCH]))
        total, count = total + float(loss), count + int(n)
    return total / count


def train(name: str, cfg: GptTrainConfig, batches: int, seed: int) -> dict[str, Any]:
    train_items, test_items = synthetic(seed)
    torch.manual_seed(seed)
    model = GptTrainModel(Text2SemanticDecoder(T2SConfig(hidden_dim=128, embedding_dim=128, head=4, n_layer=3)),
                          dropout=0.1)
    per_epoch = ITEMS // BATCH
    trainer = GptTrainer(model, cfg, batches_per_epoch=per_epoch)
    curve = [round(held_out_loss(model, test_items), 4)]
    rng = random.Random(seed)
    order: list[int] = []
    for b in range(batches):
        index = b % per_epoch
        if index == 0:
            order = list(range(ITEMS))
            rng.shuffle(order)
        trainer.step(collate_gpt([train_items[j] for j in order[index * BATCH : (index + 1) * BATCH]]), index)
        if index == per_epoch - 1 or b == batches - 1:
            curve.append(round(held_out_loss(model, test_items), 4))
    return {"optimizer": name, "optimizer_steps": trainer.steps, "held_out_loss_per_token_by_epoch": curve}


def compare(batches: int, seed: int = 0) -> dict[str, Any]:
    total = steps_per_epoch(ITEMS // BATCH, 4) * max(1, batches // (ITEMS // BATCH))
    runs = [
        ("ScaledAdam, official rates (0.01 first step, then 0.002)", GptTrainConfig()),
        ("AdamW, warm-up to 1e-4 then cosine (our --lora recipe)",
         GptTrainConfig.adamw(decay_steps=total, warmup_steps=max(1, total // 10))),
        ("AdamW, warm-up to 1e-3 then cosine",
         GptTrainConfig.adamw(decay_steps=total, warmup_steps=max(1, total // 10), lr_peak=1e-3, lr_end=1e-4)),
    ]
    return {"batches": batches, "batch": BATCH, "items": ITEMS, "held_out": HELD_OUT,
            "results": [train(name, cfg, batches, seed) for name, cfg in runs]}
