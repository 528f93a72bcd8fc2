"""The SoVITS v2 semantic tokenizer alone: ``ssl_proj`` + the RVQ codebook of a SoVITS checkpoint.

``SynthesizerTrn.extract_latent`` needs only these two of the generator's modules (~1.2 M parameters of
~80 M). Building just them from the checkpoint is what the dataset's semantic step does: the same tokens
(same weights, same code path) without materialising the prior and the HiFi-GAN, which took ~1.5-2.5 s of
a ``dataset make``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anchorvoice.engine.state_dicts import build_unset, check_keys, load_assigned
from anchorvoice.errors import CorruptCheckpointError
from anchorvoice.plugins.gsv.checkpoints import SovitsCheckpoint
from anchorvoice.plugins.gsv.rvq import ResidualVectorQuantizer
from anchorvoice.plugins.gsv.sovits import SSL_DIM

PREFIXES = ("ssl_proj.", "quantizer.")
"""The checkpoint entries this module reads (the official names)."""


class SemanticTokenizer(nn.Module):
    """HuBERT features -> 25 Hz semantic codes, exactly as the full ``SynthesizerTrn.extract_latent``."""

    def __init__(self, bins: int = 1024) -> None:
        super().__init__()
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, 2, stride=2)
        self.quantizer = ResidualVectorQuantizer(dimension=SSL_DIM, n_q=1, bins=bins)

    @classmethod
    def from_checkpoint(cls, ckpt: SovitsCheckpoint) -> SemanticTokenizer:
        """Only the ``ssl_proj.*`` and ``quantizer.*`` tensors of ``ckpt``, float32, eval mode."""
        weights = {k: v for k, v in ckpt.weights.items() if k.startswith(PREFIXES)}
        what = str(ckpt.path or "SoVITS checkpoint")
        embed = weights.get("quantizer.vq.layers.0._codebook.embed")
        if embed is None or embed.ndim != 2:
            raise CorruptCheckpointError(f"{what}: no RVQ codebook (quantizer.vq.layers.0._codebook.embed)")
        model = build_unset(lambda: cls(bins=int(embed.shape[0])))
        expected = {k: tuple(t.shape) for k, t in model.state_dict().items()}
        check_keys(set(expected), set(weights), what)
        bad = [k for k, s in expected.items() if tuple(weights[k].shape) != s]
        if bad:
            raise CorruptCheckpointError(f"{what}: {bad[0]} has shape {tuple(weights[bad[0]].shape)}, expected "
                                         f"{expected[bad[0]]}; not a SoVITS v2 tokenizer")
        load_assigned(model, weights, what)
        return model.float().eval().requires_grad_(False)

    def extract_latent(self, ssl: Tensor) -> Tensor:
        """(B, 768, T50) HuBERT features -> semantic codes (B, n_q, T50 // 2) int64."""
        with torch.inference_mode():
            return self.quantizer.encode(self.ssl_proj(ssl)).transpose(0, 1)
