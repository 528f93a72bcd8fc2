"""Chunked HiFi-GAN decoding agrees with one-shot decoding (the tolerance stated in streaming_decode)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.hifigan import Generator
from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
from anchorvoice.plugins.gsv.streaming_decode import ChunkedDecodeConfig, ChunkedDecoder
from tests.conformance.conftest import require_reference_dir

HOP = 640


@pytest.fixture(scope="module")
def dec() -> Generator:
    root = require_reference_dir()
    return SynthesizerTrn.from_checkpoint(load_sovits(root / "s2_v2_small.pth")).dec


def _latent(frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, frames, generator=g), torch.randn(1, 512, 1, generator=g)


def _stream(cd: ChunkedDecoder, z: torch.Tensor, piece: int) -> tuple[np.ndarray, list[int]]:
    out, sizes = [], []
    n = z.shape[1]
    for i in range(0, n, piece):
        a = cd.push(z[:, i : i + piece], final=i + piece >= n)
        out.append(a)
        sizes.append(len(a))
    return np.concatenate(out), sizes


def _join_mask(n: int, joins: list[int], radius: int) -> np.ndarray:
    mask = np.ones(n, bool)
    for j in joins:
        mask[max(0, j - radius) : j + radius] = False
    return mask


@pytest.mark.parametrize("piece", [1, 7, 200])
def test_chunked_matches_one_shot(dec: Generator, piece: int) -> None:
    z, ge = _latent(123)
    with torch.inference_mode():
        ref = dec(z[None], g=ge)[0, 0].numpy()
    cd = ChunkedDecoder(dec, ge)
    out, _ = _stream(cd, z, piece)
    assert out.shape == ref.shape  # no sample lost or duplicated
    err = np.abs(out - ref)
    joins = [j * HOP for j in cd.joins]
    assert joins, "the stream was cut into several chunks"
    assert err.max() < 1e-4
    assert err[_join_mask(len(ref), joins, 3 * HOP)].max() < 1e-5
    assert cd.offsets == [0] * len(cd.offsets)


def test_first_audio_arrives_after_the_first_chunk_and_chunks_grow(dec: Generator) -> None:
    z, ge = _latent(200, seed=1)
    cd = ChunkedDecoder(dec, ge)
    assert cd.first_audio_frames == 10 + 2 + 8
    assert len(cd.push(z[:, :19])) == 0
    assert len(cd.push(z[:, 19:20])) == 10 * HOP
    # every frame whose right context (2 + 8) is in comes out, in chunks of at most max_chunk_frames (100)
    rest = cd.push(z[:, 20:200])
    assert len(rest) == (200 - 10 - 10) * HOP
    assert cd.joins == [10, 110]
    assert len(cd.push(z[:, :0], final=True)) == 10 * HOP


def test_short_context_is_worse_and_sola_stays_aligned(dec: Generator) -> None:
    """The stated trade-off: little right context gives audible joins; SOLA search keeps alignment."""
    z, ge = _latent(123, seed=2)
    with torch.inference_mode():
        ref = dec(z[None], g=ge)[0, 0].numpy()
    short, _ = _stream(ChunkedDecoder(dec, ge, ChunkedDecodeConfig(lookahead_frames=0)), z, 7)
    assert np.abs(short - ref).max() > 1e-3
    cd = ChunkedDecoder(dec, ge, ChunkedDecodeConfig(sola_search=320))
    searched, _ = _stream(cd, z, 7)
    assert searched.shape == ref.shape and np.abs(searched - ref).max() < 1e-4


def test_bad_settings_are_refused(dec: Generator) -> None:
    _, ge = _latent(1)
    with pytest.raises(ValueError, match="chunk_frames"):
        ChunkedDecoder(dec, ge, ChunkedDecodeConfig(chunk_frames=0))
    with pytest.raises(ValueError, match="overlap_frames"):
        ChunkedDecoder(dec, ge, ChunkedDecodeConfig(chunk_frames=2, overlap_frames=3))
    with pytest.raises(ValueError, match=r"\(C, T\)"):
        ChunkedDecoder(dec, ge).push(torch.zeros(1, 64, 3))
