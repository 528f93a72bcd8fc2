"""GPT-SoVITS model files into the voice store (the ``import_model`` hook) and back out of it.

Importing reads the official ``.pth`` / ``.ckpt`` / HuBERT folder with the safe loaders of
:mod:`anchorvoice.plugins.gsv.checkpoints` (no pickled code runs) and hands the store the weights as
stored (fp16 in official files, so the blob is as small as the original) with the metadata the
loaders need to rebuild the checkpoint objects: ``config``, ``version``, ``info``. The loaders
recognise a blob by its safetensors header (:func:`checkpoint_from_blob`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from anchorvoice.engine.store.blobs import read_blob
from anchorvoice.errors import CorruptCheckpointError

IMPORTED_KINDS = ("gpt", "sovits", "hubert")
"""The ``models`` entries of a GPT-SoVITS voice that go into the store as blobs."""


def import_gsv_model(kind: str, path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(tensors, metadata)`` of a GPT-SoVITS model file, or None for a kind that is not ours."""
    from anchorvoice.plugins.gsv.checkpoints import load_gpt, load_hubert, load_sovits

    if kind == "sovits":
        s = load_sovits(path)
        return s.weights, {"config": s.config, "version": s.version, "info": s.info, "format": "gsv-s2"}
    if kind == "gpt":
        g = load_gpt(path)
        return g.weights, {"config": g.config, "version": g.version, "info": g.info, "format": "gsv-s1"}
    if kind == "hubert":
        h = load_hubert(path)
        return h.weights, {"config": h.config, "format": "hf-hubert"}
    return None


def checkpoint_from_blob(path: Path, fmt: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A blob's weights and metadata, refusing a blob that holds another kind of model than ``fmt``."""
    weights, meta = read_blob(path)
    if meta.get("format") != fmt:
        raise CorruptCheckpointError(
            f"model blob {path} holds a {meta.get('format') or meta.get('kind') or 'unknown'} model, not {fmt}; "
            "is the voice's models entry pointing at the right blob?"
        )
    if not isinstance(meta.get("config"), dict):
        raise CorruptCheckpointError(f"model blob {path} carries no config; re-import the model")
    return weights, meta
