"""SoVITS v2 generator (``SynthesizerTrn``) for inference: semantic codes + phones + reference -> audio.

Mirrors GPT-SoVITS ``module/models.py`` (commit 48b1a01) with the official parameter names, so that an
official ``s2G*.pth`` loads strictly (everything but the training-only posterior encoder ``enc_q``):

* ``ssl_proj`` Conv1d(768, 768, k=2, s=2): 50 Hz HuBERT features -> 25 Hz; ``quantizer`` RVQ
  (n_q 1, 1024 bins, dim 768) -> semantic codes (:meth:`SynthesizerTrn.extract_latent`);
* ``ref_enc`` MelStyleEncoder on the first 704 linear-spectrogram bins (v2) -> timbre ``ge``;
* ``enc_p`` prior: codes upsampled x2 to 50 Hz -> encoder_ssl, phones -> encoder_text, MRTE
  cross-attention with ``ge``, encoder2 -> mean / log-std;
* ``flow`` reverse, then ``dec`` (:mod:`anchorvoice.plugins.gsv.hifigan`) -> 32 kHz.

Hard-coded sizes come from the official code (ssl dim 768, MRTE 192/512/4, flow kernel 5 / 4 WN
layers / 4 couplings, 704 ref bins in v2); everything else is read from the checkpoint config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.engine.state_dicts import build_unset, check_keys, load_assigned
from anchorvoice.errors import CorruptCheckpointError, ReferenceAudioError, UnsupportedCheckpointError
from anchorvoice.plugins.gsv.checkpoints import SovitsCheckpoint
from anchorvoice.plugins.gsv.hifigan import Generator, HiFiGANConfig
from anchorvoice.plugins.gsv.modules.attention import Encoder
from anchorvoice.plugins.gsv.modules.flow import ResidualCouplingBlock
from anchorvoice.plugins.gsv.modules.mrte import MRTE
from anchorvoice.plugins.gsv.modules.style_encoder import MelStyleEncoder
from anchorvoice.plugins.gsv.modules.weight_norm import official_key_shapes
from anchorvoice.plugins.gsv.rvq import ResidualVectorQuantizer
from anchorvoice.plugins.gsv.spectrogram import SpectrogramConfig

SSL_DIM = 768  # chinese-hubert-base hidden size; hard-coded in the official SynthesizerTrn
N_SYMBOLS = {"v1": 322, "v2": 732}  # len(text/symbols.py), len(text/symbols2.py)
V2_REF_BINS = 704  # official v2 ref_enc = MelStyleEncoder(704, ...) on refer[:, :704]


def official_v2_config() -> dict[str, Any]:
    """The inference-relevant ``data``/``model`` values of the official ``GPT_SoVITS/configs/s2.json``.

    The full-size v2 layout (pretrained ``s2G2333k.pth`` and every v2 fine-tune); used to build a
    random-weight model of the real size for benchmarks and key-layout tests.
    """
    return {
        "data": {"sampling_rate": 32000, "filter_length": 2048, "hop_length": 640, "win_length": 2048},
        "model": {
            "inter_channels": 192,
            "hidden_channels": 192,
            "filter_channels": 768,
            "n_heads": 2,
            "n_layers": 6,
            "kernel_size": 3,
            "p_dropout": 0.1,
            "resblock": "1",
            "resblock_kernel_sizes": [3, 7, 11],
            "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            "upsample_rates": [10, 8, 2, 2, 2],
            "upsample_initial_channel": 512,
            "upsample_kernel_sizes": [16, 16, 8, 2, 2],
            "gin_channels": 512,
            "semantic_frame_rate": "25hz",
        },
    }


@dataclass
class SovitsConfig:
    """Sizes of a SoVITS generator, read from an s2 checkpoint's ``config``."""

    inter_channels: int = 192
    """Latent (flow / decoder input) channels."""
    hidden_channels: int = 192
    """Prior encoder width (must be 192: MRTE is built with fixed sizes)."""
    filter_channels: int = 768
    """FFN width of the prior transformer layers."""
    n_heads: int = 2
    """Attention heads of the prior transformer layers."""
    n_layers: int = 6
    """Text-encoder layers; the ssl encoder and encoder2 get n_layers // 2 each."""
    kernel_size: int = 3
    """FFN conv kernel of the prior transformer layers."""
    gin_channels: int = 512
    """Timbre vector ``ge`` channels."""
    semantic_frame_rate: str = "25hz"
    """Rate of the semantic codes (only "25hz" is used by v1/v2 checkpoints)."""
    version: str = "v2"
    """"v1" (322 symbols, ref_enc on all bins) or "v2" (732 symbols, first 704 bins)."""
    hifigan: HiFiGANConfig = field(default_factory=HiFiGANConfig)
    """Decoder sizes."""
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    """Reference spectrogram parameters (``data`` section)."""

    @classmethod
    def from_checkpoint_config(cls, config: dict[str, Any], version: str = "v2") -> SovitsConfig:
        """Build from the official config mapping (``model`` and ``data`` sections)."""
        try:
            model, data = config["model"], config["data"]
            cfg = cls(
                inter_channels=int(model["inter_channels"]),
                hidden_channels=int(model["hidden_channels"]),
                filter_channels=int(model["filter_channels"]),
                n_heads=int(model["n_heads"]),
                n_layers=int(model["n_layers"]),
                kernel_size=int(model["kernel_size"]),
                gin_channels=int(model.get("gin_channels", 0)),
                semantic_frame_rate=str(model.get("semantic_frame_rate", "25hz")),
                version=version,
                hifigan=HiFiGANConfig.from_model_config(model),
                spectrogram=SpectrogramConfig(
                    n_fft=int(data["filter_length"]),
                    hop_length=int(data["hop_length"]),
                    win_length=int(data["win_length"]),
                    sampling_rate=int(data["sampling_rate"]),
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptCheckpointError(
                f"SoVITS config lacks or mistypes a field ({exc!r}); is this an official s2 checkpoint?"
            ) from None
        if cfg.semantic_frame_rate != "25hz":
            raise UnsupportedCheckpointError(
                f"semantic_frame_rate {cfg.semantic_frame_rate!r}: only 25 Hz SoVITS models are supported"
            )
        if cfg.hifigan.hop_length != cfg.spectrogram.hop_length:
            raise CorruptCheckpointError(
                f"decoder upsamples x{cfg.hifigan.hop_length} but the hop length is {cfg.spectrogram.hop_length}"
            )
        return cfg

    @property
    def ref_bins(self) -> int:
        """Spectrogram bins the reference encoder reads."""
        return V2_REF_BINS if self.version != "v1" else self.spectrogram.n_fft // 2 + 1


class TextEncoder(nn.Module):
    """The prior ``enc_p``: 50 Hz content + phones + ``ge`` -> (x, mean, log-std, mask)."""

    def __init__(self, cfg: SovitsConfig) -> None:
        super().__init__()
        h, f, nh, nl, k = cfg.hidden_channels, cfg.filter_channels, cfg.n_heads, cfg.n_layers, cfg.kernel_size
        self.out_channels = cfg.inter_channels
        self.ssl_proj = nn.Conv1d(SSL_DIM, h, 1)
        self.encoder_ssl = Encoder(h, f, nh, nl // 2, k)
        self.encoder_text = Encoder(h, f, nh, nl, k)
        self.text_embedding = nn.Embedding(N_SYMBOLS[cfg.version], h)
        self.mrte = MRTE()
        self.encoder2 = Encoder(h, f, nh, nl // 2, k)
        self.proj = nn.Conv1d(h, cfg.inter_channels * 2, 1)

    def forward(
        self, y: Tensor, y_mask: Tensor, text: Tensor, text_mask: Tensor, ge: Tensor, speed: float = 1.0
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``y`` (B, 768, T50), ``text`` (B, P) ids, ``ge`` (B, gin, 1) -> x, m, logs (B, C, T'), mask."""
        y = self.ssl_proj(y * y_mask) * y_mask
        y = self.encoder_ssl(y * y_mask, y_mask)
        t = self.text_embedding(text).transpose(1, 2)  # (B, hidden, P)
        t = self.encoder_text(t * text_mask, text_mask)
        y = self.mrte(y, y_mask, t, text_mask, ge)
        y = self.encoder2(y * y_mask, y_mask)
        if speed != 1:
            # Official time stretch: linear resampling of the prior to int(T / speed) + 1 frames.
            y = F.interpolate(y, size=int(y.shape[-1] / speed) + 1, mode="linear")
            y_mask = F.interpolate(y_mask, size=y.shape[-1], mode="nearest")
        stats = self.proj(y) * y_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return y, m, logs, y_mask


@dataclass
class PriorTrace:
    """Everything :meth:`SynthesizerTrn.infer_latent` computes (the official decode's intermediates)."""

    ge_per_ref: Tensor
    """(n_ref, B, gin, 1) timbre vector of each reference."""
    ge: Tensor
    """(B, gin, 1) their mean."""
    quantized_upsampled: Tensor
    """(B, 768, 2*T25) codebook vectors at 50 Hz."""
    x: Tensor
    """(B, hidden, T) prior encoder output (after speed change)."""
    m_p: Tensor
    """(B, inter, T) prior mean."""
    logs_p: Tensor
    """(B, inter, T) prior log-std."""
    y_mask: Tensor
    """(B, 1, T) frame mask."""
    z_p: Tensor
    """(B, inter, T) prior sample (flow input)."""
    z: Tensor
    """(B, inter, T) flow output (decoder input before masking)."""


class SynthesizerTrn(nn.Module):
    """SoVITS v1/v2 generator without ``enc_q``; build with :meth:`from_checkpoint`."""

    def __init__(self, cfg: SovitsConfig, decoder: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc_p = TextEncoder(cfg)
        # decoder=False: a prior-only model (the gsv-sovits stage, whose vocoder stage holds the HiFi-GAN)
        self.dec: Generator | None = Generator(cfg.hifigan) if decoder else None
        # Official: ResidualCouplingBlock(inter, hidden, 5, 1, 4, gin_channels=gin).
        self.flow = ResidualCouplingBlock(
            cfg.inter_channels, cfg.hidden_channels, 5, 1, 4, gin_channels=cfg.gin_channels
        )
        self.ref_enc = MelStyleEncoder(cfg.ref_bins, style_vector_dim=cfg.gin_channels)
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, 2, stride=2)
        self.quantizer = ResidualVectorQuantizer(dimension=SSL_DIM, n_q=1, bins=1024)

    @property
    def decoder(self) -> Generator:
        """The HiFi-GAN ``dec``; a prior-only model (``decoder=False``) has none and says so."""
        if self.dec is None:
            raise ValueError("this SoVITS model was built without its decoder (from_checkpoint(..., decoder=False))")
        return self.dec

    @classmethod
    def from_checkpoint(cls, ckpt: SovitsCheckpoint, decoder: bool = True) -> SynthesizerTrn:
        """Build from the checkpoint config and load its weights (fp16 -> float32), eval mode.

        The modules are built on the ``meta`` device and take the checkpoint's tensors as they are
        loaded (no random initialisation that the weights then overwrite: half of a cold load).
        ``decoder=False`` leaves out the HiFi-GAN ``dec`` (its ``dec.*`` entries are not read): the
        prior alone, for a caller that decodes with a separate vocoder."""
        cfg = SovitsConfig.from_checkpoint_config(ckpt.config, ckpt.version)
        model = build_unset(lambda: cls(cfg, decoder))
        skip = ("enc_q.",) if decoder else ("enc_q.", "dec.")
        weights = {k: v for k, v in ckpt.weights.items() if not k.startswith(skip)}
        model.load_official(weights, what=str(ckpt.path or "SoVITS checkpoint"), assign=True)
        return model

    def load_official(self, weights: dict[str, Tensor], what: str = "SoVITS checkpoint", assign: bool = False) -> None:
        """Strictly load an official state dict (weight-norm pairs are folded on the way in); ``assign``:
        into a model built by :func:`anchorvoice.engine.state_dicts.build_unset`."""
        expected = official_key_shapes(self)
        check_keys(set(expected), set(weights), what)
        bad = [k for k, s in expected.items() if tuple(weights[k].shape) != s]
        if bad:
            k = bad[0]
            raise CorruptCheckpointError(
                f"{what}: {k} has shape {tuple(weights[k].shape)}, the config implies {expected[k]} "
                f"({len(bad)} mismatched tensors); the file's weights and config disagree"
            )
        if assign:
            load_assigned(self, weights, what)
        else:
            self.load_state_dict(dict(weights), strict=True)
        self.float().eval().requires_grad_(False)

    def project_ssl(self, ssl: Tensor) -> Tensor:
        """(B, 768, T50) HuBERT features -> (B, 768, T50 // 2) quantizer input."""
        return self.ssl_proj(ssl)

    def extract_latent(self, ssl: Tensor) -> Tensor:
        """(B, 768, T50) HuBERT features -> semantic codes (B, n_q, T50 // 2) int64."""
        codes = self.quantizer.encode(self.project_ssl(ssl))  # (n_q, B, T)
        return codes.transpose(0, 1)

    def reference_ge(self, refer: Tensor) -> Tensor:
        """One reference spectrogram (B, bins, T) -> ``ge`` (B, gin, 1)."""
        mask = torch.ones(refer.shape[0], 1, refer.shape[2], dtype=refer.dtype)
        return self.ref_enc(refer[:, : self.cfg.ref_bins] * mask, mask)

    def infer_latent(
        self,
        codes: Tensor,
        text: Tensor,
        refers: list[Tensor] | None = None,
        noise_scale: float = 0.5,
        speed: float = 1.0,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        ge: Tensor | None = None,
    ) -> PriorTrace:
        """Everything before the decoder. ``codes`` (1, n_q, T25), ``text`` (1, P) phone ids.

        Timbre: ``refers`` (each (1, bins, T)) or a precomputed ``ge`` (B, gin, 1). Noise: ``noise``
        (shape of ``m_p``) if given, else ``torch.randn`` with ``generator`` (the official call
        draws ``torch.randn_like(m_p)`` from the global RNG).
        """
        if ge is None:
            if not refers:
                raise ReferenceAudioError(
                    "SoVITS decode needs at least one reference spectrogram (give the voice a reference clip)"
                )
            ge_per_ref = torch.stack([self.reference_ge(r) for r in refers], 0)
            ge = ge_per_ref.mean(0)
        else:
            ge_per_ref = ge.unsqueeze(0)
        t50 = codes.size(2) * 2
        quantized = self.quantizer.decode(codes)  # (B, 768, T25)
        quantized = F.interpolate(quantized, size=t50, mode="nearest")
        y_mask = torch.ones(codes.size(0), 1, t50, dtype=quantized.dtype)
        text_mask = torch.ones(text.size(0), 1, text.size(-1), dtype=quantized.dtype)
        x, m_p, logs_p, y_mask = self.enc_p(quantized, y_mask, text, text_mask, ge, speed)
        if noise is None:
            noise = torch.randn(m_p.shape, generator=generator, dtype=m_p.dtype)
        elif noise.shape != m_p.shape:
            raise ValueError(f"injected noise has shape {tuple(noise.shape)}, the prior is {tuple(m_p.shape)}")
        z_p = m_p + noise * torch.exp(logs_p) * noise_scale
        z = self.flow.reverse(z_p, y_mask, g=ge)
        return PriorTrace(ge_per_ref, ge, quantized, x, m_p, logs_p, y_mask, z_p, z)

    def decode(
        self,
        codes: Tensor,
        text: Tensor,
        refers: list[Tensor],
        noise_scale: float = 0.5,
        speed: float = 1.0,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The official ``decode``: -> audio (B, 1, T * hop) at 32 kHz."""
        dec = self.decoder
        tr = self.infer_latent(codes, text, refers, noise_scale, speed, noise, generator)
        return dec(tr.z * tr.y_mask, g=tr.ge)
