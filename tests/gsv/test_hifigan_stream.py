"""Incremental HiFi-GAN decoding (each sample decoded once) equals a one-shot decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from anchorvoice.errors import StageError
from anchorvoice.frames import FeatureFrame
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.hifigan import Generator, HiFiGANConfig
from anchorvoice.plugins.gsv.hifigan_stream import IncrementalDecoder
from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
from anchorvoice.plugins.gsv.stages_sovits import GsvHifiganConfig, GsvHifiganVocoder
from tests.conformance.conftest import require_reference_dir
from tests.conftest import needs_bf16_kernels


@pytest.fixture(scope="module")
def dec() -> Generator:
    root = require_reference_dir()
    return SynthesizerTrn.from_checkpoint(load_sovits(root / "s2_v2_small.pth")).dec


def _latent(dec: Generator, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(dec.cfg.initial_channel, frames, generator=g), torch.randn(1, dec.cfg.gin_channels, 1,
                                                                                   generator=g)


def _stream(inc: IncrementalDecoder, z: torch.Tensor, pieces: list[int]) -> list[np.ndarray]:
    out, pos, n = [], 0, z.shape[1]
    for size in pieces:
        nxt = min(n, pos + size)
        out.append(inc.push(z[:, pos:nxt], final=nxt >= n))
        pos = nxt
        if pos >= n:
            break
    return out


@pytest.mark.parametrize("pieces", [[1] * 61, [7] * 9, [32, 0, 48, 96], [61]])
def test_incremental_decode_equals_one_shot(dec: Generator, pieces: list[int]) -> None:
    z, ge = _latent(dec, 61)
    with torch.inference_mode():
        ref = dec(z[None], g=ge)[0, 0].numpy()
    out = np.concatenate(_stream(IncrementalDecoder(dec, ge), z, pieces))
    assert out.shape == ref.shape  # no sample lost or repeated
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


def test_audio_comes_out_once_its_receptive_field_has_arrived(dec: Generator) -> None:
    z, ge = _latent(dec, 80)
    inc = IncrementalDecoder(dec, ge)
    hop = dec.cfg.hop_length
    sizes = [len(a) for a in _stream(inc, z, [32, 48])]
    # the generator reaches ~10.6 frames ahead (conv_pre 3, the k11 blocks 6 at the first scale, ...)
    assert 20 * hop < sizes[0] < 23 * hop
    assert sum(sizes) == 80 * hop
    with pytest.raises(ValueError, match="reset"):
        inc.push(z[:, :1])
    inc.reset()
    assert len(inc.push(z[:, :5])) == 0  # a fresh utterance: nothing is final yet
    with pytest.raises(ValueError, match=r"\(64, T\)|latent frames"):
        inc.push(torch.zeros(3, 4))


@needs_bf16_kernels
def test_bfloat16_incremental_is_as_close_to_float32_as_a_bfloat16_one_shot() -> None:
    torch.manual_seed(3)
    gen = Generator(HiFiGANConfig(initial_channel=8, upsample_initial_channel=64, gin_channels=4)).eval()
    z, g = torch.randn(8, 40), torch.randn(1, 4, 1)
    with torch.inference_mode():
        exact = gen(z[None], g=g)[0, 0].numpy()
        gen.use_precision("bfloat16")
        ref = gen(z[None], g=g)[0, 0].numpy()
    out = np.concatenate(_stream(IncrementalDecoder(gen, g), z, [9, 9, 9, 13]))
    assert out.shape == ref.shape

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    # bf16 products: the streamed windows change oneDNN's kernels and rounding (on an AMX CPU single samples
    # differ by 3% of the peak), not the arithmetic: the stream is as far from float32 as the one-shot is
    assert rel(out, ref) < 0.02
    assert rel(out, exact) < 1.1 * rel(ref, exact) + 1e-4


def test_vocoder_streams_incrementally_by_default_and_windows_on_request(dec: Generator, tmp_path: Path) -> None:
    root = require_reference_dir()
    z, ge = _latent(dec, 70, seed=1)
    latent = FeatureFrame(z, frame_rate=50.0, meta={"ge": ge})
    results = {}
    for mode in ("incremental", "windows"):
        voc = GsvHifiganVocoder(GsvHifiganConfig(sovits_path=str(root / "s2_v2_small.pth"), streaming=mode))
        voc.prepare(None)
        whole = voc.synthesize(latent).samples
        streamed = voc.stream(latent)
        results[mode] = (whole, np.concatenate([f.samples for f in streamed]))
        stream = voc.open_stream(latent)
        pushed = [stream.push(FeatureFrame(z[:, a:b], 50.0, meta={"ge": ge}), final=b == 70).samples
                  for a, b in ((0, 30), (30, 70))]
        results[mode + "-open"] = (whole, np.concatenate(pushed))
    for whole, got in results.values():
        assert got.shape == whole.shape
    np.testing.assert_allclose(results["incremental"][1], results["incremental"][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(results["incremental-open"][1], results["incremental-open"][0], rtol=0, atol=1e-5)
    assert np.abs(results["windows"][1] - results["windows"][0]).max() < 1e-4


def test_bad_streaming_settings_are_refused() -> None:
    root = require_reference_dir()
    path = str(root / "s2_v2_small.pth")
    z = torch.zeros(64, 20)
    latent = FeatureFrame(z, 50.0, meta={"ge": torch.zeros(1, 512, 1)})
    voc = GsvHifiganVocoder(GsvHifiganConfig(sovits_path=path, streaming="chunks"))  # type: ignore[arg-type]
    voc.prepare(None)
    with pytest.raises(StageError, match="'incremental' or 'windows'"):
        voc.open_stream(latent)
    voc = GsvHifiganVocoder(GsvHifiganConfig(sovits_path=path, channels_last=False))
    voc.prepare(None)
    with pytest.raises(StageError, match="channels_last"):
        next(iter(voc.stream(latent)))
    with pytest.raises(ValueError, match="channels-last"):
        IncrementalDecoder(voc.dec, torch.zeros(1, 512, 1))  # type: ignore[arg-type]
