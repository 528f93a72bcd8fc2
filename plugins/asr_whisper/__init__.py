"""Entry point ``asr-whisper``: speech -> text with faster-whisper (CTranslate2 Whisper models)."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl


@hookimpl
def register_asr(register: Register) -> None:
    """``faster-whisper``: Whisper through CTranslate2; the packaged tiny.en by default (optional extra)."""
    from anchorvoice.plugins.asr_whisper.transcriber import FasterWhisper

    register(FasterWhisper)
