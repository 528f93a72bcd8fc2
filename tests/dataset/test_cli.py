"""`anchorvoice dataset make|show` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.dataset.helpers import list_file, recordings

NAMES = ["demo-thanks", "agent-pass"]


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anchorvoice.engine.cli.main", "--home", str(home), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=240)


def test_make_then_show(tmp_path: Path) -> None:
    rec = recordings(tmp_path / "rec", NAMES)
    (rec / "cover.jpg").write_bytes(b"\xff\xd8\xff not audio")
    lst = list_file(tmp_path / "t.list", NAMES)
    home = tmp_path / "home"
    made = _cli("dataset", "make", "mira", "--audio", str(rec), "--transcripts", str(lst), home=home)
    assert made.returncode == 0, made.stderr
    assert "slice: 2/2" in made.stderr and "gsv-text: 2/2" in made.stderr
    assert "clips: 2 from 2 recordings" in made.stdout and "cover.jpg" in made.stdout
    assert "warning: only 8.8 s of usable speech" in made.stdout
    shown = _cli("dataset", "show", "mira", "--json", home=home)
    info = json.loads(shown.stdout)
    assert info["clips"] == 2 and info["transcribed"] == 2 and info["steps"]["gsv-text"]["clips"] == 2


def test_show_unknown_dataset_names_the_fix(tmp_path: Path) -> None:
    out = _cli("dataset", "show", "nope", home=tmp_path / "home")
    assert out.returncode == 2 and "no dataset named 'nope'" in out.stderr and "dataset make" in out.stderr


def test_sovits_without_hubert_is_refused(tmp_path: Path) -> None:
    rec = recordings(tmp_path / "rec", NAMES)
    out = _cli("dataset", "make", "mira", "--audio", str(rec), "--sovits", "x.pth", home=tmp_path / "home")
    assert out.returncode == 2 and "--sovits needs --hubert" in out.stderr
