"""Residual vector quantizer of GPT-SoVITS (``module/quantize.py`` + ``module/core_vq.py`` behaviour).

Module and buffer names follow the official classes so that the ``quantizer.*`` entries of a
SoVITS checkpoint load strictly: ``vq.layers.<i>._codebook.{inited, cluster_size, embed, embed_avg}``.

Codebook training (SoundStream, arXiv 2107.03312, Algorithm 1, as the official code does it):
k-means initialisation on the first training batch (at most 500 vectors, ``kmeans_iters``
iterations), EMA of cluster sizes and code sums (``decay``), Laplace smoothing (``epsilon``), and
replacement of codes whose EMA cluster size is below ``threshold_ema_dead_code`` by random vectors
of the current batch. GPT-SoVITS uses n_q=1, bins=1024, dim=768, decay 0.99, kmeans_iters 50,
threshold 2 (``quantize.ResidualVectorQuantizer`` defaults as SynthesizerTrn builds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anchorvoice.engine.stages import Tokenizer
from anchorvoice.engine.state_dicts import build_unset, check_keys, load_assigned
from anchorvoice.errors import CheckpointError, CorruptCheckpointError, StageError
from anchorvoice.frames import FeatureFrame, TokenFrame
from anchorvoice.plugins.gsv.checkpoints import SovitsCheckpoint, load_sovits

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

# core_vq.kmeans only looks at the first 500 vectors of the batch.
MAX_KMEANS_SAMPLES = 500
# Frame rate of the features the tokenizer takes: HuBERT at 16 kHz with 320x downsampling.
SSL_FRAME_RATE = 50.0


def _sample_rows(samples: torch.Tensor, num: int) -> torch.Tensor:
    """``num`` rows of ``samples`` (N, D): distinct when N >= num, with repeats otherwise."""
    n = samples.shape[0]
    if n >= num:
        idx = torch.randperm(n, device=samples.device)[:num]
    else:
        idx = torch.randint(0, n, (num,), device=samples.device)
    return samples[idx]


def kmeans(samples: torch.Tensor, num_clusters: int, num_iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on (N, D) samples; returns means (K, D) and the last assignment counts (K,)."""
    samples = samples[:MAX_KMEANS_SAMPLES]
    dim = samples.shape[-1]
    means = _sample_rows(samples, num_clusters)
    counts = torch.zeros(num_clusters, dtype=torch.long, device=samples.device)
    for _ in range(num_iters):
        dists = ((samples[:, None, :] - means[None, :, :]) ** 2).sum(-1)  # (N, K)
        buckets = dists.argmin(-1)
        counts = torch.bincount(buckets, minlength=num_clusters)
        empty = counts == 0
        sums = torch.zeros(num_clusters, dim, dtype=samples.dtype, device=samples.device)
        sums.index_add_(0, buckets, samples)
        new_means = sums / counts.masked_fill(empty, 1)[:, None]
        # A cluster that lost all its points keeps its old centre.
        means = torch.where(empty[:, None], means, new_means)
    return means, counts


class EuclideanCodebook(nn.Module):
    """``codebook_size`` codes of ``dim`` floats, nearest by Euclidean distance.

    Dead-code replacement: the official code replaces ``embed`` rows and then, in the same step,
    overwrites all of ``embed`` with ``embed_avg / cluster_size``, so its replacement never takes
    effect. With ``reset_dead_code_stats`` (default) a replaced code also gets ``cluster_size =
    threshold`` and ``embed_avg = vector * threshold`` (as vector-quantize-pytorch does), so it
    survives the EMA step; ``False`` reproduces the official training dynamics exactly. Inference
    (eval mode) is the same either way.
    """

    inited: torch.Tensor
    cluster_size: torch.Tensor
    embed: torch.Tensor
    embed_avg: torch.Tensor

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        kmeans_init: bool = True,
        kmeans_iters: int = 50,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        threshold_ema_dead_code: float = 2,
        reset_dead_code_stats: bool = True,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.reset_dead_code_stats = reset_dead_code_stats
        self.kmeans_iters = kmeans_iters
        self.decay = decay
        self.epsilon = epsilon
        self.threshold_ema_dead_code = threshold_ema_dead_code
        if kmeans_init:
            embed = torch.zeros(codebook_size, dim)
        else:
            embed = torch.empty(codebook_size, dim)
            nn.init.kaiming_uniform_(embed)
        # Stored as a float (1,) flag in official checkpoints: 1 = initialised, 0 = run k-means first.
        self.register_buffer("inited", torch.tensor([0.0 if kmeans_init else 1.0]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    @torch.no_grad()
    def init_embed_(self, data: torch.Tensor) -> None:
        """k-means initialisation from ``data`` (N, D), once."""
        if bool(self.inited.item()):
            return
        means, counts = kmeans(data, self.codebook_size, self.kmeans_iters)
        self.embed.copy_(means)
        # embed_avg starts at the means, not means x counts, as in the official code: the first EMA
        # steps shrink the codes until the running sums catch up (kept for identical training).
        self.embed_avg.copy_(means)
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest code index for each row of ``x`` (N, D) -> (N,)."""
        embed_t = self.embed.t()
        # -(|x|^2 - 2 x.e + |e|^2), maximised: the official distance expression (same tie-breaking).
        dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed_t + embed_t.pow(2).sum(0, keepdim=True))
        return dist.max(dim=-1).indices

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> code indices (...)."""
        return self.quantize(x.reshape(-1, x.shape[-1])).view(x.shape[:-1])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices (...) -> vectors (..., D)."""
        return F.embedding(codes, self.embed)

    @torch.no_grad()
    def _expire_codes(self, samples: torch.Tensor) -> None:
        if self.threshold_ema_dead_code == 0:
            return
        dead = self.cluster_size < self.threshold_ema_dead_code
        if not bool(dead.any()):
            return
        fresh = _sample_rows(samples, self.codebook_size)
        self.embed.copy_(torch.where(dead[:, None], fresh, self.embed))
        if self.reset_dead_code_stats:
            thr = float(self.threshold_ema_dead_code)
            self.embed_avg.copy_(torch.where(dead[:, None], fresh * thr, self.embed_avg))
            self.cluster_size.masked_fill_(dead, thr)

    @torch.no_grad()
    def _ema_update(self, samples: torch.Tensor, codes: torch.Tensor) -> None:
        onehot = F.one_hot(codes, self.codebook_size).to(samples.dtype)  # (N, K)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_((samples.t() @ onehot).t(), alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        self.embed.copy_(self.embed_avg / smoothed[:, None])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., D) -> (quantized (..., D), codes (...)); in training also updates the codebook."""
        flat = x.reshape(-1, x.shape[-1])
        self.init_embed_(flat)
        codes = self.quantize(flat)
        quantized = F.embedding(codes, self.embed)
        if self.training:
            # Order as the official code: expire with the previous sizes, then the EMA step.
            self._expire_codes(flat.detach())
            self._ema_update(flat.detach(), codes)
        return quantized.view(x.shape), codes.view(x.shape[:-1])


class VectorQuantization(nn.Module):
    """One quantizer stage on (B, D, T) tensors with a straight-through gradient in training."""

    def __init__(self, dim: int, codebook_size: int, commitment_weight: float = 1.0, **codebook_kw: float) -> None:
        super().__init__()
        self.commitment_weight = commitment_weight
        self._codebook = EuclideanCodebook(dim, codebook_size, **codebook_kw)  # type: ignore[arg-type]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> (B, T) codes."""
        return self._codebook.encode(x.transpose(1, 2))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T) codes -> (B, D, T)."""
        return self._codebook.decode(codes).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, D, T) -> (quantized (B, D, T), codes (B, T), commitment loss (1,))."""
        xt = x.transpose(1, 2)
        quantized, codes = self._codebook(xt)
        loss = torch.zeros(1, device=x.device)
        if self.training:
            quantized = xt + (quantized - xt).detach()
            if self.commitment_weight > 0:
                loss = loss + F.mse_loss(quantized.detach(), xt) * self.commitment_weight
        return quantized.transpose(1, 2), codes, loss


class ResidualVectorQuantization(nn.Module):
    """Stack of ``num_quantizers`` stages, each quantizing the residual of the previous ones."""

    def __init__(self, num_quantizers: int, dim: int, codebook_size: int, **codebook_kw: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            VectorQuantization(dim, codebook_size, **codebook_kw) for _ in range(num_quantizers)
        )


class ResidualVectorQuantizer(nn.Module):
    """GPT-SoVITS ``ResidualVectorQuantizer(dimension, n_q, bins)`` on (B, D, T) features."""

    def __init__(
        self,
        dimension: int = 256,
        n_q: int = 8,
        bins: int = 1024,
        decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 50,
        threshold_ema_dead_code: float = 2,
        epsilon: float = 1e-5,
        reset_dead_code_stats: bool = True,
    ) -> None:
        super().__init__()
        self.dimension, self.n_q, self.bins = dimension, n_q, bins
        self.vq = ResidualVectorQuantization(
            n_q,
            dimension,
            bins,
            decay=decay,
            kmeans_init=kmeans_init,
            kmeans_iters=kmeans_iters,
            threshold_ema_dead_code=threshold_ema_dead_code,
            epsilon=epsilon,
            reset_dead_code_stats=reset_dead_code_stats,
        )

    def _layers(self) -> list[VectorQuantization]:
        return list(self.vq.layers)  # type: ignore[arg-type]

    def forward(
        self, x: torch.Tensor, n_q: int | None = None, layers: list[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(B, D, T) -> (quantized sum, codes (n_q, B, T), mean loss, quantized of stages in ``layers``)."""
        n_q = n_q or self.n_q
        if layers and max(layers) >= n_q:
            raise ValueError(f"layers {layers} asked for, but only {n_q} quantizer stages are used")
        residual, total = x, torch.zeros_like(x)
        codes, losses, picked = [], [], []
        for i, layer in enumerate(self._layers()[:n_q]):
            quantized, idx, loss = layer(residual)
            residual = residual - quantized
            total = total + quantized
            codes.append(idx)
            losses.append(loss)
            if layers and i in layers:
                picked.append(quantized)
        return total, torch.stack(codes), torch.stack(losses).mean(), picked

    def encode(self, x: torch.Tensor, n_q: int | None = None, st: int | None = None) -> torch.Tensor:
        """(B, D, T) -> codes (n_q - st, B, T) of stages ``st..n_q-1``, starting from the raw ``x``."""
        n_q, st = n_q or self.n_q, st or 0
        residual, codes = x, []
        for layer in self._layers()[st:n_q]:
            idx = layer.encode(residual)
            residual = residual - layer.decode(idx)
            codes.append(idx)
        if not codes:
            raise ValueError(f"no quantizer stages between st={st} and n_q={n_q}")
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor, st: int = 0) -> torch.Tensor:
        """Codes (k, B, T) of stages ``st..st+k-1`` -> summed vectors (B, D, T)."""
        layers = self._layers()
        if codes.dim() != 3 or st + codes.shape[0] > len(layers):
            raise ValueError(f"codes must be (k, B, T) with st + k <= {len(layers)}, got {tuple(codes.shape)}")
        out = layers[st].decode(codes[0])
        for i in range(1, codes.shape[0]):
            out = out + layers[st + i].decode(codes[i])
        return out


class SemanticTokenizerModel(nn.Module):
    """``SynthesizerTrn.extract_latent``: ``ssl_proj`` (Conv1d 768->768, k=2, s=2: 50 -> 25 Hz) + quantizer.

    Built from the ``ssl_proj.*`` and ``quantizer.*`` entries of a SoVITS checkpoint (sizes read
    from the weights), so the tokenizer does not load the whole generator.
    """

    def __init__(self, ssl_dim: int, kernel: int, n_q: int, bins: int) -> None:
        super().__init__()
        # semantic_frame_rate "25hz" -> kernel 2 stride 2; "50hz" -> kernel 1 stride 1 (module/models.py).
        self.ssl_proj = nn.Conv1d(ssl_dim, ssl_dim, kernel, stride=kernel)
        self.quantizer = ResidualVectorQuantizer(dimension=ssl_dim, n_q=n_q, bins=bins)

    @classmethod
    def from_checkpoint(cls, ckpt: SovitsCheckpoint) -> SemanticTokenizerModel:
        w = {k: v for k, v in ckpt.weights.items() if k.startswith(("ssl_proj.", "quantizer."))}
        proj, embed = w.get("ssl_proj.weight"), w.get("quantizer.vq.layers.0._codebook.embed")
        if proj is None or embed is None or proj.dim() != 3 or embed.dim() != 2:
            raise CorruptCheckpointError(f"{ckpt.path}: no ssl_proj / quantizer weights; not a SoVITS generator")
        n_q = len({k.split(".")[3] for k in w if k.startswith("quantizer.vq.layers.")})
        model = build_unset(lambda: cls(proj.shape[0], proj.shape[2], n_q, embed.shape[0]))
        check_keys(set(model.state_dict()), set(w), what=f"{ckpt.path} (ssl_proj + quantizer)")
        load_assigned(model, {k: v.float() for k, v in w.items()}, f"{ckpt.path} (ssl_proj + quantizer)")
        return model.eval()

    @property
    def stride(self) -> int:
        return int(self.ssl_proj.stride[0])

    def forward(self, ssl: torch.Tensor) -> torch.Tensor:
        """(B, D, T50) features -> codes (B, n_q, T25)."""
        return self.quantizer.encode(self.ssl_proj(ssl)).transpose(0, 1)


@dataclass
class GsvTokenizerConfig:
    """Parameters of the ``gsv-rvq`` tokenizer."""

    sovits_path: str = ""
    """SoVITS ``.pth`` whose ssl_proj + quantizer to use; empty: the voice's ``models["sovits"]``."""
    device: str = "cpu"
    """torch device to run on."""


class GsvTokenizer(Tokenizer):
    """HuBERT features (768, T) at 50 Hz -> semantic tokens (T // 2,) at 25 Hz (layer-0 codes).

    These are the tokens GPT-SoVITS uses as the T2S prompt (``codes[0, 0]`` of ``extract_latent``).
    """

    name = "gsv-rvq"
    Config = GsvTokenizerConfig

    def __init__(self, config: GsvTokenizerConfig | None = None) -> None:
        super().__init__(config)
        self._model: SemanticTokenizerModel | None = None
        self._loaded: Path | None = None

    def prepare(self, voice: Voice | None) -> None:
        src = self.config.sovits_path or (voice.models.get("sovits") if voice is not None else None)
        if not src:
            raise CheckpointError(
                "the gsv-rvq tokenizer needs a SoVITS .pth: set params.sovits_path in the pipeline, "
                "or add the voice with a 'sovits' model path"
            )
        path = Path(src).expanduser().resolve()
        if path != self._loaded:
            self._model = SemanticTokenizerModel.from_checkpoint(load_sovits(path)).to(self.config.device)
            self._loaded = path

    def encode(self, features: FeatureFrame) -> TokenFrame:
        if self._model is None:
            raise StageError("gsv-rvq: prepare(voice) must load the model before encode()")
        feats = torch.as_tensor(features.features, dtype=torch.float32)
        dim, stride = self._model.ssl_proj.in_channels, self._model.stride
        if feats.dim() != 2 or feats.shape[0] != dim or feats.shape[1] < stride:
            raise StageError(
                f"gsv-rvq expects HuBERT features ({dim}, T>={stride}), got {tuple(feats.shape)}; "
                "put the 'hubert' feature extractor before it"
            )
        if abs(features.frame_rate - SSL_FRAME_RATE) > 1e-6:
            raise StageError(
                f"gsv-rvq expects {SSL_FRAME_RATE:g} Hz HuBERT features, got {features.frame_rate:g} Hz"
            )
        with torch.inference_mode():
            codes = self._model(feats.to(self.config.device)[None])  # (1, n_q, T25)
        tokens = codes[0, 0].cpu().numpy().astype(np.int64)
        return TokenFrame(tokens=tokens, frame_rate=features.frame_rate / stride, timestamp=features.timestamp)

    def close(self) -> None:
        self._model, self._loaded = None, None
