"""GPT (s1) training step: the official next-token loss, padding that changes nothing, learning, files."""

from __future__ import annotations

from pathlib import Path

import torch

from anchorvoice.plugins.gsv.checkpoint_writer import write_gpt
from anchorvoice.plugins.gsv.checkpoints import load_gpt
from anchorvoice.plugins.gsv.t2s_model import load_t2s, prefix_mask
from anchorvoice.plugins.gsv.training.gpt_step import GptTrainConfig, GptTrainer, GptTrainModel, collate_gpt

ITEMS = [([10, 20, 30, 40], torch.zeros(1024, 4), [5, 6, 7, 8, 9]), ([30, 41], torch.zeros(1024, 2), [7, 8])]


def _model(ref: Path) -> GptTrainModel:
    m = load_t2s(ref / "s1_v2_small.ckpt")
    return GptTrainModel(m.requires_grad_(True))


def test_loss_is_the_sum_of_next_token_cross_entropies(gsv_reference: Path) -> None:
    g = _model(gsv_reference)
    phones, bert, sem = ITEMS[0]
    with torch.no_grad():
        loss, n = g(collate_gpt([ITEMS[0]]))
        m = g.model
        xy = torch.cat([m.embed_text(torch.tensor([phones]), bert[None]), m.embed_audio(torch.tensor([sem]))], 1)
        logits = m.forward_full(xy, prefix_mask(len(phones), len(sem)))[0, len(phones) - 1 :]
        want = torch.nn.functional.cross_entropy(logits, torch.tensor(sem + [1024]), reduction="sum")
    assert int(n) == len(sem) + 1
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-4)


def test_padding_in_a_batch_changes_no_loss(gsv_reference: Path) -> None:
    g = _model(gsv_reference)
    with torch.no_grad():
        both, _ = g(collate_gpt(ITEMS))
        alone = sum(g(collate_gpt([it]))[0] for it in ITEMS)
    torch.testing.assert_close(both, alone, rtol=1e-5, atol=1e-4)


def test_loss_decreases_and_the_written_ckpt_loads_back(gsv_reference: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = _model(gsv_reference)
    tr = GptTrainer(g, GptTrainConfig(warmup_steps=1, lr_init=1e-4, lr_peak=1e-3, decay_steps=50))
    batch = collate_gpt(ITEMS)
    losses = [tr.step(batch)["loss"] for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0]
    out = write_gpt(tmp_path / "v.ckpt", g.model, load_gpt(gsv_reference / "s1_v2_small.ckpt").config, "GPT-e1")
    back = GptTrainModel(load_t2s(out))
    with torch.no_grad():
        g.model.half().float()  # the file holds fp16 weights, as the official one does
        torch.testing.assert_close(back(batch)[0], g(batch)[0], rtol=1e-5, atol=1e-3)
