"""Fixtures of the training tests: the reference checkpoints and a small real-speech dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.conftest import require_reference_dir
from tests.gsv.training.datasets import make_dataset


@pytest.fixture
def gsv_reference() -> Path:
    return require_reference_dir()


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 utterances of real speech (1.5 s each) made with the fixture SoVITS as base (read-only: copy to change)."""
    ref = require_reference_dir()
    return make_dataset(tmp_path_factory.mktemp("ds") / "mira", ref / "s2_v2_small.pth", n=4, seconds=1.5)
