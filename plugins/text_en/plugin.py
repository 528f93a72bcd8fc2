"""Entry point ``text-en``: registers the English text frontend through the public hook."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.plugins.text_en.frontend import EnglishFrontend


@hookimpl
def register_text_frontends(register: Register) -> None:
    register(EnglishFrontend)
