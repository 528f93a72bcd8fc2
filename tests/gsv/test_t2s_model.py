"""T2S model: official key names and shapes, strict loading, config and vocabulary checks."""

from __future__ import annotations

import pytest
import torch

from anchorvoice.errors import CheckpointError, CorruptCheckpointError, UnsupportedCheckpointError
from anchorvoice.plugins.gsv.checkpoints import check_phoneme_vocab
from anchorvoice.plugins.gsv.t2s_model import (
    T2SConfig,
    Text2SemanticDecoder,
    load_t2s,
    load_t2s_weights,
)
from tests.conformance.conftest import require_reference_dir

SMALL = T2SConfig(hidden_dim=32, embedding_dim=32, head=4, n_layer=2)


def _official_keys() -> dict[str, tuple[int, ...]]:
    root = require_reference_dir()
    rows = (root / "keys_s1_v2.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out = {}
    for row in rows:
        name, shape, _dtype = row.split("\t")
        out[name] = tuple(int(v) for v in shape.strip("[]").split(",") if v.strip())
    return out


def test_full_size_v2_model_has_exactly_the_official_keys_and_shapes() -> None:
    official = _official_keys()
    config = T2SConfig.from_checkpoint_config(
        {
            "model": {
                "vocab_size": 1025,
                "phoneme_vocab_size": 732,
                "embedding_dim": 512,
                "hidden_dim": 512,
                "head": 16,
                "linear_units": 2048,
                "n_layer": 24,
                "dropout": 0,
                "EOS": 1024,
            },
            "data": {"max_sec": 54},
        }
    )
    with torch.device("meta"):  # shapes only: no 300 MB allocation
        model = Text2SemanticDecoder(config)
    ours = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(official) == 295
    assert set(ours) == set(official), f"missing {set(official) - set(ours)}, extra {set(ours) - set(official)}"
    assert ours == official
    assert config.early_stop_num == 2700  # official TTS.py: hz 50 * max_sec 54


def test_official_small_checkpoint_loads_strictly_and_upcasts() -> None:
    root = require_reference_dir()
    model = load_t2s(root / "s1_v2_small.ckpt")
    assert model.config.n_layer == 3 and model.config.hidden_dim == 128
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not model.training
    # the fixture's random alphas (README 8): 0.75 text / 1.6 audio, fp16-rounded
    assert abs(model.ar_text_position.alpha.item() - 0.75) < 1e-3
    assert abs(model.ar_audio_position.alpha.item() - 1.6) < 1e-3


def test_missing_unexpected_and_misshaped_weights_are_refused_by_name() -> None:
    weights = {f"model.{k}": v.half() for k, v in Text2SemanticDecoder(SMALL).state_dict().items()}
    load_t2s_weights(SMALL, weights)  # prefixed (as stored) loads
    load_t2s_weights(SMALL, {k.removeprefix("model."): v for k, v in weights.items()})  # as load_gpt gives

    broken = dict(weights)
    del broken["model.h.layers.1.linear2.bias"]
    broken["model.speaker_proj.weight"] = torch.zeros(1)
    with pytest.raises(CorruptCheckpointError, match="h.layers.1.linear2.bias") as info:
        load_t2s_weights(SMALL, broken)
    assert "speaker_proj" in str(info.value)

    wrong = dict(weights)
    wrong["model.ar_predict_layer.weight"] = torch.zeros(1024, 32)
    with pytest.raises(CorruptCheckpointError, match=r"ar_predict_layer.weight.*\(1024, 32\)"):
        load_t2s_weights(SMALL, wrong)


def test_config_errors_name_the_field() -> None:
    good = {
        "hidden_dim": 8,
        "embedding_dim": 8,
        "head": 2,
        "n_layer": 1,
        "vocab_size": 1025,
        "phoneme_vocab_size": 732,
        "EOS": 1024,
    }
    with pytest.raises(CorruptCheckpointError, match="'model' section"):
        T2SConfig.from_checkpoint_config({"data": {}})
    with pytest.raises(CorruptCheckpointError, match="model.head"):
        T2SConfig.from_checkpoint_config({"model": {**good, "head": None}})
    with pytest.raises(CorruptCheckpointError, match="EOS=7"):
        T2SConfig.from_checkpoint_config({"model": {**good, "EOS": 7}})
    with pytest.raises(UnsupportedCheckpointError, match="embedding_dim=16"):
        T2SConfig.from_checkpoint_config({"model": {**good, "embedding_dim": 16}})
    assert T2SConfig.from_checkpoint_config({"model": good}).max_sec == 54


@pytest.mark.parametrize(("s1", "s2"), [(732, 732), (512, 322)])
def test_matching_phoneme_vocabularies_pass(s1: int, s2: int) -> None:
    check_phoneme_vocab(s1, s2)


@pytest.mark.parametrize(("s1", "s2"), [(512, 732), (732, 322), (732, 512)])
def test_mismatched_phoneme_vocabularies_are_refused_naming_both_sizes(s1: int, s2: int) -> None:
    with pytest.raises(CheckpointError) as info:
        check_phoneme_vocab(s1, s2)
    assert str(s1) in str(info.value) and str(s2) in str(info.value)
