"""The README's command lines work as written, where they need no sound device, server or model files.

Every `anchorvoice ...` line of the README's shell blocks runs in a fresh folder with a fresh user home;
placeholder input clips (`my_voice.wav`, `recording.wav`, ...) are replaced by real human speech. Lines
that need what CI lacks (a microphone or speakers, the virtual microphone, GPT-SoVITS weights, a running
server or OBS) are listed by the reason they are skipped, so a new README line runs unless it says why not.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from anchorvoice.audio_io import read_audio
from tests.conftest import REPO, asterisk_clip

pytestmark = pytest.mark.slow

NEEDS = {
    "a sound device": re.compile(r"\b(devices|virtual-mic)\b|--play\b|--output virtual|--input usb|--monitor"),
    "GPT-SoVITS weights": re.compile(r"--gpt|--sovits|--voice alice"),
    "a long-running server": re.compile(r"^anchorvoice serve\b"),
    "a dataset and pretrained weights (tests/gsv/training)": re.compile(r"^anchorvoice train\b|anchorvoice\.train\b"),
    "its own test (tests/engine/test_demo.py)": re.compile(r"^anchorvoice demo\b"),
    "recordings of your own (tests/dataset/test_cli.py)": re.compile(r"^anchorvoice dataset\b"),
    "the store example's voices (`mira`, a GPT-SoVITS voice; clusters of many voices; tests/store)":
        re.compile(r"\bmira\b|voices cluster"),
}
INPUT_FLAGS = ("--ref", "--input")


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            text = line.split("  #")[0].split(" # ")[0]
            text = re.sub(r"\s\[[^\]]*\]", "", text)  # `[--option]`: optional, left out
            for command in (c.strip() for c in text.split(" ; ")):
                if command.startswith("anchorvoice "):
                    lines.append(command)
    return lines


def runnable() -> list[str]:
    return [c for c in readme_commands() if not any(p.search(c) for p in NEEDS.values())]


def test_the_readme_shows_commands_that_run_here() -> None:
    assert len(runnable()) >= 6, runnable()


def _real_inputs(argv: list[str], work: Path) -> list[str]:
    """Placeholder clips become real speech (WAV written from Debian's asterisk prompts)."""
    out = []
    for i, arg in enumerate(argv):
        is_input = arg.endswith(".wav") and i > 0 and argv[i - 1] in (*INPUT_FLAGS, "convert")
        if is_input and not (work / arg).exists():
            clip = read_audio(asterisk_clip("demo-congrats"))
            sf.write(str(work / arg), clip.samples, clip.sample_rate)
        out.append(arg)
    return out


def test_readme_commands_run(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, ANCHORVOICE_HOME=str(tmp_path / "home"), ANCHORVOICE_PLUGINS="")
    cli = str(Path(sys.executable).with_name("anchorvoice"))
    for command in runnable():
        argv = _real_inputs(shlex.split(command), work)
        res = subprocess.run([cli, *argv[1:]], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"README line failed: {command}\n{res.stdout}\n{res.stderr}"
        for flag in ("-o", "--out"):
            if flag in argv:
                target = work / argv[argv.index(flag) + 1]
                assert target.exists() and target.stat().st_size > 1000, command
