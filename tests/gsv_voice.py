"""A complete GPT-SoVITS voice for end-to-end tests: the shared fixture s1/s2 files plus a tiny
random HuBERT whose width (768) matches the SoVITS ``ssl_proj`` (the fixture HuBERT is 64 wide)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.voices import Voice

TINY_768 = {
    "conv_dim": [8] * 7,
    "hidden_size": 768,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 32,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 16,
}


def make_hubert_768(folder: Path) -> Path:
    """Write a HuggingFace-layout HuBERT folder (legacy weight-norm names) with random weights."""
    from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel

    torch.manual_seed(0)
    sd = dict(HubertModel(HubertConfig.from_json(TINY_768)).state_dict())
    w = sd.pop("encoder.pos_conv_embed.conv.weight")
    sd["encoder.pos_conv_embed.conv.weight_g"] = w.norm(dim=(0, 1), keepdim=True)
    sd["encoder.pos_conv_embed.conv.weight_v"] = w
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(TINY_768))
    torch.save(sd, folder / "pytorch_model.bin")
    return folder


def add_neural_voice(engine: Engine, gsv_reference: Path, tmp: Path, name: str = "alice",
                     ref_text: str = "Hello there, how are you today?") -> Voice:
    """Add a GPT-SoVITS voice (fixture weights) with a 4 s speech-like reference at 32 kHz."""
    ref = tmp / f"{name}_ref.wav"
    sig = speech_like_signal(32000, 4.0, f0=160.0).samples
    sf.write(str(ref), sig * np.hanning(len(sig)).astype(np.float32) ** 0.1, 32000)
    return engine.add_voice(
        name,
        [ref],
        ref_text=ref_text,
        ref_lang="en",
        models={
            "sovits": gsv_reference / "s2_v2_small.pth",
            "gpt": gsv_reference / "s1_v2_small.ckpt",
            "hubert": make_hubert_768(tmp / f"{name}_hubert"),
        },
        overwrite=True,
    )
