"""Entry point ``text-zh``: registers the Mandarin frontend and the mixed zh/en ("auto") frontend."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.plugins.text_zh.frontend import ChineseFrontend
from anchorvoice.plugins.text_zh.mixed import MixedFrontend


@hookimpl
def register_text_frontends(register: Register) -> None:
    register(ChineseFrontend)
    register(MixedFrontend)
