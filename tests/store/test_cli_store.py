"""`anchorvoice voices history|use|rollback|gc|verify` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from anchorvoice.audio_io import speech_like_signal
from tests.engine.test_cli import cli


@pytest.mark.slow
def test_versions_and_store_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    clip = tmp_path / "a.wav"
    sf.write(str(clip), speech_like_signal(22050, 2.0, f0=180.0).samples, 22050)
    cli("voices", "add", "mira", "--ref", str(clip), "--ref-text", "one", home=home)
    refused = cli("voices", "add", "mira", "--ref", str(clip), home=home, check=False)
    assert refused.returncode != 0 and "--replace" in refused.stderr
    cli("voices", "add", "mira", "--ref", str(clip), "--ref-text", "two", "--replace", home=home)
    rows = json.loads(cli("--json", "voices", "history", "mira", home=home).stdout)
    assert [(r["version"], r["in_use"]) for r in rows] == [(1, False), (2, True)]
    assert rows[1]["change"] == "changed reference text"
    cli("voices", "use", "mira@1", home=home)
    assert json.loads(cli("--json", "voices", "show", "mira", home=home).stdout)["ref_text"] == "one"
    out = cli("voices", "rollback", "mira", "5", home=home, check=False)
    assert out.returncode != 0 and "no version 5" in out.stderr
    assert "version 3" in cli("voices", "rollback", "mira", "2", home=home).stdout
    assert json.loads(cli("--json", "voices", "verify", home=home).stdout)["ok"] is True
    assert json.loads(cli("--json", "voices", "gc", home=home).stdout)["blobs"] == []
    archive = tmp_path / "mira.avoice"
    cli("voices", "export", "mira", "-o", str(archive), home=home)
    other = tmp_path / "other"
    assert "imported voice 'mira'" in cli("voices", "import", str(archive), home=other).stdout
    shown = json.loads(cli("--json", "voices", "show", "mira", home=other).stdout)
    assert shown["ref_text"] == "two" and shown["version"] == 1
