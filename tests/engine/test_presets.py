"""Preset lookup: a bare name is a shipped preset, a path (a `/` or a `.toml` ending) is a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorvoice.engine.engine import Engine, default_configs_dir
from anchorvoice.errors import ConfigError


def test_presets_ship_with_the_package() -> None:
    assert {"tts", "vc", "demo", "server"} <= {p.stem for p in default_configs_dir().glob("*.toml")}


def test_a_folder_named_like_a_preset_does_not_shadow_it(engine: Engine, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # what `anchorvoice demo --out demo` leaves behind
    (tmp_path / "tts").write_text("not a preset")
    assert engine.preset_path("demo") == default_configs_dir() / "demo.toml"
    assert engine.preset_path("tts") == default_configs_dir() / "tts.toml"
    assert engine.load_preset("demo").pipeline.mode


def test_paths_are_files(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.toml"
    mine.write_text((default_configs_dir() / "tts.toml").read_text())
    assert engine.preset_path("mine.toml") == Path("mine.toml")
    assert engine.preset_path(str(mine)) == mine
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match="does not exist"):
        engine.preset_path("./sub")
    with pytest.raises(ConfigError, match="does not exist"):
        engine.preset_path("missing.toml")
    with pytest.raises(ConfigError, match="no preset named 'nope'.*tts"):
        engine.preset_path("nope")
