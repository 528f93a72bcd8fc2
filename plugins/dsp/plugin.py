"""Entry point ``anchorvoice.plugins.dsp.plugin``: registers the DSP voice converter."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.plugins.dsp.converter import DspVoiceConverter


@hookimpl
def register_voice_converters(register: Register) -> None:
    """The weight-free pitch + formant converter (``dsp``)."""
    register(DspVoiceConverter)
