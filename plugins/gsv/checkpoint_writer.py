"""Write GPT-SoVITS model files that the official code and our loaders both load.

* SoVITS (s2) ``.pth``: ``{"weight": fp16 state dict without enc_q.*, weight-normed convs as
  (weight_g, weight_v) pairs, "config": plain nested dict, "info": "<epoch>epoch_<steps>iteration"}``.
  The config always carries what official loaders read: ``data.n_speakers`` (300),
  ``train.segment_size``, ``model.version`` and ``version``, ``model.semantic_frame_rate``. The
  quantizer's ``inited`` buffer is stored as 1 (0 makes the official forward run k-means at load).
  The first two bytes carry the official version tag (``01`` v2, ``00`` v1; ``process_ckpt.head2version``),
  which the official loader reads before anything else, so a small model is never mistaken for v1
  by its file size.
* GPT (s1) ``.ckpt``: ``{"weight": "model."-prefixed fp16 state dict, "config", "info"}``.
* Discriminator ``.pth``: ``{"weight": state dict}`` like the pretrained ``s2D2333k.pth``.

Every write is atomic (temporary file in the same folder, fsync, rename): a crash or a full disk
mid-save leaves the previous file as it was.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from anchorvoice.engine.store.files import atomic_write_bytes
from anchorvoice.plugins.gsv.modules.weight_norm import WeightNormed

VERSION_TAGS = {"v1": b"00", "v2": b"01"}
"""Official ``process_ckpt.head2version`` tags we write."""


def atomic_save(obj: Any, path: Path, head: bytes | None = None) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically; ``head`` replaces the zip magic (version tag)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    if head is not None:
        data = head + data[2:]
    return atomic_write_bytes(path, data)


def official_weights(model: nn.Module) -> dict[str, Tensor]:
    """State dict with every folded weight-norm conv unfolded into (weight_g, weight_v) (trained pairs as they are)."""
    wn = {n + "." for n, m in model.named_modules() if isinstance(m, WeightNormed)}
    out: dict[str, Tensor] = {}
    for key, t in model.state_dict().items():
        t = t.detach().cpu()
        prefix = key[: -len("weight")]
        if key.endswith(".weight") and prefix in wn:
            out[prefix + "weight_g"] = t.float().pow(2).sum(dim=tuple(range(1, t.dim())), keepdim=True).sqrt()
            out[prefix + "weight_v"] = t.clone()
        else:
            out[key] = t.clone()
    return out


def sovits_file_config(config: dict[str, Any], version: str = "v2") -> dict[str, Any]:
    """The stored config with the fields official loaders need filled in (input left unchanged)."""
    cfg = copy.deepcopy(config)
    cfg.setdefault("data", {}).setdefault("n_speakers", 300)
    cfg.setdefault("train", {}).setdefault("segment_size", 20480)
    model = cfg.setdefault("model", {})
    model["version"] = version
    model.setdefault("semantic_frame_rate", "25hz")
    cfg["version"] = version
    return cfg


def write_sovits(path: Path, model: nn.Module, config: dict[str, Any], info: str, version: str = "v2") -> Path:
    """Write an s2 generator file in the official layout (see module docstring)."""
    weights = {k: v.half() for k, v in official_weights(model).items() if not k.startswith("enc_q.")}
    for key in weights:
        if key.endswith("._codebook.inited"):
            weights[key] = torch.ones_like(weights[key])
    box = {"weight": weights, "config": sovits_file_config(config, version), "info": info}
    return atomic_save(box, Path(path), VERSION_TAGS[version])


def write_gpt(path: Path, model: nn.Module, config: dict[str, Any], info: str) -> Path:
    """Write an s1 ``.ckpt``: ``model``-prefixed fp16 weights of a ``Text2SemanticDecoder``."""
    weights = {f"model.{k}": v.detach().cpu().half() for k, v in model.state_dict().items()}
    return atomic_save({"weight": weights, "config": copy.deepcopy(config), "info": info}, Path(path))


def write_discriminator(path: Path, disc: nn.Module) -> Path:
    """Write a discriminator file like the pretrained ``s2D*.pth`` (``{"weight": state dict}``)."""
    return atomic_save({"weight": official_weights(disc)}, Path(path))
