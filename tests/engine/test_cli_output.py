"""CLI output flags and readable output: `--json` and `-q` before or after any command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anchorvoice.engine.cli.main import _subparsers, build_parser
from tests.conftest import asterisk_clip
from tests.engine.test_cli import cli


def test_every_command_accepts_json_and_quiet_after_it() -> None:
    parser = build_parser()
    children = _subparsers(parser)
    assert len(children) >= 10
    for child in children:
        assert {"--json", "-q", "--quiet"} <= set(child._option_string_actions), child.prog


@pytest.mark.parametrize("argv", [
    ["--json", "voices", "list"], ["voices", "list", "--json"], ["plugins", "--json"], ["devices", "--json"],
    ["voices", "show", "x", "--json"], ["speak", "hi", "--voice", "a", "--json"],
])
def test_json_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).json is True


def test_without_json_it_is_off() -> None:
    args = build_parser().parse_args(["voices", "list"])
    assert args.json is False and args.quiet is False
    assert build_parser().parse_args(["voices", "list", "-q"]).quiet is True


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("home")
    cli("voices", "add", "anna", "--ref", str(asterisk_clip("demo-congrats")), home=h)
    return h


def test_voices_list_json_has_no_arrays(home: Path) -> None:
    out = cli("voices", "list", "--json", home=home).stdout
    (voice,) = json.loads(out)
    assert voice["name"] == "anna" and voice["analysis"] == ["dsp", "gsv-vc"]
    assert out.count(",") < 40, "the list must not carry the analysis arrays"


def test_voices_show_is_readable(home: Path) -> None:
    text = cli("voices", "show", "anna", home=home).stdout
    assert "median_f0_hz" in text and " Hz" in text
    assert "257 values" in text  # the envelope summarised, not printed
    assert max(len(line) for line in text.splitlines()) < 120
    full = json.loads(cli("voices", "show", "anna", "--json", home=home).stdout)
    assert len(full["analysis"]["dsp"]["mean_envelope_db"]) == 257  # scripts still get everything


def test_out_is_a_file_and_output_a_device_in_every_command() -> None:
    """`-o/--out` names a file (a folder for demo) and `--output` a device, whatever the command."""
    for child in _subparsers(build_parser()):
        actions = child._option_string_actions
        if "--output" in actions:
            assert "-o" not in actions["--output"].option_strings, child.prog
            assert "DEVICE" in (actions["--output"].metavar or "") or "device" in (actions["--output"].help or ""), \
                child.prog
        if "-o" in actions:
            assert "--out" in actions["-o"].option_strings, child.prog
