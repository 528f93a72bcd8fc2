"""Registers the ``piper`` base voice, when onnxruntime can be imported (``anchorvoice plugins`` says why not)."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl


@hookimpl
def register_base_voices(register: Register) -> None:
    """The Piper base voice (needs the onnxruntime package)."""
    from anchorvoice.plugins.piper.model import load_onnxruntime

    load_onnxruntime()  # PluginError with the install command: listed under FAILED TO LOAD
    from anchorvoice.plugins.piper.stage import PiperVoice

    register(PiperVoice)
