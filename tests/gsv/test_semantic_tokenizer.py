"""The tokenizer built alone gives the full SoVITS model's semantic tokens and refuses files without one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorvoice.errors import CorruptCheckpointError
from anchorvoice.plugins.gsv.checkpoints import SovitsCheckpoint, load_sovits
from anchorvoice.plugins.gsv.semantic import SemanticTokenizer
from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
from tests.conformance.conftest import require_reference_dir


@pytest.fixture
def gsv_reference() -> Path:
    return require_reference_dir()


def test_same_tokens_as_the_full_model(gsv_reference: Path) -> None:
    ckpt = load_sovits(gsv_reference / "s2_v2_small.pth")
    full = SynthesizerTrn.from_checkpoint(ckpt)
    alone = SemanticTokenizer.from_checkpoint(ckpt)
    assert sum(p.numel() for p in alone.parameters()) < sum(p.numel() for p in full.parameters()) / 5
    ssl = torch.randn(2, full.ssl_proj.in_channels, 101, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = full.extract_latent(ssl)
    got = alone.extract_latent(ssl)
    assert got.dtype == torch.int64 and got.shape == want.shape == (2, 1, 50)
    assert torch.equal(got, want)
    assert len(set(got.flatten().tolist())) > 5  # a real codebook, not one code everywhere


def test_a_file_without_a_codebook_is_refused(gsv_reference: Path) -> None:
    ckpt = load_sovits(gsv_reference / "s2_v2_small.pth")
    gone = {k: v for k, v in ckpt.weights.items() if not k.startswith("quantizer.")}
    with pytest.raises(CorruptCheckpointError, match="codebook"):
        SemanticTokenizer.from_checkpoint(SovitsCheckpoint(**{**vars(ckpt), "weights": gone}))
    short = {**ckpt.weights, "ssl_proj.weight": ckpt.weights["ssl_proj.weight"][:, :, :1]}
    with pytest.raises(CorruptCheckpointError, match="ssl_proj.weight"):
        SemanticTokenizer.from_checkpoint(SovitsCheckpoint(**{**vars(ckpt), "weights": short}))
