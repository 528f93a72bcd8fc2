"""Entry point ``plugins.dsp.plugin``: registers the DSP voice converter."""

from __future__ import annotations

from engine.hookspecs import Register, hookimpl
from plugins.dsp.converter import DspVoiceConverter


@hookimpl
def register_voice_converters(register: Register) -> None:
    """The weight-free pitch + formant converter (``dsp``)."""
    register(DspVoiceConverter)
