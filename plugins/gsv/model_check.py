"""Check a new GPT-SoVITS voice (reference clips and model files) when it is added, so it fails then.

The engine asks every plugin through the ``check_voice`` hook (:mod:`anchorvoice.plugins.gsv.plugin`
answers with :func:`check_gsv_voice`). Model files go through the safe loaders of
:mod:`anchorvoice.plugins.gsv.checkpoints` (no pickled code runs): unsupported versions are refused with
the version named, and a GPT (s1) file whose phoneme vocabulary does not match the SoVITS (s2) text
embedding is refused (:func:`~anchorvoice.plugins.gsv.checkpoints.check_phoneme_vocab`, the same rule
the GPT stage applies).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anchorvoice.engine.voices import VoiceDraft
from anchorvoice.errors import CheckpointError, ReferenceAudioError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.gsv.checkpoints import check_phoneme_vocab, load_gpt, load_hubert, load_sovits

MODEL_KINDS = ("gpt", "sovits", "hubert")
"""The ``models`` entries of a GPT-SoVITS voice (``voices add --gpt/--sovits/--hubert``)."""
REFERENCE_RANGE_S = (3.0, 10.0)
"""GPT-SoVITS inference refuses references outside 3-10 s (its webui check); so do we."""


def phoneme_vocab_sizes(gpt_config: Mapping[str, Any], sovits_weights: Mapping[str, Any]) -> tuple[int, int]:
    """(s1 phoneme vocabulary, s2 text-embedding rows)."""
    s1 = int(gpt_config["model"]["phoneme_vocab_size"])
    s2 = int(sovits_weights["enc_p.text_embedding.weight"].shape[0])
    return s1, s2


def check_reference(frame: AudioFrame, source: str) -> None:
    """Refuse a reference clip outside 3-10 s with :class:`ReferenceAudioError` saying how to cut it."""
    lo, hi = REFERENCE_RANGE_S
    if not lo <= frame.duration <= hi:
        raise ReferenceAudioError(
            f"reference {source} is {frame.duration:.1f} s long; GPT-SoVITS voices need a reference of "
            f"{lo:.0f}-{hi:.0f} s (cut the clip, e.g. `sox in.wav out.wav trim 0 8`)"
        )


def check_voice_models(models: Mapping[str, str | Path]) -> dict[str, str]:
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
        if sovits is None:
            raise CheckpointError(
                "a HuBERT folder alone makes no voice: add the voice's SoVITS (s2) file with --sovits FILE.pth "
                "(and its GPT (s1) file with --gpt FILE.ckpt for text-to-speech)"
            )
        load_hubert(models["hubert"])
        versions["hubert"] = "hubert"
    elif sovits is not None:
        raise CheckpointError(
            "a GPT-SoVITS voice needs the HuBERT feature extractor folder: add --hubert path/to/chinese-hubert-base"
        )
    if gpt is not None and sovits is not None:
        check_phoneme_vocab(*phoneme_vocab_sizes(gpt.config, sovits.weights))
    return versions


def check_gsv_voice(draft: VoiceDraft) -> None:
    """The ``check_voice`` answer: a voice with GPT-SoVITS model files gets 3-10 s references and sound files.

    A voice without any of :data:`MODEL_KINDS` is not ours and passes untouched.
    """
    ours = {k: p for k, p in draft.models.items() if k in MODEL_KINDS}
    if not ours:
        return
    if "sovits" in ours or "gpt" in ours:
        for source, frame in draft.references:
            check_reference(frame, source)
    check_voice_models(ours)
