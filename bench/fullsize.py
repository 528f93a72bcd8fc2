"""Full-size GPT-SoVITS v2 files with random weights, written in the official layouts.

Benchmarks that go through the real loaders and the whole pipeline need model files of the real
size; no model hub is reachable, so these are built from our own modules (same key names as the
official checkpoints) and saved the way the official trainers save them: s2 ``.pth`` =
{"weight": fp16 state dict with weight-norm pairs, "config", "info"}; s1 ``.ckpt`` = {"weight":
"model."-prefixed fp16 state dict, "config", "info"}; HuBERT = HuggingFace folder.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn


def _weight_norm_pairs(model: nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Folded conv weights -> the official (weight_g, weight_v) pairs with g = |v| over dims 1.."""
    from anchorvoice.plugins.gsv.modules.weight_norm import WNConv1d, WNConvTranspose1d

    wn = {n + "." for n, m in model.named_modules() if isinstance(m, (WNConv1d, WNConvTranspose1d))}
    out: dict[str, torch.Tensor] = {}
    for key, t in sd.items():
        prefix = key[: -len("weight")]
        if key.endswith(".weight") and prefix in wn:
            out[prefix + "weight_g"] = t.norm(dim=tuple(range(1, t.dim())), keepdim=True)
            out[prefix + "weight_v"] = t
        else:
            out[key] = t
    return out


def write_sovits(path: Path, seed: int = 0) -> Path:
    from anchorvoice.plugins.gsv.checkpoint_writer import write_sovits as write_official
    from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn, official_v2_config

    torch.manual_seed(seed)
    config: dict[str, Any] = official_v2_config()
    model = SynthesizerTrn(SovitsConfig.from_checkpoint_config(config))
    # the shared writer: n_speakers, model.version, the v2 head tag, quantizer inited = 1
    return write_official(path, model, config, "random full-size v2")


def write_gpt(path: Path, seed: int = 0, max_sec: int = 54, sizes: Any = None) -> Path:
    """``sizes``: a ``T2SConfig`` (default: the full-size v2 one)."""
    from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder

    torch.manual_seed(seed)
    cfg = sizes or T2SConfig()
    model = Text2SemanticDecoder(cfg)
    with torch.no_grad():
        model.ar_predict_layer.weight.mul_(4.0)  # sharper head, as the reference fixture does
    weights = {f"model.{k}": v.half() for k, v in model.state_dict().items()}
    config = {
        "model": {"hidden_dim": cfg.hidden_dim, "embedding_dim": cfg.embedding_dim, "head": cfg.head,
                  "n_layer": cfg.n_layer, "vocab_size": cfg.vocab_size, "phoneme_vocab_size": cfg.phoneme_vocab_size,
                  "EOS": cfg.eos, "dropout": 0, "random_bert": 0, "linear_units": 4 * cfg.hidden_dim},
        "data": {"max_sec": max_sec},
    }
    torch.save({"weight": weights, "config": config, "info": "GPT-random"}, path)
    return path


def write_hubert(folder: Path, seed: int = 0, sizes: dict[str, Any] | None = None) -> Path:
    """A HuggingFace-layout HuBERT folder; ``sizes`` overrides config fields (a smaller model)."""
    from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel

    torch.manual_seed(seed)
    config = HubertConfig(**(sizes or {}))  # its defaults are chinese-hubert-base's sizes
    sd = dict(HubertModel(config).state_dict())
    w = sd.pop("encoder.pos_conv_embed.conv.weight")
    sd["encoder.pos_conv_embed.conv.weight_g"] = w.norm(dim=(0, 1), keepdim=True)
    sd["encoder.pos_conv_embed.conv.weight_v"] = w
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    torch.save({k: v.half() for k, v in sd.items()}, folder / "pytorch_model.bin")
    return folder
