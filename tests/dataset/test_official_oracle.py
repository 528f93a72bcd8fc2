"""Conformance: the files ``dataset make`` writes equal what the official prepare scripts write.

The expected files were written by the official ``tools/slice_audio.py``, ``prepare_datasets/1-get-text.py``,
``2-get-hubert-wav32k.py`` and ``3-get-semantic.py`` on the same recordings with the fixture SoVITS and a
768-wide HuBERT derived from the fixture one (``tests/fixtures/make_dataset_oracle.py`` documents how,
and regenerates them for another fixture set; ``ANCHORVOICE_DATASET_ORACLE`` may point at such an output
folder). Tokens and text exactly, HuBERT features within 1e-4, audio within one 16-bit step.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from anchorvoice.engine.dataset.builder import MakeConfig, make_dataset
from anchorvoice.engine.dataset.quality import QualityConfig
from anchorvoice.engine.plugins import PluginManager
from tests.conformance.conftest import ENV_VAR, reference_dir

ORACLE = Path(os.environ.get("ANCHORVOICE_DATASET_ORACLE") or Path(__file__).parents[1] / "fixtures" / "dataset_oracle")
FEATURE_ATOL = 1e-4


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, builtin_plugins: PluginManager) -> tuple[Path, Path]:
    """(our dataset folder, the official files), made once for the module."""
    ref = reference_dir()
    if ref is None:
        pytest.skip(f"GPT-SoVITS reference fixtures not found (set {ENV_VAR})")
    info: dict[str, Any] = json.loads((ORACLE / "oracle.json").read_text(encoding="utf-8"))
    manifest_sha = hashlib.sha256((ref / "manifest.json").read_bytes()).hexdigest()
    assert info["fixture_manifest_sha256"] == manifest_sha, (
        f"{ORACLE} was made from another fixture set than {ref}: regenerate it with "
        "`python tests/fixtures/make_dataset_oracle.py <fixture folder> <output folder>` and point "
        "ANCHORVOICE_DATASET_ORACLE at the output folder"
    )
    cfg = MakeConfig(
        "oracle", ORACLE / "input" / "audio", ORACLE / "input" / "transcripts.list", language="en",
        models={"hubert": ORACLE / "hubert", "sovits": ref / "s2_v2_small.pth"},
        # our reject checks have no official counterpart; the synthetic clips' syllable envelope
        # (deep dips between "syllables") reads as ~6 dB SNR, so that check is off here
        quality=QualityConfig(min_snr_db=0.0),
    )
    home = tmp_path_factory.mktemp("home")
    out = Path(make_dataset(home, cfg, builtin_plugins)["path"])
    return out, ORACLE / "expected"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _pcm(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="int16")
    assert rate == 32000
    return data.astype(np.int32)


@pytest.mark.slow
def test_clips_are_the_official_slicer_files(made: tuple[Path, Path]) -> None:
    ours, _ = made
    want = json.loads((ORACLE / "oracle.json").read_text(encoding="utf-8"))["official_clips"]
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((ours / "clips").iterdir())}
    assert got == want


@pytest.mark.slow
def test_name2text_is_the_official_file(made: tuple[Path, Path]) -> None:
    ours, official = made
    assert (ours / "2-name2text.txt").read_bytes() == (official / "2-name2text.txt").read_bytes()


@pytest.mark.slow
def test_cnhubert_features_match(made: tuple[Path, Path]) -> None:
    ours, official = made
    names = _names(official / "4-cnhubert")
    assert _names(ours / "4-cnhubert") == names and names
    for name in names:
        got = torch.load(ours / "4-cnhubert" / name, map_location="cpu", weights_only=True)
        want = torch.load(official / "4-cnhubert" / name, map_location="cpu", weights_only=True)
        assert got.dtype == want.dtype and got.shape == want.shape, (name, got.shape, want.shape)
        diff = float((got.detach() - want.detach()).abs().max())
        assert diff <= FEATURE_ATOL, f"{name}: max abs diff {diff:.2e}"


@pytest.mark.slow
def test_wav32k_matches(made: tuple[Path, Path]) -> None:
    ours, official = made
    names = _names(official / "5-wav32k")
    assert _names(ours / "5-wav32k") == names and names
    for name in names:
        a, b = _pcm(ours / "5-wav32k" / name), _pcm(official / "5-wav32k" / name)
        assert a.shape == b.shape and int(np.abs(a - b).max()) <= 1, name


@pytest.mark.slow
def test_name2semantic_is_the_official_file(made: tuple[Path, Path]) -> None:
    ours, official = made
    assert (ours / "6-name2semantic.tsv").read_bytes() == (official / "6-name2semantic.tsv").read_bytes()
