"""SoVITS (s2) training step: gradients reach what trains, the frozen quantizer stays, files load back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.errors import TrainingError
from anchorvoice.plugins.gsv.checkpoint_writer import write_discriminator, write_sovits
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn
from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
from anchorvoice.plugins.gsv.training import precision as precision_module
from anchorvoice.plugins.gsv.training.bases import load_discriminator
from anchorvoice.plugins.gsv.training.dataset import GsvDataset, match_length
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.precision import training_precision
from anchorvoice.plugins.gsv.training.sovits_step import (
    SovitsTrainConfig,
    SovitsTrainer,
    SovitsTrainModel,
    collate_sovits,
)
from tests.conftest import needs_bf16_kernels


def _setup(ref: Path, freeze: bool = True) -> tuple[SovitsTrainModel, SovitsTrainer, dict]:
    torch.manual_seed(0)
    ck = load_sovits(ref / "s2_v2_small.pth")
    model = SovitsTrainModel(SovitsConfig.from_checkpoint_config(ck.config, ck.version), freeze_quantizer=freeze)
    model.load_base(ck.weights, "fixture")
    tcfg = SovitsTrainConfig.from_checkpoint_config(ck.config, segment_size=4 * 640, freeze_quantizer=freeze)
    return model, SovitsTrainer(model, MultiPeriodDiscriminator(), tcfg), ck.config


def _batch(data_dir: Path, n: int = 1):
    data = GsvDataset.open(data_dir)
    items = []
    for i in range(n):
        wav = data.wav(i)[:, : 16 * 640]  # 16 frames: a fast step
        spec = linear_spectrogram(wav[0])[0]
        items.append((match_length(data.hubert(i), spec.shape[1])[:, : spec.shape[1]], spec, wav, data.items[i].phones))
    return collate_sovits(items)


def test_flow_forward_inverts_reverse(gsv_reference: Path) -> None:
    model, _, _ = _setup(gsv_reference)
    z = torch.randn(1, model.cfg.inter_channels, 12)
    mask, g = torch.ones(1, 1, 12), torch.randn(1, model.cfg.gin_channels, 1)
    with torch.no_grad():
        torch.testing.assert_close(model.flow.reverse(model.flow(z, mask, g), mask, g), z, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_one_step_trains_everything_but_the_frozen_quantizer(gsv_reference: Path, small_dataset: Path) -> None:
    model, trainer, _ = _setup(gsv_reference)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("ssl_proj.", "quantizer."))}
    before = model.dec.conv_pre.weight.detach().clone()
    losses = trainer.step(_batch(small_dataset))
    assert set(losses) >= {"loss_disc", "loss_gen", "loss_fm", "loss_mel", "kl_ssl", "loss_kl"}
    assert losses["kl_ssl"] == 0.0  # frozen quantizer: eval mode, no commitment loss
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    for k, v in model.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), f"{k} moved although the quantizer is frozen"
    assert not torch.equal(model.dec.conv_pre.weight, before)
    # text-side parameters learn at 0.4x the rate (official text_low_lr_rate)
    lrs = [g["lr"] for g in trainer.optim_g.param_groups]
    assert lrs[1] == pytest.approx(0.4 * lrs[0])
    assert lrs[0] == pytest.approx(1e-4 * 0.999875)  # official: the schedule is stepped once before epoch 1


@pytest.mark.slow
def test_written_pth_is_official_and_decodes_the_same(gsv_reference: Path, small_dataset: Path, tmp_path: Path) -> None:
    model, trainer, config = _setup(gsv_reference)
    trainer.step(_batch(small_dataset))
    out = write_sovits(tmp_path / "v.pth", model, config, "1epoch_1iteration")
    assert out.read_bytes()[:2] == b"01"  # official head2version tag of v2
    box, _ = load_pickled(out)
    assert box["config"]["data"]["n_speakers"] == 300 and box["config"]["model"]["version"] == "v2"
    assert not any(k.startswith("enc_q.") for k in box["weight"])
    assert all(float(v) == 1.0 for k, v in box["weight"].items() if k.endswith("inited"))
    assert all(v.dtype == torch.float16 for v in box["weight"].values())
    back = SynthesizerTrn.from_checkpoint(load_sovits(out))
    ref = SynthesizerTrn(model.cfg)
    ref.load_state_dict({k: v.half().float() for k, v in model.state_dict().items() if not k.startswith("enc_q.")})
    codes, text = torch.randint(0, 1024, (1, 1, 10)), torch.tensor([[10, 20, 30]])
    refer = torch.rand(1, 1025, 30)
    with torch.no_grad():
        want = ref.eval().decode(codes, text, [refer], noise_scale=0.0)
        got = back.decode(codes, text, [refer], noise_scale=0.0)
    torch.testing.assert_close(got, want, atol=2e-3, rtol=1e-2)


def test_discriminator_file_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(1)
    disc = MultiPeriodDiscriminator()
    back = load_discriminator(write_discriminator(tmp_path / "d.pth", disc))
    y = torch.randn(1, 1, 2560)
    with torch.no_grad():
        torch.testing.assert_close(back(y, y)[0][3], disc(y, y)[0][3], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_mel_loss_decreases_over_steps(gsv_reference: Path, small_dataset: Path) -> None:
    model, trainer, _ = _setup(gsv_reference)
    batch = _batch(small_dataset, 2)
    torch.manual_seed(0)
    first = [trainer.step(batch, slice_starts=torch.tensor([4, 6]))["loss_mel"] for _ in range(2)]
    for _ in range(6):
        last = trainer.step(batch, slice_starts=torch.tensor([4, 6]))["loss_mel"]
    assert last < min(first)


def test_training_precision_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert training_precision("fp32", cpu) == "fp32"
    with pytest.raises(TrainingError, match="needs a CUDA GPU.*bf16"):
        training_precision("fp16", cpu)
    with pytest.raises(TrainingError, match="fp32, fp16, bf16"):
        training_precision("float64", cpu)
    monkeypatch.setattr(precision_module, "bf16_kernels", lambda: False)  # an AVX2-only CPU
    with pytest.raises(TrainingError, match="--precision fp32 here"):
        training_precision("bf16", cpu)
    monkeypatch.setattr(precision_module, "bf16_kernels", lambda: True)
    monkeypatch.setattr(precision_module, "native_bf16", lambda: True)
    assert training_precision("bf16", cpu) == "bf16"
    assert training_precision("fp16", torch.device("cuda")) == "fp16"  # checked, not run: no GPU needed


def test_flow_runs_under_cpu_bf16_autocast(gsv_reference: Path) -> None:
    """The flow's time-major WN accumulates its taps in place; under autocast that must not mix dtypes."""
    model, _, _ = _setup(gsv_reference)
    z = torch.randn(1, model.cfg.inter_channels, 12)
    mask, g = torch.ones(1, 1, 12), torch.randn(1, model.cfg.gin_channels, 1)
    with torch.no_grad():
        exact = model.flow(z, mask, g)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model.flow(z, mask, g)
    assert low.shape == exact.shape and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), exact, atol=0.1, rtol=0.05)


@pytest.mark.slow
@needs_bf16_kernels
def test_cpu_bf16_step_tracks_the_fp32_step(gsv_reference: Path, small_dataset: Path) -> None:
    losses = {}
    for precision in ("fp32", "bf16"):
        model, _, _ = _setup(gsv_reference)
        ck = load_sovits(gsv_reference / "s2_v2_small.pth")
        tcfg = SovitsTrainConfig.from_checkpoint_config(ck.config, segment_size=4 * 640)
        torch.manual_seed(1)
        trainer = SovitsTrainer(model, MultiPeriodDiscriminator(), tcfg, precision)
        losses[precision] = trainer.step(_batch(small_dataset))
    for name in ("loss_mel", "loss_kl", "loss_disc"):
        assert losses["bf16"][name] == pytest.approx(losses["fp32"][name], rel=0.05), name
