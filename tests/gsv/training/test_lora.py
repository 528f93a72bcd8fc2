"""LoRA: starts at the base, trains only adapters, merges into an ordinary official-layout model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorvoice.plugins.gsv.checkpoint_writer import official_weights, write_sovits
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.modules.weight_norm import WeightNormed
from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn
from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder, load_t2s
from anchorvoice.plugins.gsv.training.dataset import GsvDataset, match_length
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.gpt_step import GptTrainConfig, GptTrainer, GptTrainModel, collate_gpt
from anchorvoice.plugins.gsv.training.lora import (
    SOVITS_GROUPS,
    add_lora_gpt,
    add_lora_sovits,
    is_adapter,
    lora_state,
    merged_copy,
    sovits_target_modules,
)
from anchorvoice.plugins.gsv.training.options import TrainOptions, gpt_train_config
from anchorvoice.plugins.gsv.training.sovits_step import (
    SovitsBatch,
    SovitsTrainConfig,
    SovitsTrainer,
    SovitsTrainModel,
    collate_sovits,
)

ITEMS = [([10, 20, 30, 40], torch.zeros(1024, 4), [5, 6, 7, 8, 9]), ([30, 41], torch.zeros(1024, 2), [7, 8])]
SEG = 4  # decoder slice in frames (4 x 640 samples): a fast step


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


def _model(ref: Path) -> tuple[SovitsTrainModel, dict]:
    torch.manual_seed(0)
    ck = load_sovits(ref / "s2_v2_small.pth")
    model = SovitsTrainModel(SovitsConfig.from_checkpoint_config(ck.config, ck.version))
    model.load_base(ck.weights, "fixture")
    return model, ck.config


def _batches(data_dir: Path, frames: int = 16) -> list[SovitsBatch]:
    """One single-item batch per dataset clip, cut to ``frames`` frames."""
    data = GsvDataset.open(data_dir)
    out = []
    for i in range(len(data.items)):
        wav = data.wav(i)[:, : frames * 640]
        spec = linear_spectrogram(wav[0])[0]
        ssl = match_length(data.hubert(i), spec.shape[1])[:, : spec.shape[1]]
        out.append(collate_sovits([(ssl, spec, wav, data.items[i].phones)]))
    return out


@torch.no_grad()
def _outputs(model: SovitsTrainModel, batch: SovitsBatch) -> dict[str, torch.Tensor]:
    """The training forward with fixed slices and noise (eval mode: no dropout)."""
    model.eval()
    noise = torch.randn(1, model.cfg.inter_channels, batch.spec.shape[2], generator=torch.Generator().manual_seed(1))
    out = model(batch, SEG, torch.zeros(1, dtype=torch.long), noise)
    return {k: out[k] for k in ("y_hat", "z_p", "m_p", "logs_p")}


@torch.no_grad()
def _held_out_mel_l1(model: SovitsTrainModel, trainer: SovitsTrainer, batch: SovitsBatch) -> float:
    """Mel L1 of the posterior path (spectrogram -> enc_q mean -> flow-free decoder) on a whole clip."""
    from anchorvoice.plugins.gsv.training.mel import magnitude, spec_to_mel

    model.eval()
    frames = int(batch.spec_lengths[0])
    noise = torch.zeros(1, model.cfg.inter_channels, batch.spec.shape[2])
    y_hat = model(batch, frames, torch.zeros(1, dtype=torch.long), noise)["y_hat"]
    s = model.cfg.spectrogram
    got = spec_to_mel(magnitude(y_hat[:, 0], s.n_fft, s.hop_length, s.win_length), trainer.mel_basis)
    want = spec_to_mel(batch.spec[..., :frames], trainer.mel_basis)
    t = min(got.shape[-1], want.shape[-1])
    model.train()
    return float((got[..., :t] - want[..., :t]).abs().mean())


def test_sovits_adapters_start_at_the_base_and_merge_into_official_weights(
        gsv_reference: Path, small_dataset: Path, tmp_path: Path) -> None:
    model, config = _model(gsv_reference)
    keys = set(official_weights(model))
    batch = _batches(small_dataset)[0]
    model.requires_grad_(False)  # (a frozen model's prior rounds 1 ulp differently: compare like with like)
    base_out = _outputs(model, batch)
    params = add_lora_sovits(model, rank=4)
    adapted = {id(m) for m in sovits_target_modules(model, SOVITS_GROUPS)}
    wn = [m for m in model.dec.modules() if isinstance(m, WeightNormed)]
    assert wn and all(id(m) in adapted for m in wn)  # the decoder's weight-normed convs carry adapters too
    assert id(model.flow.flows[0].enc.in_layers[0]) in adapted
    assert id(model.enc_p.mrte.cross_attention.conv_q) in adapted
    assert all(p.requires_grad for p in params)
    assert not any(p.requires_grad for n, p in model.named_parameters() if not is_adapter(n))
    for name, out in _outputs(model, batch).items():  # B = 0: exactly the base
        assert torch.equal(out, base_out[name]), name
    with torch.no_grad():  # an adapter that has learnt something
        for n, p in model.named_parameters():
            if n.endswith("lora_B"):
                p.normal_(0.0, 0.02)
    moved = _outputs(model, batch)
    assert not torch.allclose(moved["y_hat"], base_out["y_hat"], atol=1e-4)
    merged = merged_copy(model)
    assert isinstance(merged, SovitsTrainModel)
    assert set(official_weights(merged)) == keys  # no adapter left: the official key layout
    for name, out in _outputs(merged, batch).items():
        torch.testing.assert_close(out, moved[name], rtol=1e-4, atol=1e-5)
    path = write_sovits(tmp_path / "v.pth", merged, config, "1epoch_1iteration")
    ck = load_sovits(path)
    SynthesizerTrn.from_checkpoint(ck)  # our loader takes the merged file
    want = official_weights(merged)
    for k in ("dec.ups.0.weight_v", "flow.flows.0.enc.in_layers.0.weight_g",
              "enc_p.encoder2.attn_layers.0.conv_q.weight"):
        torch.testing.assert_close(ck.weights[k].float(), want[k].half().float())


def test_adapter_lr_scale_reaches_the_optimiser(gsv_reference: Path) -> None:
    model, config = _model(gsv_reference)
    params = add_lora_sovits(model, rank=2)
    tcfg = SovitsTrainConfig.from_checkpoint_config(config, segment_size=SEG * 640, lora_lr_scale=30.0)
    trainer = SovitsTrainer(model, MultiPeriodDiscriminator(), tcfg, params=params)
    lr_of = {id(p): g["lr"] for g in trainer.optim_g.param_groups for p in g["params"]}
    assert set(lr_of) == {id(p) for p in params}
    base_lr = tcfg.learning_rate * tcfg.lr_decay  # the schedule is stepped once before epoch 1 (official)
    text_side = {id(p) for m in (model.enc_p.encoder_text, model.enc_p.mrte) for p in m.parameters()}
    for p in params:
        factor = tcfg.text_low_lr_rate if id(p) in text_side else 1.0
        assert lr_of[id(p)] == pytest.approx(base_lr * 30.0 * factor)


def test_a_few_adapter_steps_move_the_held_out_loss(gsv_reference: Path, small_dataset: Path) -> None:
    model, config = _model(gsv_reference)
    batches = _batches(small_dataset)
    train, held = batches[:2], batches[3]
    params = add_lora_sovits(model, rank=4)
    tcfg = SovitsTrainConfig.from_checkpoint_config(config, segment_size=SEG * 640, lora_lr_scale=30.0)
    trainer = SovitsTrainer(model, MultiPeriodDiscriminator(), tcfg, params=params)
    frozen = {k: v.clone() for k, v in official_weights(model).items()}
    before = _held_out_mel_l1(model, trainer, held)
    for b in train:
        trainer.step(b)
    after = _held_out_mel_l1(model, trainer, held)
    # measured 3.355 -> 3.215; all groups at lr x1: 3.352; the prior's attention alone at x1 (the first LoRA): 3.355
    assert after < before - 0.05, (before, after)
    assert all(torch.equal(v, frozen[k]) for k, v in official_weights(model).items() if k in frozen and "lora" not in k)


def test_gpt_lora_rates_take_the_adapter_lr_scale() -> None:
    opts = TrainOptions("v", "d", "r", lora=8, lora_lr_scale=30.0, lr_scale=0.5, gpt_epochs=10)
    cfg = gpt_train_config(opts, per_epoch=9)
    assert cfg.optimizer == "adamw" and cfg.lr_peak == pytest.approx(1e-4 * 30 * 0.5)
    gpt = Text2SemanticDecoder(T2SConfig(hidden_dim=32, embedding_dim=32, head=2, n_layer=1))
    tr = GptTrainer(GptTrainModel(gpt), cfg, params=add_lora_gpt(gpt, 2), batches_per_epoch=9)
    assert tr.optim.param_groups[0]["lr"] == pytest.approx(1e-4 * 30 * 0.5 * 0.1)  # warm-up starts at lr_init
    full = gpt_train_config(TrainOptions("v", "d", "r", lora_lr_scale=30.0), per_epoch=9)
    assert full.optimizer == "scaled_adam" and full.first_step_lr == pytest.approx(0.01)  # no LoRA: untouched
