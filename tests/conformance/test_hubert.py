"""HuBERT against transformers' HubertModel outputs (README section 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.checkpoints import load_hubert
from plugins.gsv.hubert import HubertConfig, HubertModel, build_hubert

pytestmark = pytest.mark.gsv_kind("hubert")


def test_last_hidden_state(gsv_case) -> None:
    model = build_hubert(load_hubert(gsv_case.checkpoint))
    wav = torch.from_numpy(gsv_case.input("wav16k"))[None]
    with torch.no_grad():
        gsv_case.check("last_hidden_state", model(wav))


def test_full_size_model_has_official_keys(gsv_reference: Path) -> None:
    rows = (gsv_reference / "keys_hubert_base.tsv").read_text().splitlines()[1:]
    want = {name: tuple(json.loads(shape)) for name, shape, _ in (r.split("\t") for r in rows)}
    cfg = json.loads((gsv_reference / "hubert_small" / "config.json").read_text())
    # chinese-hubert-base sizes (README 3.3) on top of the fixture's key set.
    cfg.update(
        conv_dim=[512] * 7, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    )
    model = HubertModel(HubertConfig.from_json(cfg))
    assert model.official_key_shapes() == want
    assert model.min_samples == 400
