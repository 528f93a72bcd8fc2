"""Hook specifications: how a plugin adds stages (each ``register_*`` hook gets ``register(stage_class)``)
and how it checks a voice its stages would run (``check_voice``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice, VoiceDraft
    from anchorvoice.frames import AudioFrame

hookspec = pluggy.HookspecMarker("anchorvoice")
hookimpl = pluggy.HookimplMarker("anchorvoice")

Register = Callable[[type[Any]], None]


@hookspec
def register_text_frontends(register: Register) -> None:
    """Register ``TextFrontend`` classes (one per language or language group)."""


@hookspec
def register_feature_extractors(register: Register) -> None:
    """Register ``FeatureExtractor`` classes (audio -> continuous features)."""


@hookspec
def register_tokenizers(register: Register) -> None:
    """Register ``Tokenizer`` classes (features -> semantic tokens)."""


@hookspec
def register_prosody_models(register: Register) -> None:
    """Register ``ProsodyModel`` classes (phonemes -> semantic tokens)."""


@hookspec
def register_decoders(register: Register) -> None:
    """Register ``Decoder`` classes (semantic tokens -> latent)."""


@hookspec
def register_vocoders(register: Register) -> None:
    """Register ``Vocoder`` classes (latent -> waveform)."""


@hookspec
def register_effects(register: Register) -> None:
    """Register ``Effect`` classes (block-wise audio effects)."""


@hookspec
def register_base_voices(register: Register) -> None:
    """Register ``BaseVoice`` classes (weight-free text-to-speech)."""


@hookspec
def register_voice_converters(register: Register) -> None:
    """Register ``VoiceConverter`` classes (speech -> target voice)."""


@hookspec
def register_audio_sources(register: Register) -> None:
    """Register ``AudioSource`` classes (microphones, files, streams)."""


@hookspec
def register_audio_sinks(register: Register) -> None:
    """Register ``AudioSink`` classes (speakers, files, virtual microphones)."""


@hookspec
def register_asr(register: Register) -> None:
    """Register ``Transcriber`` classes (speech -> text, for making training sets)."""


@hookspec
def register_denoisers(register: Register) -> None:
    """Register ``Denoiser`` classes (whole-clip noise reduction, for making training sets)."""


@hookspec
def register_dataset_steps(register: Register) -> None:
    """Register ``DatasetStep`` classes (model-specific files written for each training clip)."""


@hookspec
def check_voice(draft: VoiceDraft) -> None:
    """Refuse a voice about to be added that this plugin's stages could not run.

    Called once per ``voices add``, after the engine's own checks (name, paths exist, clips long
    enough and not silent) and before anything is written. Raise a
    :class:`~anchorvoice.errors.VoiceError` (e.g. ``ReferenceAudioError``) or
    :class:`~anchorvoice.errors.CheckpointError` that says what to fix; return when the voice is fine
    or carries none of this plugin's model files.
    """


@hookspec(firstresult=True)
def import_model(kind: str, path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Turn a model file of ``kind`` (a voice's ``models`` entry, e.g. ``sovits``) into what the voice
    store keeps: ``(tensors, metadata)``, read with safe loaders (no pickled code runs).

    ``metadata`` is JSON-able and must let this plugin rebuild the model from the blob (its config,
    version); the store adds ``kind``. Return None for kinds this plugin does not own (the file is then
    kept where it is, by path). Raise :class:`~anchorvoice.errors.CheckpointError` for a bad file.
    """


@hookspec
def tag_reference(audio: AudioFrame, text: str, language: str) -> list[str] | None:
    """Tags for a reference clip (an emotion classifier, a prosody measure): free words or ``key:value``
    (``excited``, ``energy:high``). ``voices tag`` stores the union of every plugin's answer on the style;
    return None or [] when this plugin has nothing to say about the clip."""


@hookspec
def speaker_embedding(voice: Voice) -> tuple[str, list[float]] | None:
    """A vector of the voice's timbre and the name of its space (e.g. ``("gsv-ge", [...])``), for ``voices
    similar`` and ``voices cluster``; only vectors of one space are compared. None: not this plugin's voice."""


HOOK_KINDS: dict[str, str] = {
    "register_text_frontends": "text_frontend",
    "register_feature_extractors": "feature_extractor",
    "register_tokenizers": "tokenizer",
    "register_prosody_models": "prosody",
    "register_decoders": "decoder",
    "register_vocoders": "vocoder",
    "register_effects": "effect",
    "register_base_voices": "base_voice",
    "register_voice_converters": "voice_converter",
    "register_audio_sources": "audio_source",
    "register_audio_sinks": "audio_sink",
    "register_asr": "asr",
    "register_denoisers": "denoiser",
    "register_dataset_steps": "dataset_step",
}
"""Hook name -> the stage kind it registers."""
