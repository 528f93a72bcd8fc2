"""`anchorvoice serve` settings: configs/server.toml fills one typed ServeConfig; options override it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from anchorvoice.engine.cli.serve import add_parser
from anchorvoice.engine.cli.serve_config import ServeConfig, load_serve_config
from anchorvoice.engine.config import from_dict, load_toml
from anchorvoice.engine.engine import default_configs_dir
from anchorvoice.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--home")
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    return p.parse_args(["--home", "/tmp/av-home", "serve", *argv])


def test_defaults_come_from_configs_server_toml() -> None:
    s = load_serve_config(parse())
    assert isinstance(s, ServeConfig)
    assert s.server.host == "127.0.0.1" and s.server.port == 8765 and s.server.auth is True
    assert s.speech.output == "virtual" and s.controller.block_ms == 50
    assert s.controller.pace is False  # the device paces speech
    assert s.obs.enabled is False and s.vtube_studio.enabled is False
    assert s.obs.bridge.subtitle_source == "anchorvoice subtitles" and s.obs.connection.encoding == "json"
    assert s.obs.bridge.subtitle_style.font_size == 0 and s.obs.bridge.subtitle_style.width == 0.9


def test_shipped_file_is_exactly_the_typed_config() -> None:
    """Every key of configs/server.toml is a documented field (from_dict refuses the rest)."""
    data = load_toml(default_configs_dir() / "server.toml")
    assert set(data) == {"server", "controller", "speech", "obs", "vtube_studio", "store"}
    assert from_dict(ServeConfig, data).vtube_studio.mouth.parameter == "MouthOpen"


def test_options_override_and_enable_bridges() -> None:
    s = load_serve_config(parse("--port", "0", "--host", "::1", "--obs", "ws://10.0.0.2:4455", "--obs-password",
                                "pw", "--vtube-studio", "--speech-output", "none", "--voice", "anna"))
    assert s.controller.voice == "anna"
    assert (s.server.port, s.server.host, s.speech.output) == (0, "::1", "none")
    assert s.controller.pace is True  # nothing paces a null output: the controller keeps real time
    assert s.obs.enabled and s.obs.connection.url == "ws://10.0.0.2:4455" and s.obs.connection.password == "pw"
    assert s.vtube_studio.enabled and s.vtube_studio.mouth.token_file == Path("/tmp/av-home/vtube-studio-token")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[sever]\nport = 1\n", "unknown key 'sever'"),
        ("[server]\nport = 'x'\n", "expected an integer"),
        ("[obs.bridge]\nsubtitle = 'x'\n", "unknown key 'subtitle'"),
        ("[obs.connection]\nencoding = 'xml'\n", "'xml' is not allowed"),
        ("[speech]\ndevice = 'x'\n", "unknown key 'device'"),
        ("[obs.bridge.subtitle_style]\nfont_size = 'big'\n", "expected an integer"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "server.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as info:
        load_serve_config(parse("--config", str(path)))
    assert str(path) in str(info.value)
