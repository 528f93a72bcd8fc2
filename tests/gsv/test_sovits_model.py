"""SoVITS v2 model code: official key layout, strict loading, weight-norm folding, spectrogram edges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from anchorvoice.errors import AudioInputError, CorruptCheckpointError, ReferenceAudioError
from anchorvoice.plugins.gsv.checkpoints import SovitsCheckpoint, load_sovits
from anchorvoice.plugins.gsv.hifigan import Generator, HiFiGANConfig
from anchorvoice.plugins.gsv.modules.weight_norm import WNConv1d, WNConvTranspose1d, official_key_shapes
from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn, official_v2_config
from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
from tests.conformance.conftest import require_reference_dir


@pytest.fixture(scope="module")
def root() -> Path:
    return require_reference_dir()


@pytest.fixture(scope="module")
def small_ckpt(root: Path) -> SovitsCheckpoint:
    return load_sovits(root / "s2_v2_small.pth")


def test_full_size_v2_has_exactly_the_official_keys_and_shapes(root: Path) -> None:
    rows = (root / "keys_s2_v2.tsv").read_text().splitlines()[1:]
    want = {name: tuple(json.loads(shape)) for name, shape, _ in (r.split("\t") for r in rows)}
    model = SynthesizerTrn(SovitsConfig.from_checkpoint_config(official_v2_config()))
    assert official_key_shapes(model) == want
    assert len(want) == 673


def test_small_fixture_loads_strictly_and_refuses_bad_files(small_ckpt: SovitsCheckpoint) -> None:
    model = SynthesizerTrn.from_checkpoint(small_ckpt)
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    assert model.cfg.hifigan.upsample_initial_channel == 64 and model.cfg.n_layers == 2

    missing = dict(small_ckpt.weights)
    del missing["flow.flows.2.post.bias"]
    with pytest.raises(CorruptCheckpointError, match="flow.flows.2.post.bias"):
        SynthesizerTrn(model.cfg).load_official(missing)

    extra = dict(small_ckpt.weights, **{"dec.bogus.weight": torch.zeros(1)})
    with pytest.raises(CorruptCheckpointError, match="dec.bogus.weight"):
        SynthesizerTrn(model.cfg).load_official(extra)

    wrong = dict(small_ckpt.weights)
    wrong["dec.conv_pre.weight"] = torch.zeros(3, 3, 3)
    with pytest.raises(CorruptCheckpointError, match="dec.conv_pre.weight"):
        SynthesizerTrn(model.cfg).load_official(wrong)


def test_config_errors_name_the_problem(small_ckpt: SovitsCheckpoint) -> None:
    cfg = json.loads(json.dumps(small_ckpt.config))
    del cfg["model"]["inter_channels"]
    with pytest.raises(CorruptCheckpointError, match="inter_channels"):
        SovitsConfig.from_checkpoint_config(cfg)


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")
@pytest.mark.parametrize("transposed", [False, True])
def test_weight_norm_folding_is_bit_identical_to_the_training_module(transposed: bool) -> None:
    torch.manual_seed(0)
    if transposed:
        ref = nn.utils.weight_norm(nn.ConvTranspose1d(8, 4, 16, 10, padding=3))
        ours: nn.Module = WNConvTranspose1d(8, 4, 16, 10, padding=3)
    else:
        ref = nn.utils.weight_norm(nn.Conv1d(4, 6, 5, dilation=3, padding=6))
        ours = WNConv1d(4, 6, 5, dilation=3, padding=6)
    with torch.no_grad():
        ref.weight_g.mul_(torch.rand_like(ref.weight_g) + 0.5)
    sd = {k: v.half() for k, v in ref.state_dict().items()}  # official files are fp16
    assert set(sd) == {"bias", "weight_g", "weight_v"}
    ref.load_state_dict(sd)
    ours.load_state_dict(sd)
    x = torch.randn(1, ref.in_channels, 30)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_generator_length_and_layouts_agree() -> None:
    torch.manual_seed(1)
    cfg = HiFiGANConfig(initial_channel=8, upsample_initial_channel=32, gin_channels=4)
    gen = Generator(cfg).eval()
    z, g = torch.randn(1, 8, 7), torch.randn(1, 4, 1)
    with torch.inference_mode():
        fast = gen(z, g)
        gen.channels_last = False
        plain = gen(z, g)
    assert fast.shape == (1, 1, 7 * 640) and cfg.hop_length == 640
    assert float(fast.abs().max()) <= 1.0
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-5)


def test_generator_rebuilds_its_conv_plan_after_a_new_load() -> None:
    torch.manual_seed(2)
    cfg = HiFiGANConfig(initial_channel=8, upsample_initial_channel=32, gin_channels=0)
    gen, other = Generator(cfg).eval(), Generator(cfg).eval()
    z = torch.randn(1, 8, 5)
    with torch.inference_mode():
        gen(z)  # builds the channels-last weight copies
        gen.load_state_dict(other.state_dict())
        torch.testing.assert_close(gen(z), other(z), rtol=0, atol=1e-6)


def test_spectrogram_frames_and_bad_audio() -> None:
    spec = linear_spectrogram(np.zeros(32000, np.float32) + 0.1)
    assert spec.shape == (1, 1025, 50)  # (N + 1408 - 2048) // 640 + 1
    with pytest.raises(AudioInputError, match="too short"):
        linear_spectrogram(np.zeros(500, np.float32))
    with pytest.raises(AudioInputError, match="NaN"):
        linear_spectrogram(np.full(4000, np.nan, np.float32))


def test_decode_without_reference_says_what_to_do(small_ckpt: SovitsCheckpoint) -> None:
    model = SynthesizerTrn.from_checkpoint(small_ckpt)
    with pytest.raises(ReferenceAudioError, match="reference"):
        model.decode(torch.zeros(1, 1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long), [])


def test_fused_post_ops_match_separate_ops_to_rounding() -> None:
    from anchorvoice.plugins.gsv.hifigan import ChannelsLastOps

    torch.manual_seed(3)
    cfg = HiFiGANConfig(initial_channel=8, upsample_initial_channel=32, gin_channels=4)
    gen = Generator(cfg).eval()
    z, g = torch.randn(1, 8, 9), torch.randn(1, 4, 1)
    with torch.inference_mode():
        fused = gen(z, g, apply_tanh=False)
        ops = gen._ops()
        assert isinstance(ops, ChannelsLastOps)
        if not ops.fused:
            pytest.skip("this torch build has no oneDNN conv post-op kernels")
        ops.fused = False
        separate = gen(z, g, apply_tanh=False)
    torch.testing.assert_close(fused, separate, rtol=1e-6, atol=1e-6)
