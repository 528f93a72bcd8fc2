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
    # Piper (a core dependency) is the nearest base voice for a human voice: tiers cost two octaves.
    assert {r["stage"] for r in res["stages"]} >= {"base_voice:piper", "converter:dsp"}
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


def test_live_converts_a_speech_file_into_an_output_file_without_a_sound_card(home: Path, tmp_path: Path) -> None:
    """`live --input clip --output out.wav`: the real runner, converter and effects, paced in real time by
    the file devices; the file holds converted speech as long as the run."""
    clip = asterisk_clip("agent-pass")  # 3.3 s of speech
    out = tmp_path / "live.wav"
    res = cli("--json", "live", "--voice", "anna", "--input", str(clip), "--output", str(out), "--duration", "1.5",
              home=home)
    summary = json.loads(res.stdout)
    assert 1.4 <= summary["seconds"] <= 2.5  # real-time pace, stopped by --duration before the file's end
    assert summary["blocks"] >= 140 and summary["underruns"] == 0 and summary["errors"] == 0
    assert summary["degraded"] is False and summary["input"] == str(clip) and summary["output"] == str(out)
    # The live threads' scheduling and the jitter buffer are reported (issue 17): real time, or why not.
    assert summary["jitter_buffer_ms"] == 20.0 and summary["jitter_peak_ms"] == 20.0
    assert summary["audio_priority"].startswith(("SCHED_FIFO", "SCHED_RR", "normal"))
    assert summary["audio_priority"].startswith("SCHED") or "limits.d" in summary["priority_note"]
    got = read_audio(out)
    assert got.sample_rate == 48000
    assert abs(got.duration - summary["seconds"]) < 0.3
    dry = read_audio(clip, 48000).samples[: len(got.samples)]
    wet = got.samples[: len(dry)]
    assert np.sqrt(np.mean(wet**2)) > 0.02  # speech came through
    # Converted, not the dry input: no delay makes the output a copy of the input.
    corr = max(abs(float(np.dot(dry[: len(dry) - lag], wet[lag:])))
               / (np.linalg.norm(dry[: len(dry) - lag]) * np.linalg.norm(wet[lag:]) + 1e-9)
               for lag in range(0, 4800, 48))
    assert corr < 0.9
    # The speaker's pitch heard in this run is kept for the first words of the next one.
    memory = json.loads((home / "live_input_memory.json").read_text(encoding="utf-8"))
    assert 150 < sorted(memory["dsp"])[len(memory["dsp"]) // 2] < 260  # the prompts' female voice


def test_live_plays_an_input_file_to_its_end(home: Path, tmp_path: Path) -> None:
    clip = asterisk_clip("beep")
    res = cli("--json", "live", "--voice", "anna", "--input", str(clip), "--output", "null", home=home)
    summary = json.loads(res.stdout)
    assert summary["output"] == "null" and summary["underruns"] == 0
    assert read_audio(clip).duration - 0.4 <= summary["seconds"] <= read_audio(clip).duration + 1.0
