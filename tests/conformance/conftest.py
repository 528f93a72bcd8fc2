"""GPT-SoVITS reference fixtures (``shared/gsv_reference``): manifest cases as pytest params.

The fixture folder is ``$ANCHORVOICE_GSV_REFERENCE`` or ``<repo>/../shared/gsv_reference``; tests
skip with the reason when it is absent. Two ways to get one test per manifest case (test id = the
case name):

* mark a test module ``pytestmark = pytest.mark.gsv_kind("rvq")`` (several kinds allowed) and take
  a ``gsv_case`` argument: :func:`pytest_generate_tests` parametrizes it;
* or ``@pytest.mark.parametrize("case", case_params("sovits_decode"))`` with
  ``from tests.conformance.conftest import case_params``.

A :class:`Case` resolves ``"cases/<file>.npz:<array>"`` references (``case.input("wav")``,
``case.expected("codes")``) and compares with the manifest tolerance (``case.check(name, got)``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ENV_VAR = "ANCHORVOICE_GSV_REFERENCE"


def reference_dir() -> Path | None:
    """The fixture folder, or None if it (or its manifest) is missing."""
    env = os.environ.get(ENV_VAR)
    d = Path(env) if env else (REPO / ".." / "shared" / "gsv_reference").resolve()
    return d if (d / "manifest.json").is_file() else None


def _missing_reason() -> str:
    return (
        f"GPT-SoVITS reference fixtures not found (set {ENV_VAR} to the gsv_reference folder, "
        f"default {REPO.parent / 'shared' / 'gsv_reference'})"
    )


@dataclass
class Case:
    """One manifest entry bound to its folder."""

    root: Path
    raw: dict[str, Any]
    _npz: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    @property
    def kind(self) -> str:
        return str(self.raw["kind"])

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint file or folder, or None."""
        ck = self.raw.get("checkpoint")
        return self.root / ck if ck else None

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.raw.get("params") or {})

    def array(self, ref: str) -> np.ndarray:
        """Resolve ``"cases/<file>.npz:<array>"``."""
        file, _, key = ref.partition(":")
        if file not in self._npz:
            self._npz[file] = np.load(self.root / file)
        return np.asarray(self._npz[file][key])

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, str) and ".npz:" in value:
            return self.array(value)
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value

    def input(self, name: str) -> Any:
        """An input: array, list of arrays, or literal (e.g. ``noise_scale``)."""
        return self._resolve(self.raw["inputs"][name])

    def expected(self, name: str) -> np.ndarray:
        """An expected final array, or an intermediate of that name."""
        refs = {**self.raw.get("intermediates", {}), **self.raw["expected"]}
        return self.array(refs[name])

    @property
    def expected_names(self) -> list[str]:
        return list(self.raw["expected"])

    def tolerance(self, name: str) -> float | None:
        """None for ``exact``, else the absolute tolerance."""
        tol = str(self.raw["tolerance"][name])
        if tol == "exact":
            return None
        kind, _, value = tol.partition(" ")
        assert kind == "atol", f"unknown tolerance {tol!r} in manifest case {self.name}"
        return float(value)

    def check(self, name: str, got: Any) -> None:
        """Assert ``got`` matches the expected/intermediate array ``name`` within the manifest tolerance."""
        exp = self.expected(name)
        arr = got.detach().cpu().numpy() if hasattr(got, "detach") else np.asarray(got)
        assert arr.shape == exp.shape, f"{self.name}/{name}: shape {arr.shape}, expected {exp.shape}"
        tol = self.tolerance(name)
        if tol is None:
            mism = int(np.count_nonzero(arr != exp))
            assert mism == 0, f"{self.name}/{name}: {mism} of {exp.size} values differ (exact match required)"
        else:
            err = float(np.max(np.abs(arr.astype(np.float64) - exp))) if exp.size else 0.0
            assert err <= tol, f"{self.name}/{name}: max abs error {err:.3g} > atol {tol:g}"


def load_manifest(root: Path | None = None) -> list[Case]:
    """Every case of the manifest (empty list if the fixtures are absent)."""
    root = root or reference_dir()
    if root is None:
        return []
    raw = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    return [Case(root, entry) for entry in raw]


def case_params(*kinds: str) -> list[Any]:
    """One ``pytest.param`` per manifest case of the given kinds (id = case name); a skip if absent."""
    if reference_dir() is None:
        return [pytest.param(None, id="no-fixtures", marks=pytest.mark.skip(reason=_missing_reason()))]
    found = [c for c in load_manifest() if c.kind in kinds]
    if not found:
        return [pytest.param(None, id="no-cases", marks=pytest.mark.skip(reason=f"no manifest case of {kinds}"))]
    return [pytest.param(c, id=c.name) for c in found]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gsv_kind(*kinds): parametrize `gsv_case` with manifest cases of these kinds")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gsv_case" not in metafunc.fixturenames:
        return
    kinds = [k for m in metafunc.definition.iter_markers("gsv_kind") for k in m.args]
    if not kinds:
        raise pytest.UsageError(f"{metafunc.function.__name__} takes gsv_case but has no gsv_kind marker")
    metafunc.parametrize("gsv_case", case_params(*kinds))


def require_reference_dir() -> Path:
    """The fixture folder; skips the calling test (with where to put it) when it is absent."""
    d = reference_dir()
    if d is None:
        pytest.skip(_missing_reason())
    return d


@pytest.fixture
def gsv_reference() -> Path:
    """The fixture folder (skips the test when absent)."""
    return require_reference_dir()
