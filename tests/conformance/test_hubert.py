"""HuBERT against transformers' HubertModel outputs (README section 3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anchorvoice.plugins.gsv.checkpoints import load_hubert
from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel, build_hubert

pytestmark = pytest.mark.gsv_kind("hubert")


def test_last_hidden_state(gsv_case) -> None:
    model = build_hubert(load_hubert(gsv_case.checkpoint))
    wav = torch.from_numpy(gsv_case.input("wav16k"))[None]
    with torch.no_grad():
        gsv_case.check("last_hidden_state", model(wav))


# GPT-SoVITS' chinese-hubert-base config.json (README 3.3): the sizes a full-size check takes, never the fixture's.
CHINESE_HUBERT_BASE = {
    "feat_extract_norm": "group",
    "do_stable_layer_norm": False,
    "conv_bias": False,
    "feat_proj_layer_norm": True,
    "feat_extract_activation": "gelu",
    "hidden_act": "gelu",
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "layer_norm_eps": 1e-05,
}


def _sizes_from_keys(want: dict[str, tuple[int, ...]]) -> dict[str, object]:
    """The sizes a key list pins down (strides and head count leave no trace in shapes)."""
    n_conv = len([k for k in want if k.endswith(".conv.weight") and k.startswith("feature_extractor.")])
    convs = [want[f"feature_extractor.conv_layers.{i}.conv.weight"] for i in range(n_conv)]
    hidden, per_group, pos_kernel = want["encoder.pos_conv_embed.conv.weight_v"]
    layers = {int(k.split(".")[2]) for k in want if k.startswith("encoder.layers.")}
    return {
        "conv_dim": [c[0] for c in convs],
        "conv_kernel": [c[-1] for c in convs],
        "hidden_size": want["masked_spec_embed"][0],
        "num_hidden_layers": len(layers),
        "intermediate_size": want["encoder.layers.0.feed_forward.intermediate_dense.weight"][0],
        "num_conv_pos_embeddings": pos_kernel,
        "num_conv_pos_embedding_groups": hidden // per_group,
        "conv_bias": "feature_extractor.conv_layers.0.conv.bias" in want,
    }


def test_full_size_model_has_official_keys(gsv_reference: Path) -> None:
    rows = (gsv_reference / "keys_hubert_base.tsv").read_text().splitlines()[1:]
    want = {name: tuple(json.loads(shape)) for name, shape, _ in (r.split("\t") for r in rows)}
    from_keys = _sizes_from_keys(want)
    assert from_keys == {k: CHINESE_HUBERT_BASE[k] for k in from_keys}  # the key list and the config agree
    config = HubertConfig.from_json(CHINESE_HUBERT_BASE)
    assert config == HubertConfig()  # the code's defaults are chinese-hubert-base
    model = HubertModel(config)
    assert model.official_key_shapes() == want
    assert model.min_samples == 400


# --- the `hubert` stage on a tiny model written by the test (no fixtures needed) --------------------

TINY = {
    "conv_dim": [8] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "feat_extract_norm": "group",
    "do_stable_layer_norm": False,
}


def _official_state_dict(model: HubertModel, parametrized: bool = False) -> dict[str, torch.Tensor]:
    """The model's weights as HF stores them: weight norm split into magnitude and direction."""
    sd = dict(model.state_dict())
    w = sd.pop("encoder.pos_conv_embed.conv.weight")
    v = w * 3.0  # any direction with the same orientation; g carries the scale back
    g = w.norm(dim=(0, 1), keepdim=True)
    if parametrized:
        sd["encoder.pos_conv_embed.conv.parametrizations.weight.original0"] = g
        sd["encoder.pos_conv_embed.conv.parametrizations.weight.original1"] = v
    else:
        sd["encoder.pos_conv_embed.conv.weight_g"], sd["encoder.pos_conv_embed.conv.weight_v"] = g, v
    return sd


@pytest.fixture
def tiny_hubert(tmp_path: Path) -> tuple[Path, HubertModel]:
    torch.manual_seed(0)
    model = HubertModel(HubertConfig.from_json(TINY)).eval()
    folder = tmp_path / "tiny-hubert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY))
    torch.save(_official_state_dict(model), folder / "pytorch_model.bin")
    return folder, model


def _voice(tmp_path: Path, **models: Path):
    from anchorvoice.engine.voices import Voice

    return Voice(name="t", path=tmp_path, references=[], models=dict(models))


@pytest.mark.parametrize("parametrized", [False, True])
def test_weight_norm_names_fold_to_the_same_weights(tiny_hubert, parametrized: bool) -> None:
    _, model = tiny_hubert
    fresh = HubertModel(HubertConfig.from_json(TINY))
    fresh.load_official(_official_state_dict(model, parametrized))
    wav = torch.randn(1, 3200)
    with torch.no_grad():
        assert torch.allclose(fresh.eval()(wav), model(wav), atol=1e-5)


def test_stage_contract_and_output(tmp_path: Path, tiny_hubert) -> None:
    from anchorvoice.engine.testing import check_stage
    from anchorvoice.frames import AudioFrame
    from anchorvoice.plugins.gsv.stages_hubert import HubertExtractor

    folder, model = tiny_hubert
    stage = check_stage(HubertExtractor, voice=_voice(tmp_path, hubert=folder))
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    out = stage.extract(AudioFrame(wav, 16000, timestamp=2.5))
    assert out.features.shape == (16, 49) and out.frame_rate == 50.0 and out.timestamp == 2.5
    with torch.no_grad():
        ref = model(torch.from_numpy(wav)[None])[0].t()
    assert torch.allclose(out.features, ref, atol=1e-5)
    # params.model_dir wins over the voice's path
    cfg = HubertExtractor.Config(model_dir=str(folder))
    other = HubertExtractor(cfg)
    other.prepare(None)
    assert torch.equal(other.extract(AudioFrame(wav, 16000)).features, out.features)


def test_stage_refuses_bad_input(tmp_path: Path, tiny_hubert) -> None:
    from anchorvoice.errors import AudioInputError, CheckpointError
    from anchorvoice.frames import AudioFrame
    from anchorvoice.plugins.gsv.stages_hubert import HubertExtractor

    stage = HubertExtractor()
    with pytest.raises(CheckpointError, match="model_dir"):
        stage.prepare(_voice(tmp_path))
    stage.prepare(_voice(tmp_path, hubert=tiny_hubert[0]))
    with pytest.raises(AudioInputError, match="16000 Hz"):
        stage.extract(AudioFrame(np.zeros(32000, np.float32), 32000))
    with pytest.raises(AudioInputError, match="at least 400 samples"):
        stage.extract(AudioFrame(np.zeros(399, np.float32), 16000))
    no_cfg = tmp_path / "weights-only"
    no_cfg.mkdir()
    (no_cfg / "pytorch_model.bin").write_bytes((tiny_hubert[0] / "pytorch_model.bin").read_bytes())
    with pytest.raises(CheckpointError, match="no config.json"):
        HubertExtractor(HubertExtractor.Config(model_dir=str(no_cfg))).prepare(None)


def test_wrong_sizes_and_variants_are_refused(tmp_path: Path, tiny_hubert) -> None:
    from anchorvoice.errors import CorruptCheckpointError, UnsupportedCheckpointError

    folder, _ = tiny_hubert
    sd = torch.load(folder / "pytorch_model.bin", weights_only=True)
    del sd["encoder.layers.0.attention.q_proj.bias"]
    fresh = HubertModel(HubertConfig.from_json(TINY))
    with pytest.raises(CorruptCheckpointError, match="missing keys: encoder.layers.0.attention.q_proj.bias"):
        fresh.load_official(sd)
    big = HubertModel(HubertConfig.from_json({**TINY, "hidden_size": 32}))
    with pytest.raises(CorruptCheckpointError, match="shapes differ"):
        big.load_official(torch.load(folder / "pytorch_model.bin", weights_only=True))
    (folder / "config.json").write_text(json.dumps({**TINY, "hidden_size": "sixteen"}))
    with pytest.raises(CorruptCheckpointError, match="unusable sizes"):
        build_hubert(load_hubert(folder))
    with pytest.raises(UnsupportedCheckpointError, match="HuBERT large"):
        HubertConfig.from_json({**TINY, "do_stable_layer_norm": True, "feat_extract_norm": "layer"})


def test_inference_fast_paths_match_the_plain_layers_and_never_go_stale(tiny_hubert) -> None:
    _, model = tiny_hubert
    wav = torch.randn(1, 4000)
    plain = model(wav).detach()  # grad enabled: nn.Conv1d and three q/k/v projections
    with torch.no_grad():
        assert torch.allclose(model(wav), plain, atol=1e-5)  # matmul conv + fused qkv
        model.encoder.layers[0].attention.k_proj.weight.mul_(2.0)
        changed = model(wav)
    assert not torch.allclose(changed, plain, atol=1e-3)
    assert torch.allclose(changed, model(wav).detach(), atol=1e-5)
