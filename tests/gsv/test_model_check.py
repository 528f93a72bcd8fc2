"""`voices add` with GPT-SoVITS files: the gsv plugin checks clips and files at add time (hook ``check_voice``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.engine import Engine
from anchorvoice.errors import CheckpointError, ReferenceAudioError
from anchorvoice.plugins.gsv.model_check import check_voice_models
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
        {"sovits": gsv / "s2_v2_small.pth", "gpt": gsv / "s1_v2_small.ckpt", "hubert": gsv / "hubert_small"}
    )
    assert versions == {"sovits": "v2", "gpt": "v2", "hubert": "hubert"}


def test_mismatched_phoneme_vocab_names_both_sizes(gsv: Path, tmp_path: Path) -> None:
    gpt = _v1_gpt(tmp_path / "v1.ckpt")
    models = {"sovits": gsv / "s2_v2_small.pth", "gpt": gpt, "hubert": gsv / "hubert_small"}
    with pytest.raises(CheckpointError, match=r"vocabulary of 512 .* has 732 rows"):
        check_voice_models(models)


def test_sovits_without_hubert_is_refused(gsv: Path) -> None:
    with pytest.raises(CheckpointError, match="--hubert"):
        check_voice_models({"sovits": gsv / "s2_v2_small.pth"})


def test_cli_add_neural_voice(gsv: Path, tmp_path: Path) -> None:
    from tests.engine.test_cli import cli

    ref = tmp_path / "ref.wav"
    sf.write(str(ref), speech_like_signal(32000, 4.0).samples, 32000)
    home = tmp_path / "home"
    cli("voices", "add", "alice", "--ref", str(ref), "--ref-text", "hello there", "--sovits",
        str(gsv / "s2_v2_small.pth"), "--gpt", str(gsv / "s1_v2_small.ckpt"), "--hubert", str(gsv / "hubert_small"),
        home=home)
    out = cli("voices", "show", "alice", home=home).stdout
    assert "neural (gpt, hubert, sovits)" in out
    bad = cli("voices", "add", "bob", "--ref", str(ref), "--sovits", str(gsv / "s2_v2_small.pth"), "--gpt",
              str(_v1_gpt(tmp_path / "v1.ckpt")), "--hubert", str(gsv / "hubert_small"), home=home, check=False)
    assert bad.returncode == 2 and "512" in bad.stderr and "732" in bad.stderr
    assert np.all([p.name != "bob" for p in (home / "voices").iterdir()])


def _clip(path: Path, seconds: float) -> Path:
    sf.write(str(path), speech_like_signal(22050, seconds).samples, 22050)
    return path


def test_reference_must_be_3_to_10_seconds(engine: Engine, tmp_path: Path) -> None:
    fake_model = tmp_path / "alice.pth"
    fake_model.write_bytes(b"x")  # the clip rule is checked before any model file is opened
    for seconds in (2.0, 12.0):
        with pytest.raises(ReferenceAudioError, match=rf"is {seconds:.1f} s long; GPT-SoVITS .* 3-10 s"):
            engine.add_voice("alice", [_clip(tmp_path / "ref.wav", seconds)], models={"sovits": fake_model})
    assert engine.voices.names() == []
    # the same 12 s clip is fine for a voice without GPT-SoVITS files
    engine.add_voice("plain", [_clip(tmp_path / "long.wav", 12.0)])


def test_bad_model_file_refused_through_the_engine(engine: Engine, tmp_path: Path) -> None:
    fake_model = tmp_path / "alice.pth"
    fake_model.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="alice.pth"):
        engine.add_voice("alice", [_clip(tmp_path / "ref.wav", 4.0)], models={"sovits": fake_model})
    assert engine.voices.names() == []


def test_hubert_alone_is_refused(gsv: Path) -> None:
    with pytest.raises(CheckpointError, match="HuBERT folder alone makes no voice: .*--sovits"):
        check_voice_models({"hubert": gsv / "hubert_small"})
