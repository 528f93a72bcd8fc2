"""Every stage kind and its abstract base: what the plugin manager registers and the stage checks test."""

from __future__ import annotations

from anchorvoice.engine.dataset_stages import DatasetStep, Denoiser, Transcriber
from anchorvoice.engine.stages import (
    AudioSink,
    AudioSource,
    BaseVoice,
    Decoder,
    Effect,
    FeatureExtractor,
    ProsodyModel,
    Stage,
    TextFrontend,
    Tokenizer,
    Vocoder,
    VoiceConverter,
)

STAGE_KINDS: dict[str, type[Stage]] = {
    cls.kind: cls
    for cls in (
        TextFrontend,
        FeatureExtractor,
        Tokenizer,
        ProsodyModel,
        Decoder,
        Vocoder,
        Effect,
        BaseVoice,
        VoiceConverter,
        AudioSource,
        AudioSink,
        Transcriber,
        Denoiser,
        DatasetStep,
    )
}
"""Stage kind name -> its abstract base."""
