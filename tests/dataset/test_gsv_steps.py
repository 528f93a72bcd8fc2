"""GPT-SoVITS steps: semantic tokens through the base SoVITS's frozen quantizer, and the base-model guard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from anchorvoice.engine.dataset.builder import MakeConfig, make_dataset
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import DatasetError
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel
from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
from tests.dataset.helpers import REFERENCE, list_file, recordings

NAMES = ["demo-thanks", "agent-pass"]
S2 = REFERENCE / "s2_v2_small.pth"


@pytest.fixture(scope="module")
def wide_hubert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random HuBERT with the 768-d output SoVITS v2 reads (the fixture's is 64-d)."""
    if not S2.is_file():
        pytest.skip("shared/gsv_reference missing")
    folder = tmp_path_factory.mktemp("hubert768")
    cfg = json.loads((REFERENCE / "hubert_small" / "config.json").read_text())
    cfg.update(hidden_size=768, num_attention_heads=12, num_hidden_layers=1, intermediate_size=256)
    (folder / "config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    model = HubertModel(HubertConfig.from_json(cfg))
    weights = {k: torch.randn(s) * 0.05 for k, s in model.official_key_shapes().items()}
    torch.save(weights, folder / "pytorch_model.bin")
    return folder


@pytest.mark.slow
def test_semantic_tokens_come_from_extract_latent(tmp_path: Path, wide_hubert: Path,
                                                  builtin_plugins: PluginManager) -> None:
    rec = recordings(tmp_path / "rec", NAMES)
    cfg = MakeConfig("mira", rec, list_file(tmp_path / "t.list", NAMES), models={"hubert": wide_hubert, "sovits": S2})
    info = make_dataset(tmp_path / "home", cfg, builtin_plugins)
    d = Path(info["path"])
    lines = (d / "6-name2semantic.tsv").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "item_name\tsemantic_audio" and lines[-1] == "" and len(lines) == 4
    model = SynthesizerTrn.from_checkpoint(load_sovits(S2))
    for line in lines[1:-1]:
        name, tokens = line.split("\t")
        ssl = torch.load(d / "4-cnhubert" / f"{name}.pt", weights_only=True)
        expect = model.extract_latent(ssl)[0, 0].tolist()
        assert [int(t) for t in tokens.split()] == expect
        assert len(expect) == ssl.shape[2] // 2 and all(0 <= t < 1024 for t in expect)


@pytest.mark.slow
def test_another_base_model_is_refused(tmp_path: Path, wide_hubert: Path, builtin_plugins: PluginManager) -> None:
    rec = recordings(tmp_path / "rec", NAMES)
    lst = list_file(tmp_path / "t.list", NAMES)
    home = tmp_path / "home"
    make_dataset(home, MakeConfig("mira", rec, lst, models={"hubert": wide_hubert, "sovits": S2}), builtin_plugins)
    other = tmp_path / "other_s2G.pth"
    shutil.copy(S2, other)
    with open(other, "ab") as fh:  # same weights, another file: another base as far as anyone can tell
        fh.write(b"\0")
    before = (home / "datasets" / "mira" / "6-name2semantic.tsv").read_bytes()
    with pytest.raises(DatasetError, match="gsv-semantic outputs were made with other models"):
        make_dataset(home, MakeConfig("mira", rec, lst, models={"hubert": wide_hubert, "sovits": other}),
                     builtin_plugins)
    assert (home / "datasets" / "mira" / "6-name2semantic.tsv").read_bytes() == before


def test_hubert_width_must_match_the_base(tmp_path: Path, builtin_plugins: PluginManager) -> None:
    if not S2.is_file():
        pytest.skip("shared/gsv_reference missing")
    rec = recordings(tmp_path / "rec", NAMES)
    cfg = MakeConfig("mira", rec, list_file(tmp_path / "t.list", NAMES),
                     models={"hubert": REFERENCE / "hubert_small", "sovits": S2})
    with pytest.raises(DatasetError, match="64-d features"):
        make_dataset(tmp_path / "home", cfg, builtin_plugins)
    assert not (tmp_path / "home").exists()
