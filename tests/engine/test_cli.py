"""The `anchorvoice` CLI end to end (real processes, real espeak-ng, real human speech)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.audio_io import read_audio
from tests.conftest import REPO, asterisk_clip


def cli(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANCHORVOICE_HOME=str(home), ANCHORVOICE_PLUGINS="")
    out = subprocess.run(
        [sys.executable, "-m", "anchorvoice.engine.cli.main", *args], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=300,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"anchorvoice {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library with one voice made from real human speech."""
    h = tmp_path_factory.mktemp("home")
    ref = asterisk_clip("demo-congrats")
    cli("voices", "add", "anna", "--ref", str(ref), home=h)
    return h


def test_voices_list_show_json(home: Path) -> None:
    data = json.loads(cli("--json", "voices", "list", home=home).stdout)
    assert [v["name"] for v in data] == ["anna"]
    shown = json.loads(cli("--json", "voices", "show", "anna", home=home).stdout)
    assert shown["kind"].startswith("embedded") and "dsp" in shown["analysis"]


def test_speak_and_convert_write_files(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.wav"
    res = json.loads(cli("--json", "speak", "Good evening, chat.", "--voice", "anna", "-o", str(out), home=home).stdout)
    assert out.exists() and res["seconds"] > 0.5
    assert {r["stage"] for r in res["stages"]} >= {"base_voice:espeak", "converter:dsp"}
    audio = read_audio(out)
    assert audio.sample_rate == 48000 and np.sqrt(np.mean(audio.samples**2)) > 0.01
    conv_out = tmp_path / "c.wav"
    cli("convert", str(asterisk_clip("hello-world")), "--voice", "anna", "-o", str(conv_out), home=home)
    assert read_audio(conv_out).duration > 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["speak", "   ", "--voice", "anna"], "text is empty"),
        (["speak", "hi", "--voice", "nobody"], "Unable to find voice 'nobody'"),
        (["speak", "hi", "--voice", "anna", "--lang", "tlh"], "it speaks: "),
        (["convert", "/nonexistent/x.wav", "--voice", "anna"], "not found"),
        (["convert", str(REPO / "pyproject.toml"), "--voice", "anna"], "cannot read"),
        (["speak", "hi", "--voice", "anna", "--preset", "nope"], "no preset named 'nope'"),
    ],
)
def test_bad_input_exits_nonzero_with_a_message(home: Path, args: list[str], message: str) -> None:
    res = cli(*args, home=home, check=False)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_reference_refused(tmp_path: Path) -> None:
    res = cli("voices", "add", "x", "--ref", str(REPO / "Makefile"), home=tmp_path, check=False)
    assert res.returncode == 2 and "cannot read" in res.stderr


def test_bad_preset_names_file_key_and_allowed(home: Path, tmp_path: Path) -> None:
    preset = tmp_path / "bad.toml"
    preset.write_text('[pipeline]\nname="b"\nmode="tts"\n[slots.base_voice]\nplugin="espek"\n')
    res = cli("speak", "hi", "--voice", "anna", "--preset", str(preset), home=home, check=False)
    assert res.returncode == 2
    assert "bad.toml" in res.stderr and "slots.base_voice.plugin" in res.stderr and "espeak" in res.stderr
