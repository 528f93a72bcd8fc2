"""Entry point ``gpt-sovits``: registers the GPT-SoVITS v2 stages through the standard hooks and checks
new voices that carry GPT-SoVITS model files (``check_voice``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.engine.voices import Voice, VoiceDraft
from anchorvoice.plugins.gsv.rvq import GsvTokenizer
from anchorvoice.plugins.gsv.stages_hubert import HubertExtractor


@hookimpl
def register_feature_extractors(register: Register) -> None:
    """``hubert``: chinese-hubert-base content features (768, T) at 50 Hz."""
    register(HubertExtractor)


@hookimpl
def register_tokenizers(register: Register) -> None:
    """``gsv-rvq``: SoVITS ssl_proj + residual VQ -> 25 Hz semantic tokens."""
    register(GsvTokenizer)


@hookimpl
def register_decoders(register: Register) -> None:
    """``gsv-sovits``: SoVITS v2 prior + flow -> latent (192, T) at 50 Hz with the voice's timbre."""
    from anchorvoice.plugins.gsv.stages_sovits import GsvSovitsDecoder

    register(GsvSovitsDecoder)


@hookimpl
def register_vocoders(register: Register) -> None:
    """``gsv-hifigan``: the SoVITS checkpoint's HiFi-GAN decoder -> 32 kHz audio."""
    from anchorvoice.plugins.gsv.stages_sovits import GsvHifiganVocoder

    register(GsvHifiganVocoder)


@hookimpl
def register_prosody_models(register: Register) -> None:
    """``gsv-t2s``: GPT-SoVITS v2 GPT (T2S) phonemes -> 25 Hz semantic tokens, streamed in chunks."""
    from anchorvoice.plugins.gsv.t2s_stage import GsvT2S

    register(GsvT2S)


@hookimpl
def register_voice_converters(register: Register) -> None:
    """``gsv-vc``: HuBERT -> SoVITS tokens -> SoVITS decode with a GPT-SoVITS voice's timbre."""
    from anchorvoice.plugins.gsv.stages_vc import GsvVoiceConverter

    register(GsvVoiceConverter)


@hookimpl
def check_voice(draft: VoiceDraft) -> None:
    """A voice with GPT-SoVITS files: 3-10 s references, loadable v1/v2 files whose phoneme tables match."""
    from anchorvoice.plugins.gsv.model_check import check_gsv_voice

    check_gsv_voice(draft)


@hookimpl
def register_dataset_steps(register: Register) -> None:
    """``gsv-text``, ``gsv-hubert``, ``gsv-semantic``: the official GPT-SoVITS training-set files."""
    from anchorvoice.plugins.gsv.dataset_steps import GsvHubertStep, GsvSemanticStep, GsvTextStep

    register(GsvTextStep)
    register(GsvHubertStep)
    register(GsvSemanticStep)


@hookimpl
def import_model(kind: str, path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """GPT-SoVITS ``gpt`` / ``sovits`` / ``hubert`` files into the voice store, read safely."""
    from anchorvoice.plugins.gsv.model_import import import_gsv_model

    return import_gsv_model(kind, path)


@hookimpl
def speaker_embedding(voice: Voice) -> tuple[str, list[float]] | None:
    """The voice's SoVITS timbre vector ``ge`` (space ``gsv-ge``), for timbre families."""
    from anchorvoice.plugins.gsv.speaker_embedding import gsv_speaker_embedding

    return gsv_speaker_embedding(voice)
