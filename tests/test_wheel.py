"""The wheel as a user installs it: `pip install anchorvoice-*.whl` (no -e), run from outside the checkout.

The wheel is built from this checkout and installed into a fresh virtual environment. Its dependencies are
taken from the development environment through a folder of links that leaves out anchorvoice's own
(editable) install, so that only the wheel's files can answer an ``import anchorvoice``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, asterisk_clip

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def _dependency_links(target: Path) -> Path:
    """Links to every entry of this environment's site-packages except anchorvoice's own install."""
    site = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if "anchorvoice" in name or name.startswith("__editable__") or entry.suffix == ".pth":
            continue
        (target / entry.name).symlink_to(entry)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
         cwd=dist)
    (found,) = dist.glob("anchorvoice-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin folder."""
    root = tmp_path_factory.mktemp("wheel-venv")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    deps = _dependency_links(root / "deps")
    python = env_dir / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout
    (Path(purelib.strip()) / "deps.pth").write_text(str(deps) + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=root)
    return env_dir / "bin"


def test_wheel_holds_one_package_and_the_presets(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"anchorvoice"}, f"top-level names in the wheel: {sorted(tops)}"
    presets = {Path(n).name for n in names if n.startswith("anchorvoice/configs/")}
    assert {"tts.toml", "vc.toml", "demo.toml", "server.toml"} <= presets
    for needed in ("anchorvoice/engine/stages.py", "anchorvoice/plugins/gsv/plugin.py", "anchorvoice/errors.py",
                   "anchorvoice/plugins/text_common/symbols_v2.json", "anchorvoice/py.typed",
                   "anchorvoice/plugins/text_en/lexicon_gsv.txt.gz", "anchorvoice/plugins/text_en/LEXICON_NOTICE.md",
                   "anchorvoice/plugins/text_en/homographs.txt", "anchorvoice/plugins/text_en/g2p_en_checkpoint20.npz",
                   "anchorvoice/plugins/text_en/G2P_EN_LICENSE.txt"):
        assert needed in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "anchorvoice = anchorvoice.engine.cli.main:main" in entry_points
    assert "dsp = anchorvoice.plugins.dsp.plugin" in entry_points


def test_installed_wheel_speaks_from_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "tts").mkdir()  # a folder named like a preset must not shadow it
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(ANCHORVOICE_HOME=str(tmp_path / "home"), ANCHORVOICE_PLUGINS="")
    python, cli = str(installed / "python"), str(installed / "anchorvoice")

    where = _run([python, "-c", "import anchorvoice.engine, sys; print(anchorvoice.engine.__file__)"], work, env).stdout
    assert str(REPO) not in where and "site-packages" in where
    for name in ("engine", "plugins", "streaming", "obs_bridge"):
        res = _run([python, "-c", f"import {name}"], work, env, check=False)
        assert res.returncode != 0, f"the wheel installed a top-level package {name!r}"

    plugins = json.loads(_run([cli, "--json", "plugins"], work, env).stdout)
    assert not plugins["failures"], plugins["failures"]
    names = {p["name"] for p in plugins["plugins"]}
    assert {"dsp", "espeak", "gpt-sovits", "effects"} <= names

    _run([cli, "voices", "add", "anna", "--ref", str(asterisk_clip("demo-congrats"))], work, env)
    res = json.loads(_run([cli, "--json", "speak", "Good evening, chat.", "--voice", "anna", "-o", "hello.wav"],
                          work, env).stdout)
    assert (work / "hello.wav").stat().st_size > 10_000, res
    _run([cli, "speak", "Good evening again.", "--voice", "anna", "--preset", "tts", "-o", "again.wav"], work, env)
    assert (work / "again.wav").is_file()
