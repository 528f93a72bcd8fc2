"""The gsv-sovits decoder and gsv-hifigan vocoder stages on the official fixture checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from anchorvoice.engine.voices import Voice
from anchorvoice.errors import CheckpointError, StageError, TextInputError
from anchorvoice.frames import FeatureFrame, PhonemeFrame, TokenFrame
from anchorvoice.plugins.gsv.stages_sovits import GsvHifiganConfig, GsvHifiganVocoder, GsvSovitsConfig, GsvSovitsDecoder
from tests.conformance.conftest import require_reference_dir
from tests.conftest import needs_bf16_kernels


@pytest.fixture(scope="module")
def root() -> Path:
    return require_reference_dir()


@pytest.fixture(scope="module")
def voice(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Voice:
    """A voice with the two fixture references as float WAV files (exact samples) and the s2 model."""
    folder = tmp_path_factory.mktemp("alice")
    spec = np.load(root / "cases" / "s2_spectrogram.npz")
    refs = []
    for i, key in enumerate(["in_wav32k", "in_wav32k_ref2"]):
        p = folder / f"ref{i}.wav"
        sf.write(p, spec[key], 32000, subtype="FLOAT")
        refs.append(p)
    return Voice("alice", folder, refs, models={"sovits": root / "s2_v2_small.pth"})


def _phones(ids: np.ndarray) -> PhonemeFrame:
    return PhonemeFrame(ids=ids.astype(np.int64), symbols=["x"] * len(ids), word2ph=[len(ids)], language="en")


def test_decoder_and_vocoder_reproduce_the_official_multiref_decode(root: Path, voice: Voice) -> None:
    case = np.load(root / "cases" / "s2_decode_multiref_speed.npz")
    dec = GsvSovitsDecoder(GsvSovitsConfig(noise_scale=0.0, speed=1.25))
    voc = GsvHifiganVocoder()
    dec.prepare(voice)
    voc.prepare(voice)
    tokens = TokenFrame(case["in_codes"][0, 0], frame_rate=25.0, timestamp=1.5)
    latent = dec.decode(tokens, _phones(case["in_text"][0]))
    assert latent.frame_rate == 50.0 and latent.features.shape == (64, 52)
    np.testing.assert_allclose(latent.meta["ge"].numpy(), case["int_ge"], atol=1e-4, rtol=0)
    audio = voc.synthesize(latent)
    assert audio.sample_rate == 32000 and audio.timestamp == 1.5
    np.testing.assert_allclose(audio.samples, case["exp_audio"], atol=1e-4, rtol=0)
    streamed = np.concatenate([f.samples for f in voc.stream(latent)])
    np.testing.assert_allclose(streamed, audio.samples, atol=1e-4, rtol=0)


def test_seed_makes_noise_reproducible_and_vc_path_needs_no_phones(root: Path, voice: Voice) -> None:
    dec = GsvSovitsDecoder(GsvSovitsConfig(seed=7))
    dec.prepare(voice)
    tokens = TokenFrame(np.arange(12, dtype=np.int64) * 37, frame_rate=25.0)
    a = dec.decode(tokens, _phones(np.array([5, 6, 7])))
    b = dec.decode(tokens, _phones(np.array([5, 6, 7])))
    torch.testing.assert_close(a.features, b.features, rtol=0, atol=0)
    dec.config.seed = 8
    assert not torch.equal(dec.decode(tokens, _phones(np.array([5, 6, 7]))).features, a.features)
    vc = dec.decode(tokens, None)  # no transcript: one silence phone
    assert vc.features.shape == (64, 24) and torch.isfinite(vc.features).all()


def test_bad_inputs_get_errors_that_say_what_to_do(root: Path, voice: Voice) -> None:
    dec = GsvSovitsDecoder()
    with pytest.raises(StageError, match="prepare"):
        dec.decode(TokenFrame(np.zeros(3, np.int64), 25.0))
    with pytest.raises(CheckpointError, match="sovits_path"):
        dec.prepare(Voice("bob", voice.path, voice.references))
    dec.prepare(voice)
    with pytest.raises(StageError, match=r"\[0, 1024\)"):
        dec.decode(TokenFrame(np.array([3, 1024]), 25.0))
    with pytest.raises(TextInputError, match="v2 text frontend"):
        dec.decode(TokenFrame(np.array([3, 4]), 25.0), _phones(np.array([731, 732])))
    voc = GsvHifiganVocoder(GsvHifiganConfig(sovits_path=str(root / "s2_v2_small.pth")))
    voc.prepare(None)
    with pytest.raises(StageError, match="gsv-sovits"):
        voc.synthesize(FeatureFrame(torch.zeros(64, 3), 50.0))
    with pytest.raises(StageError, match=r"\(64, T>0\)"):
        voc.synthesize(FeatureFrame(torch.zeros(32, 3), 50.0, meta={"ge": torch.zeros(1, 512, 1)}))


def test_block_dft_is_opt_in_and_keeps_the_official_audio(root: Path, voice: Voice) -> None:
    case = np.load(root / "cases" / "s2_decode_multiref_speed.npz")  # the voice holds this case's references
    dec = GsvSovitsDecoder(GsvSovitsConfig(noise_scale=0.0, speed=1.25))
    dec.prepare(voice)
    latent = dec.decode(TokenFrame(case["in_codes"][0, 0], frame_rate=25.0), _phones(case["in_text"][0]))
    default, opted = GsvHifiganVocoder(), GsvHifiganVocoder(GsvHifiganConfig(block_dft=True))
    for voc in (default, opted):
        voc.prepare(voice)
    assert default.dec is not None and default.dec.block_dft is None  # ~630 MB at full size: not by default
    assert opted.dec is not None and opted.dec.block_dft is not None
    np.testing.assert_allclose(opted.synthesize(latent).samples, case["exp_audio"], atol=1e-4, rtol=0)


@needs_bf16_kernels
def test_precision_change_takes_effect_on_the_next_prepare(root: Path, voice: Voice) -> None:
    """A params.set of ``precision`` on a loaded vocoder reaches its generator without a reload."""
    voc = GsvHifiganVocoder()
    voc.prepare(voice)
    assert voc.dec is not None and voc.dec.precision == "float32"
    loaded = voc.dec
    voc.config.precision = "bfloat16"
    voc.prepare(voice)
    assert voc.dec is loaded and voc.dec.precision == "bfloat16"
    voc.config.precision = "float16"  # type: ignore[assignment]
    with pytest.raises(StageError, match="'float32', 'bfloat16' or 'auto'"):
        voc.prepare(voice)
