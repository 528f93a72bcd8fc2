"""A LoRA fine-tune as a voice-store delta: what a voice costs over its shared base.

The voice store composes a ``"lora"`` delta blob onto its base blob (:mod:`anchorvoice.engine.store.blobs`):
``W = base + B @ A`` for each ``<key>.lora_A`` / ``<key>.lora_B`` pair, and a tensor under a plain key
replaces the base's. :func:`store_delta` writes a trained model's adapters in that form, keyed by the
names the importer stores the base under (the official ones; GPT keys without ``model.``):

* a plain weight (Linear, Conv1d, the GPT's packed ``in_proj_weight``): A and B as trained (B times the
  adapter's scale);
* a weight-normed conv, stored as ``weight_g`` (per-row norm) and ``weight_v`` (direction): the adapter
  moves the effective weight ``w = g * v / |v|`` to ``w' = w + B @ A``. With B's rows scaled by
  ``|v| / g``, ``v + B' @ A = (|v| / g) * w'`` points along ``w'``, so a LoRA pair on ``weight_v`` plus
  the new norms ``|w'|`` as ``weight_g`` (one number per row) compose to exactly ``w'``.

At rank 8 on the full-size v2 models the deltas hold about 1.16 M SoVITS and 1.57 M GPT numbers (fp16:
about 2.3 and 3.1 MB; the SoVITS generator alone is 42.4 M).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from anchorvoice.errors import TrainingError
from anchorvoice.plugins.gsv.training.lora import LoraDelta

DTYPE = torch.float16
"""Adapter factors are stored as the official files store weights."""


def _row_norms(w: Tensor) -> Tensor:
    return torch.norm_except_dim(w, 2, 0)


def store_delta(model: nn.Module, base: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The adapters of ``model`` as ``"lora"`` delta tensors on the stored ``base`` weights (see module doc)."""
    out: dict[str, Tensor] = {}
    for path, mod in model.named_modules():
        lora = getattr(mod, "lora", None)
        if not isinstance(lora, LoraDelta):
            continue
        a = lora.lora_A.detach().float().cpu()
        b = lora.lora_B.detach().float().cpu() * lora.scale
        name = getattr(mod, "_adapted_name", "weight")
        if f"{path}.weight_g" in base and name == "weight":
            g, v = base[f"{path}.weight_g"].float(), base[f"{path}.weight_v"].float()
            w_new = g * v / _row_norms(v) + (b @ a).view(v.shape)
            out[f"{path}.weight_v.lora_A"] = a.to(DTYPE)
            out[f"{path}.weight_v.lora_B"] = (b * (_row_norms(v) / g).reshape(-1, 1)).to(DTYPE)
            out[f"{path}.weight_g"] = _row_norms(w_new).to(base[f"{path}.weight_g"].dtype)
        elif f"{path}.{name}" in base:
            out[f"{path}.{name}.lora_A"] = a.to(DTYPE)
            out[f"{path}.{name}.lora_B"] = b.to(DTYPE)
        else:
            raise TrainingError(f"the base model has no {path}.{name} for its LoRA adapter: the base file does "
                                "not match the model that was trained")
    if not out:
        raise TrainingError("the model holds no LoRA adapters (train with --lora RANK)")
    return out


def write_delta(path: Path, tensors: Mapping[str, Tensor]) -> Path:
    """The delta as a safetensors file (``<name>-<kind>.lora.safetensors`` in the run folder), written then
    renamed."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.partial")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)
    return path
