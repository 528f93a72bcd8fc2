"""Entry point ``anchorvoice.plugins.dsp.plugin``: registers the DSP voice converter."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.engine.voices import Voice
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp.converter import DspVoiceConverter


@hookimpl
def register_voice_converters(register: Register) -> None:
    """The weight-free pitch + formant converter (``dsp``)."""
    register(DspVoiceConverter)


@hookimpl
def tag_reference(audio: AudioFrame, text: str, language: str) -> list[str]:
    """Pitch-range, energy and pace tags measured on the clip (not emotions; see ``prosody_tags``)."""
    from anchorvoice.plugins.dsp.prosody_tags import prosody_tags

    return prosody_tags(audio, text)


@hookimpl
def speaker_embedding(voice: Voice) -> tuple[str, list[float]] | None:
    """A coarse timbre vector from the DSP statistics every voice has (pitch and spectral envelope)."""
    from anchorvoice.plugins.dsp.prosody_tags import envelope_embedding

    vec = envelope_embedding(voice.analysis.get("dsp", {}))
    return ("dsp-envelope", vec) if vec else None
