"""Chinese BERT features on a tiny random-weight BERT folder the test writes (HF layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anchorvoice.errors import CheckpointError, CorruptCheckpointError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.text_zh.bert import ChineseBert
from anchorvoice.plugins.text_zh.frontend import ChineseConfig, ChineseFrontend
from anchorvoice.plugins.text_zh.mixed import MixedFrontend

HIDDEN, LAYERS, HEADS, FFN = 16, 3, 2, 32
CHARS = list("你好世界我是小明,.!?")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS]


def _state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Random weights under HF BertForMaskedLM names (``bert.`` prefix, a pooler and an LM head)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.5

    sd = {
        "bert.embeddings.word_embeddings.weight": rnd(len(VOCAB), HIDDEN),
        "bert.embeddings.position_embeddings.weight": rnd(64, HIDDEN),
        "bert.embeddings.token_type_embeddings.weight": rnd(2, HIDDEN),
        "bert.embeddings.LayerNorm.gamma": 1 + rnd(HIDDEN) * 0.1,  # old-style LayerNorm names
        "bert.embeddings.LayerNorm.beta": rnd(HIDDEN) * 0.1,
        "bert.pooler.dense.weight": rnd(HIDDEN, HIDDEN),
        "bert.pooler.dense.bias": rnd(HIDDEN),
        "cls.predictions.bias": rnd(len(VOCAB)),
    }
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"] = rnd(HIDDEN, HIDDEN)
            sd[p + f"attention.self.{name}.bias"] = rnd(HIDDEN)
        sd[p + "attention.output.dense.weight"] = rnd(HIDDEN, HIDDEN)
        sd[p + "attention.output.dense.bias"] = rnd(HIDDEN)
        sd[p + "attention.output.LayerNorm.weight"] = 1 + rnd(HIDDEN) * 0.1
        sd[p + "attention.output.LayerNorm.bias"] = rnd(HIDDEN) * 0.1
        sd[p + "intermediate.dense.weight"] = rnd(FFN, HIDDEN)
        sd[p + "intermediate.dense.bias"] = rnd(FFN)
        sd[p + "output.dense.weight"] = rnd(HIDDEN, FFN)
        sd[p + "output.dense.bias"] = rnd(HIDDEN)
        sd[p + "output.LayerNorm.weight"] = 1 + rnd(HIDDEN) * 0.1
        sd[p + "output.LayerNorm.bias"] = rnd(HIDDEN) * 0.1
    return sd


def write_tiny_bert(folder: Path, state: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "intermediate_size": FFN, "vocab_size": len(VOCAB), "max_position_embeddings": 64,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12,
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    torch.save(state, folder / "pytorch_model.bin")
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("bert"), _state_dict(0))


def test_features_are_repeated_per_phone(bert_dir: Path) -> None:
    bert = ChineseBert(bert_dir)
    assert bert.token_ids("你好,") == [2, 5, 6, 13, 3]
    feats = bert.features("你好,", [2, 2, 1])
    assert feats.shape == (HIDDEN, 5) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats[:, 0], feats[:, 1])
    np.testing.assert_array_equal(feats[:, 2], feats[:, 3])
    assert not np.allclose(feats[:, 1], feats[:, 2])


def test_text_longer_than_positions_is_read_in_windows(bert_dir: Path) -> None:
    bert = ChineseBert(bert_dir)  # 64 positions: 62 characters per window
    text = "你好世界我是小明" * 10  # 80 characters
    feats = bert.features(text, [1] * 80)
    assert feats.shape == (HIDDEN, 80)
    np.testing.assert_allclose(feats[:, :62], bert.features(text[:62], [1] * 62), atol=1e-6)
    np.testing.assert_allclose(feats[:, 62:], bert.features(text[62:], [1] * 18), atol=1e-6)


def test_uses_hidden_states_minus_three(tmp_path: Path, bert_dir: Path) -> None:
    base = ChineseBert(bert_dir).features("你好世界", [2, 2, 2, 2])
    # With 3 layers, hidden_states[-3] is the output of layer 0: the last two layers do not count.
    state = _state_dict(0)
    for key in state:
        if key.startswith(("bert.encoder.layer.1.", "bert.encoder.layer.2.")):
            state[key] = state[key] + 1.0
    same = ChineseBert(write_tiny_bert(tmp_path / "b1", state)).features("你好世界", [2, 2, 2, 2])
    np.testing.assert_array_equal(base, same)
    state["bert.encoder.layer.0.output.dense.weight"] *= 2.0  # (a bias shift would vanish in LayerNorm)
    other = ChineseBert(write_tiny_bert(tmp_path / "b2", state)).features("你好世界", [2, 2, 2, 2])
    assert not np.allclose(base, other)


def test_matches_transformers_if_installed(bert_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertForMaskedLM.from_pretrained(str(bert_dir)).eval()
    bert = ChineseBert(bert_dir)
    ids = torch.tensor([bert.token_ids("我是小明.")])
    with torch.no_grad():
        hidden = ref(input_ids=ids, output_hidden_states=True)["hidden_states"][-3][0, 1:-1]
    expected = hidden.repeat_interleave(2, dim=0).T.numpy()
    np.testing.assert_allclose(bert.features("我是小明.", [2] * 5)[:, :10], expected[:, :10], atol=1e-5)


def test_frontends_fill_bert(bert_dir: Path) -> None:
    zh = ChineseFrontend(ChineseConfig(bert_path=str(bert_dir)))
    frame = zh.phonemize(TextFrame("你好，世界！", "zh"))
    assert frame.bert is not None and frame.bert.shape == (HIDDEN, len(frame.ids))
    assert ChineseFrontend().phonemize(TextFrame("你好，世界！", "zh")).bert is None
    mixed = MixedFrontend(ChineseConfig(bert_path=str(bert_dir)))
    frame = mixed.phonemize(TextFrame("你好，Hello world!", "auto"))
    assert frame.bert is not None and frame.bert.shape == (HIDDEN, len(frame.ids))
    # 你好, = 5 phones with features; the English run (HH AH0 L OW1 W ER1 L D !) gets zeros
    assert np.abs(frame.bert[:, :5]).sum() > 0
    assert not frame.bert[:, 5:].any()


def test_bad_folders_are_refused(tmp_path: Path, bert_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="config.json"):
        ChineseBert(tmp_path)
    broken = write_tiny_bert(tmp_path / "broken", {k: v for k, v in _state_dict(0).items() if "query" not in k})
    with pytest.raises(CorruptCheckpointError, match="lack"):
        ChineseBert(broken)
    evil = write_tiny_bert(tmp_path / "evil", _state_dict(0))
    torch.save({"weights": Path("/etc/passwd")}, evil / "pytorch_model.bin")  # a pickled object, not tensors
    with pytest.raises(CorruptCheckpointError):
        ChineseBert(evil)
