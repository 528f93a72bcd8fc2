"""`voices add` with GPT-SoVITS files: checked safely at add time, mismatches refused with sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.model_check import check_voice_models
from anchorvoice.errors import CheckpointError
from tests.conformance.conftest import require_reference_dir


@pytest.fixture(scope="module")
def gsv() -> Path:
    return require_reference_dir()


def _v1_gpt(path: Path) -> Path:
    """An s1 file in the official layout whose phoneme vocabulary is v1's 512."""
    weight = {"model.ar_text_embedding.word_embeddings.weight": torch.zeros(512, 8, dtype=torch.float16)}
    torch.save({"weight": weight, "config": {"model": {"phoneme_vocab_size": 512}}, "info": "GPT-e1"}, path)
    return path


def test_fixture_pair_is_accepted(gsv: Path) -> None:
    versions = check_voice_models(
        None, {"sovits": gsv / "s2_v2_small.pth", "gpt": gsv / "s1_v2_small.ckpt", "hubert": gsv / "hubert_small"}
    )
    assert versions == {"sovits": "v2", "gpt": "v2", "hubert": "hubert"}


def test_mismatched_phoneme_vocab_names_both_sizes(gsv: Path, tmp_path: Path) -> None:
    gpt = _v1_gpt(tmp_path / "v1.ckpt")
    models = {"sovits": gsv / "s2_v2_small.pth", "gpt": gpt, "hubert": gsv / "hubert_small"}
    with pytest.raises(CheckpointError, match=r"vocabulary of 512 .* has 732 rows"):
        check_voice_models(None, models)


def test_sovits_without_hubert_is_refused(gsv: Path) -> None:
    with pytest.raises(CheckpointError, match="--hubert"):
        check_voice_models(None, {"sovits": gsv / "s2_v2_small.pth"})


def test_cli_add_neural_voice(gsv: Path, tmp_path: Path) -> None:
    from tests.engine.test_cli import cli

    ref = tmp_path / "ref.wav"
    sf.write(str(ref), speech_like_signal(32000, 4.0).samples, 32000)
    home = tmp_path / "home"
    cli("voices", "add", "alice", "--ref", str(ref), "--ref-text", "hello there", "--sovits",
        str(gsv / "s2_v2_small.pth"), "--gpt", str(gsv / "s1_v2_small.ckpt"), "--hubert", str(gsv / "hubert_small"),
        home=home)
    out = cli("voices", "show", "alice", home=home).stdout
    assert "gpt-sovits" in out
    bad = cli("voices", "add", "bob", "--ref", str(ref), "--sovits", str(gsv / "s2_v2_small.pth"), "--gpt",
              str(_v1_gpt(tmp_path / "v1.ckpt")), "--hubert", str(gsv / "hubert_small"), home=home, check=False)
    assert bad.returncode == 2 and "512" in bad.stderr and "732" in bad.stderr
    assert np.all([p.name != "bob" for p in (home / "voices").iterdir()])
