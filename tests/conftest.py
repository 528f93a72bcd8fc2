"""Shared fixtures: a plugin manager with the built-in plugins only, engines on temporary homes."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.plugins.cpu_kernels import bf16_kernels

REPO = Path(__file__).resolve().parent.parent
ASTERISK_EN = Path("/usr/share/asterisk/sounds/en")

needs_bf16_kernels = pytest.mark.skipif(
    not bf16_kernels(), reason="this CPU cannot run oneDNN's bf16 kernels (AVX2 only: no AVX512-BW/VL/DQ, "
    "AVX-NE-CONVERT or AMX); tests/gsv/test_reduced_precision.py checks the refusal instead")
"""For tests that run bfloat16 convolutions or GEMMs: they cannot run on an AVX2-only CPU."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--load-seconds", type=float, default=20.0,
                     help="seconds the `load` test streams under CPU hogs (issue 17's soak: 600)")


@pytest.fixture(scope="session")
def builtin_plugins() -> PluginManager:
    """Built-in plugins only: tests never load whatever third-party plugins happen to be installed."""
    pm = PluginManager()
    pm.load_entry_points(third_party=False)
    return pm


@pytest.fixture
def engine(tmp_path: Path, builtin_plugins: PluginManager) -> Engine:
    eng = Engine(EngineConfig(home=tmp_path / "home", third_party_plugins=False), plugins=builtin_plugins)
    yield eng
    eng.close()


def asterisk_clip(*names: str) -> Path:
    """Path of a real human speech prompt from Debian's asterisk-core-sounds-en-g722 (skip if absent)."""
    for n in names:
        p = ASTERISK_EN / f"{n}.g722"
        if not p.exists():
            pytest.skip(f"{p} missing: install asterisk-core-sounds-en-g722 (`make test` does as root)")
    return ASTERISK_EN / f"{names[0]}.g722"
