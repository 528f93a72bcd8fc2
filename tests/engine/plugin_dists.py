"""Build real third-party plugin distributions (dist-info + entry points) in a folder for tests."""

from __future__ import annotations

import sys
from pathlib import Path

GOOD = '''
import numpy as np
from dataclasses import dataclass
from anchorvoice.engine.hookspecs import hookimpl
from anchorvoice.engine.stages import Effect


@dataclass
class InvertConfig:
    """Invert polarity."""

    amount: float = 1.0
    """1 inverts fully."""


class Invert(Effect):
    name = "test-invert"
    Config = InvertConfig

    def process(self, audio):
        return audio.with_samples(-self.config.amount * audio.samples)


@hookimpl
def register_effects(register):
    register(Invert)
'''

IMPORT_ERROR = "import this_module_does_not_exist_anywhere  # noqa\n"

BAD_SIGNATURE = '''
from anchorvoice.engine.hookspecs import hookimpl


@hookimpl
def register_effects(register, extra_argument):
    pass
'''

RAISES_IN_HOOK = '''
from anchorvoice.engine.hookspecs import hookimpl


@hookimpl
def register_vocoders(register):
    raise RuntimeError("model folder missing")
'''

NOT_A_STAGE = '''
from anchorvoice.engine.hookspecs import hookimpl


@hookimpl
def register_effects(register):
    register(dict)
'''

PLUGINS = {
    "avtest_good": GOOD,
    "avtest_import_error": IMPORT_ERROR,
    "avtest_bad_signature": BAD_SIGNATURE,
    "avtest_raises": RAISES_IN_HOOK,
    "avtest_not_a_stage": NOT_A_STAGE,
}


def install(folder: Path, names: list[str] | None = None) -> Path:
    """Write modules and one distribution per plugin into ``folder``; return it (add it to sys.path)."""
    folder.mkdir(parents=True, exist_ok=True)
    for mod, code in PLUGINS.items():
        if names is not None and mod not in names:
            continue
        (folder / f"{mod}.py").write_text(code)
        dist = folder / f"{mod}-0.1.dist-info"
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {mod}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[anchorvoice]\n{mod} = {mod}\n")
    return folder


def uninstall(folder: Path) -> None:
    while str(folder) in sys.path:
        sys.path.remove(str(folder))
    for mod in PLUGINS:
        sys.modules.pop(mod, None)
