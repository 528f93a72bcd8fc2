"""GPT-SoVITS checkpoint loading: real files written by torch.save in the official layouts, and hostile ones."""

from __future__ import annotations

import json
import os
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from anchorvoice.engine.state_dicts import load_state_dict
from anchorvoice.errors import (
    CheckpointError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    UnsupportedCheckpointError,
)
from anchorvoice.plugins.gsv.checkpoints import load_gpt, load_hubert, load_sovits


@pytest.fixture
def hparams_cls(monkeypatch: pytest.MonkeyPatch) -> type:
    """A class pickled as ``utils.HParams``, like GPT-SoVITS' s2_train.py writes it."""
    mod = types.ModuleType("utils")

    class HParams:
        def __init__(self, **kw: object) -> None:
            for k, v in kw.items():
                setattr(self, k, HParams(**v) if isinstance(v, dict) else v)

    HParams.__module__ = "utils"
    HParams.__qualname__ = "HParams"
    mod.HParams = HParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "utils", mod)
    return HParams


def _sovits_weights(phones: int = 732) -> OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return OrderedDict(
        [
            ("enc_p.text_embedding.weight", torch.randn(phones, 8, generator=g).half()),
            ("ssl_proj.weight", torch.randn(4, 4, 2, generator=g).half()),
            ("quantizer.vq.layers.0._codebook.embed", torch.randn(16, 4, generator=g).half()),
            ("dec.conv_pre.weight", torch.randn(4, 4, 7, generator=g).half()),
        ]
    )


def _save_sovits(path: Path, hparams_cls: type, weights: dict | None = None, **extra: object) -> Path:
    cfg = hparams_cls(
        model={"hidden_channels": 8, "gin_channels": 16, "version": "v2"},
        data={"hop_length": 640, "sampling_rate": 32000},
        version="v2",
    )
    torch.save(OrderedDict(weight=weights or _sovits_weights(), config=cfg, info="8epoch_96iteration", **extra), path)
    return path


def _retag(path: Path, tag: bytes) -> Path:
    data = bytearray(path.read_bytes())
    assert data[:2] == b"PK"
    data[:2] = tag
    path.write_bytes(bytes(data))
    return path


def test_sovits_hparams_file_loads_as_plain_dicts(tmp_path: Path, hparams_cls: type) -> None:
    p = _save_sovits(tmp_path / "voice.pth", hparams_cls)
    ck = load_sovits(p)
    assert ck.version == "v2" and ck.info == "8epoch_96iteration"
    assert ck.config == {
        "model": {"hidden_channels": 8, "gin_channels": 16, "version": "v2"},
        "data": {"hop_length": 640, "sampling_rate": 32000},
        "version": "v2",
    }
    want = _sovits_weights()
    assert set(ck.weights) == set(want)
    for k, v in want.items():
        assert ck.weights[k].dtype == torch.float16 and torch.equal(ck.weights[k], v)


def test_sovits_v1_detected_from_embedding_rows(tmp_path: Path, hparams_cls: type) -> None:
    p = _save_sovits(tmp_path / "v1.pth", hparams_cls, weights=_sovits_weights(phones=322))
    assert load_sovits(p).version == "v1"


def test_v2_head_tag_is_read_past(tmp_path: Path, hparams_cls: type) -> None:
    p = _retag(_save_sovits(tmp_path / "tagged.pth", hparams_cls), b"01")
    ck = load_sovits(p)
    assert ck.version == "v2" and torch.equal(ck.weights["ssl_proj.weight"], _sovits_weights()["ssl_proj.weight"])


@pytest.mark.parametrize(
    ("tag", "version"), [(b"02", "v3"), (b"04", "v4 LoRA"), (b"05", "v2Pro"), (b"06", "v2ProPlus")]
)
def test_newer_versions_refused_by_head_tag(tmp_path: Path, hparams_cls: type, tag: bytes, version: str) -> None:
    p = _retag(_save_sovits(tmp_path / "new.pth", hparams_cls), tag)
    with pytest.raises(UnsupportedCheckpointError, match=f"GPT-SoVITS {version} SoVITS"):
        load_sovits(p)


def test_newer_versions_refused_by_keys(tmp_path: Path, hparams_cls: type) -> None:
    w = _sovits_weights()
    del w["dec.conv_pre.weight"]
    w["cfm.estimator.proj_out.weight"] = torch.zeros(2, 2).half()
    with pytest.raises(UnsupportedCheckpointError, match="v3"):
        load_sovits(_save_sovits(tmp_path / "v3.pth", hparams_cls, weights=w))
    w = _sovits_weights()
    w["sv_emb.weight"] = torch.zeros(16, 20480).half()
    with pytest.raises(UnsupportedCheckpointError, match="v2Pro"):
        load_sovits(_save_sovits(tmp_path / "pro.pth", hparams_cls, weights=w))
    with pytest.raises(UnsupportedCheckpointError, match="LoRA"):
        load_sovits(_save_sovits(tmp_path / "lora.pth", hparams_cls, lora_rank=32))


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("loader", [load_sovits, load_gpt, load_state_dict])
def test_code_in_pickle_is_refused_and_never_runs(tmp_path: Path, loader: object) -> None:
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pth"
    torch.save({"weight": {"a": torch.zeros(1)}, "config": _Evil(marker), "info": ""}, p)
    with pytest.raises(UnsafeCheckpointError, match=r"system.*nothing was executed"):
        loader(p)  # type: ignore[operator]
    assert not marker.exists()


def test_truncated_and_non_checkpoint_files(tmp_path: Path, hparams_cls: type) -> None:
    p = _save_sovits(tmp_path / "full.pth", hparams_cls)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        load_sovits(cut)
    text = tmp_path / "notes.pth"
    text.write_text("just some text, not a model")
    with pytest.raises(CorruptCheckpointError):
        load_sovits(text)
    with pytest.raises(CorruptCheckpointError):
        load_state_dict(text)
    with pytest.raises(CheckpointError, match="not found"):
        load_sovits(tmp_path / "nope.pth")


def test_gpt_prefix_stripped_and_version(tmp_path: Path) -> None:
    w = OrderedDict(
        [
            ("model.ar_text_embedding.word_embeddings.weight", torch.ones(512, 4).half()),
            ("model.ar_predict_layer.weight", torch.full((1025, 4), 2.0).half()),
        ]
    )
    p = tmp_path / "g.ckpt"
    torch.save(OrderedDict(weight=w, config={"model": {"n_layer": 1}, "data": {"max_sec": 54}}, info="GPT-e15"), p)
    ck = load_gpt(p)
    assert set(ck.weights) == {"ar_text_embedding.word_embeddings.weight", "ar_predict_layer.weight"}
    assert ck.version == "v1" and ck.info == "GPT-e15" and ck.config["data"]["max_sec"] == 54
    torch.save(OrderedDict(weight=w), p)
    with pytest.raises(CorruptCheckpointError, match="not a GPT-SoVITS GPT file"):
        load_gpt(p)


def test_hubert_folder_errors_and_formats(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    with pytest.raises(CheckpointError, match="not found"):
        load_hubert(tmp_path / "missing")
    d = tmp_path / "hub"
    d.mkdir()
    torch.save({"masked_spec_embed": torch.ones(4)}, d / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="no config.json"):
        load_hubert(d)
    (d / "config.json").write_text(json.dumps({"hidden_size": 4}))
    ck = load_hubert(d)
    assert ck.config["hidden_size"] == 4 and torch.equal(ck.weights["masked_spec_embed"], torch.ones(4))
    save_file({"masked_spec_embed": torch.full((4,), 3.0)}, str(d / "model.safetensors"))
    assert torch.equal(load_hubert(d).weights["masked_spec_embed"], torch.full((4,), 3.0))
    (d / "model.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CorruptCheckpointError):
        load_hubert(d)


def test_mutated_pickles_only_ever_raise_checkpoint_errors(tmp_path: Path, hparams_cls: type) -> None:
    """Random byte damage inside data.pkl (zip rebuilt, so CRCs pass) never escapes as another error."""
    import random
    import zipfile

    src = _save_sovits(tmp_path / "ok.pth", hparams_cls)
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    pkl_name = next(n for n in members if n.endswith("/data.pkl"))
    pkl = members[pkl_name]
    rng = random.Random(1234)
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(150):
        data = bytearray(pkl)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        bad = tmp_path / f"m{trial}.pth"
        with zipfile.ZipFile(bad, "w") as z:
            for name, blob in members.items():
                z.writestr(name, bytes(data) if name == pkl_name else blob)
        try:
            load_state_dict(bad) if trial % 2 else load_sovits(bad)
            outcomes["loaded"] += 1
        except CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100, outcomes
