"""Plugin manager with real entry points: good, broken and misbehaving third-party plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import PluginNotFoundError
from tests.engine import plugin_dists

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def third_party(tmp_path: Path):
    folder = plugin_dists.install(tmp_path / "site")
    sys.path.insert(0, str(folder))
    yield folder
    plugin_dists.uninstall(folder)


def test_builtin_plugins_load_without_failures(builtin_plugins: PluginManager) -> None:
    assert "espeak" in builtin_plugins.plugins
    assert builtin_plugins.plugins["espeak"].origin == "builtin"
    assert "base_voice:espeak" in builtin_plugins.plugins["espeak"].stages
    builtin_failures = [f for f in builtin_plugins.failures if f.origin == "builtin"]
    assert builtin_failures == [], builtin_failures


def test_broken_third_party_plugins_are_reported_and_the_rest_loads(third_party: Path) -> None:
    pm = PluginManager()
    pm.load_entry_points()
    failed = {f.name: f for f in pm.failures}
    assert "avtest_import_error" in failed
    assert "this_module_does_not_exist_anywhere" in failed["avtest_import_error"].error
    assert "avtest_bad_signature" in failed
    assert "extra_argument" in failed["avtest_bad_signature"].error
    assert failed["avtest_raises"].hook == "register_vocoders"
    assert "model folder missing" in failed["avtest_raises"].error
    assert "not a subclass" in failed["avtest_not_a_stage"].error
    # the good one and every built-in still work
    assert pm.get("effect", "test-invert").name == "test-invert"
    assert pm.plugins["avtest_good"].origin.startswith("avtest_good")
    assert "espeak" in pm.plugins


def test_allowlist_restricts_third_party_but_not_builtins(third_party: Path) -> None:
    pm = PluginManager()
    pm.load_entry_points(allow=["avtest_good"])
    assert "avtest_good" in pm.plugins
    assert not any(f.name.startswith("avtest_") for f in pm.failures)
    assert "espeak" in pm.plugins
    off = PluginManager()
    off.load_entry_points(third_party=False)
    assert "avtest_good" not in off.plugins


def test_unknown_stage_lists_installed(builtin_plugins: PluginManager) -> None:
    with pytest.raises(PluginNotFoundError, match="installed: .*espeak"):
        builtin_plugins.get("base_voice", "nope")


def test_register_and_unregister_in_code(builtin_plugins: PluginManager, third_party: Path) -> None:
    import avtest_good  # type: ignore[import-not-found]

    pm = PluginManager()
    assert pm.register(avtest_good, "inline")
    assert pm.names("effect") == ["test-invert"]
    pm.unregister("inline")
    assert pm.names("effect") == []


def test_cli_plugins_reports_failures(third_party: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(third_party), ANCHORVOICE_HOME=str(tmp_path / "home"))
    env.pop("ANCHORVOICE_PLUGINS", None)
    out = subprocess.run(
        [sys.executable, "-m", "anchorvoice.engine.cli.main", "--json", "plugins"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert out.returncode == 1, "a failed plugin must make `plugins` exit non-zero (scripts and CI check it)"
    data = json.loads(out.stdout)  # --json still prints the whole list
    assert {f["name"] for f in data["failures"]} >= {"avtest_import_error", "avtest_bad_signature"}
    assert any(p["name"] == "avtest_good" for p in data["plugins"])
    res = subprocess.run(
        [sys.executable, "-m", "anchorvoice.engine.cli.main", "plugins"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert res.returncode == 1
    assert "FAILED TO LOAD" in res.stdout and "avtest_raises" in res.stdout
    clean = subprocess.run(
        [sys.executable, "-m", "anchorvoice.engine.cli.main", "plugins"],
        capture_output=True, text=True, env=dict(env, ANCHORVOICE_PLUGINS="avtest_good"), cwd=REPO, timeout=120,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr


@pytest.mark.parametrize(("bf16", "native", "reduce", "says"), [
    (False, False, True, "unavailable: no AVX-512"),  # an AVX2-only desktop CPU
    (True, False, False, "emulated"),
    (True, True, False, "native"),
])
def test_cli_plugins_names_what_the_cpu_can_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    bf16: bool, native: bool, reduce: bool, says: str,
) -> None:
    from anchorvoice.engine.cli import plugins_cmd
    from anchorvoice.engine.cli.main import build_parser

    monkeypatch.setenv("ANCHORVOICE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANCHORVOICE_PLUGINS", "")
    monkeypatch.setattr(plugins_cmd, "bf16_kernels", lambda: bf16)
    monkeypatch.setattr(plugins_cmd, "native_bf16", lambda: native)
    monkeypatch.setattr(plugins_cmd, "int8_reduce_range", lambda: reduce)
    plugins_cmd.run_plugins(build_parser().parse_args(["plugins"]))
    out = capsys.readouterr().out
    assert f"CPU bfloat16: {says}" in out
    assert f"CPU int8 GPT activations: {7 if reduce else 8} bits" in out
