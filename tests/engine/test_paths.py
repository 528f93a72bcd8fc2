"""One user-data folder for the CLI, the access token and the VTube Studio token, on every platform."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from anchorvoice.engine.cli.common import home_of
from anchorvoice.engine.paths import user_data_dir
from anchorvoice.engine.server.auth import token_path


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("ANCHORVOICE_HOME", "XDG_DATA_HOME", "APPDATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(("platform", "env", "expected"), [
    ("linux", {}, ".local/share/anchorvoice"),
    ("linux", {"XDG_DATA_HOME": "{home}/xdg"}, "xdg/anchorvoice"),
    ("freebsd14", {}, ".local/share/anchorvoice"),
    ("darwin", {}, "Library/Application Support/anchorvoice"),
    ("darwin", {"XDG_DATA_HOME": "{home}/xdg"}, "Library/Application Support/anchorvoice"),
    ("win32", {}, "AppData/Roaming/anchorvoice"),
    ("win32", {"APPDATA": "{home}/Roaming2"}, "Roaming2/anchorvoice"),
    ("win32", {"ANCHORVOICE_HOME": "{home}/mine"}, "mine"),
    ("darwin", {"ANCHORVOICE_HOME": "{home}/mine"}, "mine"),
])
def test_user_data_dir_per_platform(monkeypatch: pytest.MonkeyPatch, home: Path, platform: str,
                                    env: dict[str, str], expected: str) -> None:
    monkeypatch.setattr("sys.platform", platform)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(home=home))
    assert user_data_dir() == home / expected


def test_cli_home_and_server_token_agree(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """The CLI's voices and the server's token live in the same folder (they disagreed on macOS/Windows)."""
    monkeypatch.setattr("sys.platform", "darwin")
    folder = home / "Library" / "Application Support" / "anchorvoice"
    assert home_of(argparse.Namespace(home=None)) == folder
    assert token_path() == folder / "control-token"
    monkeypatch.setenv("ANCHORVOICE_HOME", str(home / "elsewhere"))  # read at call time
    assert token_path() == home / "elsewhere" / "control-token"
    assert home_of(argparse.Namespace(home=str(home / "flag"))) == home / "flag"
