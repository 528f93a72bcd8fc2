"""GPT (s1) training step: the official next-token loss, padding that changes nothing, learning, files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorvoice.plugins.gsv.checkpoint_writer import write_gpt
from anchorvoice.plugins.gsv.checkpoints import load_gpt
from anchorvoice.plugins.gsv.t2s_model import load_t2s, prefix_mask
from anchorvoice.plugins.gsv.training.gpt_step import (
    GptTrainConfig,
    GptTrainer,
    GptTrainModel,
    collate_gpt,
    lr_at,
    steps_per_epoch,
)

ITEMS = [([10, 20, 30, 40], torch.zeros(1024, 4), [5, 6, 7, 8, 9]), ([30, 41], torch.zeros(1024, 2), [7, 8])]


def _model(ref: Path) -> GptTrainModel:
    m = load_t2s(ref / "s1_v2_small.ckpt")
    return GptTrainModel(m.requires_grad_(True))


def test_loss_is_the_sum_of_next_token_cross_entropies(gsv_reference: Path) -> None:
    g = _model(gsv_reference)
    phones, bert, sem = ITEMS[0]
    with torch.no_grad():
        loss, n, _ = g(collate_gpt([ITEMS[0]]))
        m = g.model
        xy = torch.cat([m.embed_text(torch.tensor([phones]), bert[None]), m.embed_audio(torch.tensor([sem]))], 1)
        logits = m.forward_full(xy, prefix_mask(len(phones), len(sem)))[0, len(phones) - 1 :]
        want = torch.nn.functional.cross_entropy(logits, torch.tensor(sem + [1024]), reduction="sum")
    assert int(n) == len(sem) + 1
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-4)


def test_padding_in_a_batch_changes_no_loss(gsv_reference: Path) -> None:
    g = _model(gsv_reference)
    with torch.no_grad():
        both = g(collate_gpt(ITEMS))[0]
        alone = sum(g(collate_gpt([it]))[0] for it in ITEMS)
    torch.testing.assert_close(both, alone, rtol=1e-5, atol=1e-4)


def test_loss_decreases_and_the_written_ckpt_loads_back(gsv_reference: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = _model(gsv_reference)
    tr = GptTrainer(g, GptTrainConfig(accumulate=1))  # official ScaledAdam and rates, a step per batch
    batch = collate_gpt(ITEMS)
    losses = [tr.step(batch, i)["loss"] for i in range(8)]
    assert losses[-1] < 0.6 * losses[0]
    out = write_gpt(tmp_path / "v.ckpt", g.model, load_gpt(gsv_reference / "s1_v2_small.ckpt").config, "GPT-e1")
    back = GptTrainModel(load_t2s(out))
    with torch.no_grad():
        g.model.half().float()  # the file holds fp16 weights, as the official one does
        torch.testing.assert_close(back(batch)[0], g(batch)[0], rtol=1e-5, atol=1e-3)


def test_official_stepping_and_short_epochs(gsv_reference: Path) -> None:
    batch = collate_gpt(ITEMS)
    tr = GptTrainer(_model(gsv_reference), GptTrainConfig(), batches_per_epoch=9)
    stepped = []
    for _epoch in range(2):
        for i in range(9):
            before = tr.steps
            tr.step(batch, i)
            stepped.append(tr.steps > before)
    assert [i for i, s in enumerate(stepped) if s] == [4, 8, 13, 17]  # in-epoch indices 4 and 8 of each epoch
    short = GptTrainer(_model(gsv_reference), GptTrainConfig(), batches_per_epoch=3)
    short_steps = []
    for i in range(3):
        short.step(batch, i)
        short_steps.append(short.steps)
    assert short_steps == [0, 0, 1]  # the official would never step: here the last batch of the epoch does
    assert steps_per_epoch(9, 4) == 2 and steps_per_epoch(3, 4) == 1 and steps_per_epoch(7, 1) == 7


def test_official_learning_rates() -> None:
    cfg = GptTrainConfig()
    assert [lr_at(k, cfg) for k in (0, 1, 500)] == [0.01, 0.002, 0.002]  # nominal first, then the pin
    curve = GptTrainConfig(pinned_lr=None)
    assert lr_at(1, curve) == pytest.approx(1e-5)  # the curve's step 0 (lr_init) is used by optimiser step 1
    assert lr_at(2001, curve) == pytest.approx(0.01) and lr_at(40001, curve) == pytest.approx(1e-4)
    assert lr_at(3, GptTrainConfig().scaled(0.5)) == pytest.approx(0.001)


def test_dropout_is_active_in_training_only(gsv_reference: Path) -> None:
    torch.manual_seed(3)
    g = GptTrainModel(load_t2s(gsv_reference / "s1_v2_small.ckpt"), dropout=0.1)
    batch = collate_gpt(ITEMS)
    g.train()
    with torch.no_grad():
        a, b = g(batch)[0], g(batch)[0]
        g.eval()
        c, d = g(batch)[0], g(batch)[0]
    assert not torch.equal(a, b)
    assert torch.equal(c, d)


def test_official_padding_changes_only_mixed_length_batches(gsv_reference: Path) -> None:
    ours = _model(gsv_reference)
    official = GptTrainModel(ours.model, official_padding=True)
    same = [([10, 20, 30], torch.zeros(1024, 3), [5, 6, 7]), ([31, 41, 51], torch.zeros(1024, 3), [8, 9, 10])]
    with torch.no_grad():
        torch.testing.assert_close(official(collate_gpt(same))[0], ours(collate_gpt(same))[0])
        mixed = collate_gpt(ITEMS)
        assert abs(float(official(mixed)[0]) - float(ours(mixed)[0])) > 1e-3


def test_a_run_stopped_mid_cycle_resumes_with_its_accumulated_gradients(gsv_reference: Path) -> None:
    batches = [collate_gpt([ITEMS[i % 2]]) for i in range(6)]

    def trained(stop: int | None, keep_pending: bool = True) -> dict[str, torch.Tensor]:
        g = _model(gsv_reference)
        tr = GptTrainer(g, GptTrainConfig(), batches_per_epoch=6)  # steps after batch 4 only
        for i, b in enumerate(batches):
            if i == stop:  # what save/--resume carry: weights, optimiser state and the pending gradients
                state, weights, grads = tr.state_dict(), g.state_dict(), tr.pending()
                g = _model(gsv_reference)
                g.load_state_dict(weights)
                tr = GptTrainer(g, GptTrainConfig(), batches_per_epoch=6)
                tr.load_state_dict(state)
                if keep_pending:
                    tr.load_pending(grads)
            tr.step(b, i)
        assert tr.steps == 1
        return g.state_dict()

    whole = trained(None)
    resumed = trained(3)
    for k, v in whole.items():
        torch.testing.assert_close(resumed[k], v, atol=1e-6, rtol=0, msg=k)
    lost = trained(3, keep_pending=False)  # the official trainer's resume: batches 0-2 never count
    assert max(float((lost[k] - v).abs().max()) for k, v in whole.items()) > 1e-4


def test_under_ddp_only_the_batches_that_step_all_reduce(gsv_reference: Path, tmp_path: Path) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        g = _model(gsv_reference)
        net = torch.nn.parallel.DistributedDataParallel(g)
        reduced: list[int] = []

        def count(state, bucket):  # type: ignore[no-untyped-def]  # DDP refuses string annotations
            reduced.append(bucket.index())
            fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
            fut.set_result(bucket.buffer())
            return fut

        net.register_comm_hook(None, count)
        tr = GptTrainer(net, GptTrainConfig(), batches_per_epoch=6)
        calls = []
        for i in range(6):
            tr.step(collate_gpt([ITEMS[i % 2]]), i)
            calls.append(len(reduced))
        assert tr.steps == 1
        assert calls[3] == 0 and calls[4] > 0 and calls[5] == calls[4]  # only batch 4 (the step) all-reduced
    finally:
        dist.destroy_process_group()
