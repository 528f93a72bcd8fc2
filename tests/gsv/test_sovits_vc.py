"""gsv-vc: HuBERT -> SoVITS tokens -> SoVITS decode with the voice's timbre, offline and block-wise."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from anchorvoice.engine.voices import Voice
from anchorvoice.errors import AudioInputError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel
from anchorvoice.plugins.gsv.stages_vc import GsvVcConfig, GsvVoiceConverter
from tests.conformance.conftest import require_reference_dir

SR = 32000


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Voice:
    """The fixture SoVITS model, its references, and a tiny random HuBERT with the real 768-d output."""
    root = require_reference_dir()
    folder = tmp_path_factory.mktemp("alice")
    hub = folder / "hubert"
    hub.mkdir()
    cfg = {"conv_dim": [16] * 7, "hidden_size": 768, "num_hidden_layers": 1, "num_attention_heads": 12,
           "intermediate_size": 32, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 16}
    (hub / "config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    sd = HubertModel(HubertConfig.from_json(cfg)).state_dict()
    v = sd.pop("encoder.pos_conv_embed.conv.weight")
    sd["encoder.pos_conv_embed.conv.weight_v"] = v
    sd["encoder.pos_conv_embed.conv.weight_g"] = v.norm(dim=(0, 1), keepdim=True)  # weight norm over dim 2
    save_file({k: t.contiguous() for k, t in sd.items()}, str(hub / "model.safetensors"))
    spec = np.load(root / "cases" / "s2_spectrogram.npz")
    ref = folder / "ref0.wav"
    sf.write(ref, spec["in_wav32k"], SR, subtype="FLOAT")
    return Voice("alice", folder, [ref], models={"sovits": root / "s2_v2_small.pth", "hubert": hub})


def _speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 1.5 * t)
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 8))
    return (0.3 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_offline_conversion_keeps_length_and_is_reproducible(voice: Voice) -> None:
    vc = GsvVoiceConverter()
    vc.prepare(voice)
    clip = AudioFrame(_speech(1.3), SR, timestamp=2.0)
    a = vc.convert(clip)
    assert a.sample_rate == SR and len(a.samples) == len(clip.samples) and a.timestamp == 2.0
    assert np.isfinite(a.samples).all() and np.abs(a.samples).max() <= 1.0
    assert np.sqrt(np.mean(a.samples[: -2000] ** 2)) > 1e-3  # speech in, sound out (all but the padded end)
    np.testing.assert_array_equal(vc.convert(clip).samples, a.samples)  # fixed seed


@pytest.mark.slow  # re-runs HuBERT + SoVITS on a 0.6 s window for each of 10 blocks
def test_block_processing_streams_with_the_stated_latency(voice: Voice) -> None:
    vc = GsvVoiceConverter(GsvVcConfig(context_s=0.5))
    vc.prepare(voice)
    assert vc.latency_samples == int(0.08 * SR)
    x = _speech(1.0)
    block = 3200
    outs = [vc.process(AudioFrame(x[i : i + block], SR)).samples.copy() for i in range(0, len(x), block)]
    assert all(len(o) == block for o in outs)
    y = np.concatenate(outs)
    assert np.isfinite(y).all() and np.sqrt(np.mean(y[block:] ** 2)) > 1e-3
    vc.reset()
    again = vc.process(AudioFrame(x[:block], SR)).samples
    np.testing.assert_allclose(again, outs[0], atol=1e-6)


@pytest.mark.slow  # two converters, 8 blocks each
def test_live_decodes_only_the_emitted_span_with_the_same_samples(voice: Voice) -> None:
    """Decoding the emitted block + vocoder_context frames gives what decoding the whole window gives."""
    x = _speech(0.8)
    block = 3000  # not a multiple of the 1280-sample code grid: window starts are rounded to it
    outs = {}
    for context in (12, 10**6):  # 10**6: every window decoded whole
        vc = GsvVoiceConverter(GsvVcConfig(context_s=0.3, vocoder_context=context))
        vc.prepare(voice)
        outs[context] = np.concatenate(
            [vc.process(AudioFrame(x[i : i + block], SR)).samples.copy() for i in range(0, len(x) - block + 1, block)]
        )
        assert vc._origin % 1280 == 0  # the window starts on the code grid
    assert np.sqrt(np.mean(outs[12] ** 2)) > 1e-3
    np.testing.assert_allclose(outs[12], outs[10**6], atol=1e-5)  # with 0 frames: off by ~0.4


def test_wrong_rate_and_bad_latency_are_refused(voice: Voice) -> None:
    vc = GsvVoiceConverter(GsvVcConfig(lookahead_s=0.01))
    vc.prepare(voice)
    with pytest.raises(AudioInputError, match="32000 Hz"):
        vc.convert(AudioFrame(np.zeros(1600, np.float32), 16000))
    with pytest.raises(AudioInputError, match="lookahead_s"):
        vc.process(AudioFrame(np.zeros(3200, np.float32), SR))
    vc = GsvVoiceConverter(GsvVcConfig(vocoder_context=-1))
    vc.prepare(voice)
    with pytest.raises(AudioInputError, match="vocoder_context"):
        vc.process(AudioFrame(np.zeros(3200, np.float32), SR))
