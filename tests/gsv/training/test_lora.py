"""LoRA: starts at the base, trains only adapters, merges into an ordinary official-layout model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorvoice.plugins.gsv.t2s_model import load_t2s
from anchorvoice.plugins.gsv.training.gpt_step import GptTrainConfig, GptTrainer, GptTrainModel, collate_gpt
from anchorvoice.plugins.gsv.training.lora import add_lora_gpt, lora_state, merged_copy

ITEMS = [([10, 20, 30, 40], torch.zeros(1024, 4), [5, 6, 7, 8, 9]), ([30, 41], torch.zeros(1024, 2), [7, 8])]


@pytest.mark.slow
def test_gpt_lora_trains_only_adapters_and_merges(gsv_reference: Path) -> None:
    torch.manual_seed(0)
    base = load_t2s(gsv_reference / "s1_v2_small.ckpt")
    keys = set(base.state_dict())
    g = GptTrainModel(load_t2s(gsv_reference / "s1_v2_small.ckpt"))
    batch = collate_gpt(ITEMS)
    with torch.no_grad():
        start = g(batch)[0]
    params = add_lora_gpt(g.model, rank=4)
    with torch.no_grad():
        torch.testing.assert_close(g(batch)[0], start)  # B = 0: exactly the base at step 0
    frozen = {k: v.clone() for k, v in g.model.state_dict().items() if "lora" not in k}
    tr = GptTrainer(g, GptTrainConfig.adamw(warmup_steps=1, lr_init=1e-3, lr_peak=1e-2, accumulate=1), params=params)
    losses = [tr.step(batch, i)["loss"] for i in range(6)]
    assert losses[-1] < losses[0]
    assert all(torch.equal(v, frozen[k]) for k, v in g.model.state_dict().items() if k in frozen)
    adapters = lora_state(g.model)
    assert 0 < sum(v.numel() for v in adapters.values()) < 0.5 * sum(v.numel() for v in base.state_dict().values())
    merged = merged_copy(g.model)
    assert set(merged.state_dict()) == keys  # official key layout again
    with torch.no_grad():
        torch.testing.assert_close(GptTrainModel(merged)(batch)[0], g(batch)[0], rtol=1e-4, atol=1e-3)
