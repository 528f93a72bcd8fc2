"""Check a voice's model files when it is added, so a bad file fails then and not on stream.

Uses the safe loaders of :mod:`anchorvoice.engine.checkpoints` (no pickled code runs), refuses unsupported
versions with the version named, and refuses a GPT (s1) file whose phoneme vocabulary does not
match the SoVITS (s2) text embedding (``anchorvoice.engine.checkpoints.check_phoneme_vocab``, the same rule the
GPT stage applies).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anchorvoice.engine.checkpoints import check_phoneme_vocab, load_gpt, load_hubert, load_sovits
from anchorvoice.errors import CheckpointError


def phoneme_vocab_sizes(gpt_config: Mapping[str, Any], sovits_weights: Mapping[str, Any]) -> tuple[int, int]:
    """(s1 phoneme vocabulary, s2 text-embedding rows)."""
    s1 = int(gpt_config["model"]["phoneme_vocab_size"])
    s2 = int(sovits_weights["enc_p.text_embedding.weight"].shape[0])
    return s1, s2


def check_voice_models(engine: Any, models: Mapping[str, str | Path]) -> dict[str, str]:
    """Load each given model file safely; returns ``{kind: version}``. Raises CheckpointError."""
    versions: dict[str, str] = {}
    sovits = gpt = None
    if "sovits" in models:
        sovits = load_sovits(models["sovits"])
        versions["sovits"] = sovits.version
    if "gpt" in models:
        gpt = load_gpt(models["gpt"])
        versions["gpt"] = gpt.version
        if sovits is None:
            raise CheckpointError("a GPT (s1) file needs its SoVITS (s2) file too: add --sovits FILE.pth")
    if "hubert" in models:
        load_hubert(models["hubert"])
        versions["hubert"] = "hubert"
    elif sovits is not None:
        raise CheckpointError(
            "a GPT-SoVITS voice needs the HuBERT feature extractor folder: add --hubert path/to/chinese-hubert-base"
        )
    if gpt is not None and sovits is not None:
        check_phoneme_vocab(*phoneme_vocab_sizes(gpt.config, sovits.weights))
    return versions
