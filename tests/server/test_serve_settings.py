"""`anchorvoice serve` settings: configs/server.toml fills typed configs; options override it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from anchorvoice.engine.cli.serve import add_parser, load_settings
from anchorvoice.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--home")
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    return p.parse_args(["--home", "/tmp/av-home", "serve", *argv])


def test_defaults_come_from_configs_server_toml() -> None:
    s = load_settings(parse())
    assert s["server"].host == "127.0.0.1" and s["server"].port == 8765 and s["server"].auth is True
    assert s["speech"].output == "virtual" and s["controller"].block_ms == 50
    assert s["obs"] is None and s["vtube"] is None
    assert s["bridge"].subtitle_source == "anchorvoice subtitles"


def test_options_override_and_enable_bridges() -> None:
    s = load_settings(parse("--port", "0", "--host", "::1", "--obs", "ws://10.0.0.2:4455", "--obs-password", "pw",
                            "--vtube-studio", "--speech-output", "none", "--voice", "anna"))
    assert s["controller"].voice == "anna"
    assert (s["server"].port, s["server"].host, s["speech"].output) == (0, "::1", "none")
    assert s["obs"].url == "ws://10.0.0.2:4455" and s["obs"].password == "pw"
    assert s["vtube"].token_file == Path("/tmp/av-home/vtube-studio-token")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[sever]\nport = 1\n", r"unknown table \[sever\]"),
        ("[server]\nport = 'x'\n", "expected an integer"),
        ("[obs]\nsubtitle = 'x'\n", "unknown key 'subtitle'"),
        ("[obs]\nencoding = 'xml'\n", "'xml' is not allowed"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "server.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(parse("--config", str(path)))
    assert str(path) in str(info.value)
