"""HuBERT base (chinese-hubert-base) content encoder: 16 kHz waveform -> 768-d features at 50 Hz.

An own implementation of the HuggingFace ``HubertModel`` architecture GPT-SoVITS uses
(``feature_extractor/cnhubert.py``), with the exact parameter names of that class so that the
official ``pytorch_model.bin`` / ``model.safetensors`` load strictly. Why not ``transformers``:
importing it pulls tokenizers, huggingface_hub, regex, safetensors glue and its lazy-module machinery
(seconds of import time and hundreds of MB installed) for ~200 lines of model code, and its
``from_pretrained`` would run ``torch.load`` paths we cannot audit; here the weights come through
:mod:`anchorvoice.plugins.gsv.checkpoints` (no pickled code runs).

Architecture (config.json of chinese-hubert-base: ``feat_extract_norm: group``,
``do_stable_layer_norm: false``, ``conv_bias: false``, ``feat_proj_layer_norm: true``, see
``shared/gsv_reference/README.md`` 3.1/3.3):

* feature encoder: 7 convs (kernels [10,3,3,3,3,2,2], strides [5,2,2,2,2,2,2] = 320x, 50 Hz at
  16 kHz), GroupNorm with one group per channel after the first conv only, GELU after each;
* feature projection: LayerNorm(512) then Linear(512 -> 768);
* convolutional positional embedding: grouped Conv1d (kernel 128, 16 groups, padding 64) with
  weight norm over the kernel axis (``weight_g`` (1, 1, 128)), the last frame dropped for an even
  kernel ('same' length), GELU; added to the features, then LayerNorm;
* 12 post-LN transformer layers (attention + residual, LayerNorm, GELU FFN + residual, LayerNorm).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.engine.state_dicts import build_unset, check_keys, load_assigned
from anchorvoice.errors import CorruptCheckpointError, UnsupportedCheckpointError
from anchorvoice.plugins.cpu_kernels import InferencePrecision, Linear, check_precision, linear
from anchorvoice.plugins.gsv.checkpoints import HubertCheckpoint
from anchorvoice.plugins.gsv.hubert_fast import (
    conv_stack,
    fft_same_conv,
    fold_first_norm,
    grouped_spectrum,
    overlap_save_size,
    receptive_field,
    tap_matrix,
)
from anchorvoice.plugins.gsv.modules.derived import DerivedWeights

# Newer transformers saves weight norm through torch.nn.utils.parametrizations.
_PARAMETRIZED = {
    "encoder.pos_conv_embed.conv.parametrizations.weight.original0": "encoder.pos_conv_embed.conv.weight_g",
    "encoder.pos_conv_embed.conv.parametrizations.weight.original1": "encoder.pos_conv_embed.conv.weight_v",
}


@dataclass
class HubertConfig:
    """Sizes of a HuBERT model, read from its HuggingFace ``config.json``."""

    conv_dim: list[int] = field(default_factory=lambda: [512] * 7)
    """Output channels of each feature-encoder conv."""
    conv_kernel: list[int] = field(default_factory=lambda: [10, 3, 3, 3, 3, 2, 2])
    """Kernel size of each feature-encoder conv."""
    conv_stride: list[int] = field(default_factory=lambda: [5, 2, 2, 2, 2, 2, 2])
    """Stride of each feature-encoder conv (product 320: 50 Hz at 16 kHz)."""
    conv_bias: bool = False
    """Whether the feature-encoder convs have a bias."""
    hidden_size: int = 768
    """Transformer width (= output feature size)."""
    num_hidden_layers: int = 12
    """Transformer layers."""
    num_attention_heads: int = 12
    """Attention heads per layer."""
    intermediate_size: int = 3072
    """FFN inner width."""
    num_conv_pos_embeddings: int = 128
    """Kernel of the positional convolution."""
    num_conv_pos_embedding_groups: int = 16
    """Groups of the positional convolution."""
    layer_norm_eps: float = 1e-5
    """Epsilon of every LayerNorm (GroupNorm keeps torch's default 1e-5, as HF does)."""
    feat_proj_layer_norm: bool = True
    """LayerNorm before the feature projection."""

    @classmethod
    def from_json(cls, cfg: dict[str, Any]) -> HubertConfig:
        """Validate the fields this implementation supports; refuse other HuBERT variants by name."""
        if cfg.get("feat_extract_norm", "group") != "group" or cfg.get("do_stable_layer_norm", False):
            raise UnsupportedCheckpointError(
                "HuBERT variant with layer-norm feature extractor / stable layer norm (HuBERT large) is not "
                "supported; use chinese-hubert-base as GPT-SoVITS v2 does"
            )
        for key in ("feat_extract_activation", "hidden_act"):
            if cfg.get(key, "gelu") != "gelu":
                raise UnsupportedCheckpointError(f"HuBERT config {key}={cfg[key]!r}; only 'gelu' is supported")
        if cfg.get("conv_pos_batch_norm", False):
            raise UnsupportedCheckpointError("HuBERT config conv_pos_batch_norm=true is not supported")
        kw: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in cfg:
                kw[name] = cfg[name]
        conf = cls(**kw)
        if not (len(conf.conv_dim) == len(conf.conv_kernel) == len(conf.conv_stride)):
            raise CorruptCheckpointError("HuBERT config.json: conv_dim, conv_kernel, conv_stride differ in length")
        if conf.hidden_size % conf.num_attention_heads:
            raise CorruptCheckpointError("HuBERT config.json: hidden_size is not a multiple of num_attention_heads")
        return conf


class _ConvLayer(nn.Module):
    """One feature-encoder conv (+ GroupNorm on the first), GELU; ``forward`` is the plain (B, C, T) path."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bias: bool, group_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=bias)
        if group_norm:
            self.layer_norm = nn.GroupNorm(c_out, c_out, affine=True)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, T_in) -> (B, C_out, T_out)
        x = self.conv(x)
        if hasattr(self, "layer_norm"):
            x = self.layer_norm(x)
        return F.gelu(x)


class _FeatureEncoder(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        chans = [1, *c.conv_dim]
        self.conv_layers = nn.ModuleList(
            _ConvLayer(chans[i], chans[i + 1], c.conv_kernel[i], c.conv_stride[i], c.conv_bias, i == 0)
            for i in range(len(c.conv_dim))
        )
        self._taps: DerivedWeights[list[Tensor]] = DerivedWeights()

    def forward(self, wav: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """(B, N) -> (B, T, C); the fast path's layers after the first in ``dtype`` (default: the input's).

        Inference (grad disabled): :func:`hubert_fast.conv_stack` with the first GroupNorm folded
        into the first conv, in (B, T, C) layout (1.4x faster than these modules on 10 s, 2 threads,
        ``bench/hubert_rtf.py --parts``; same sums to ~1e-6). With grad enabled the plain module path
        runs on purpose: the fast path writes into preallocated buffers, which autograd cannot follow.
        """
        if torch.is_grad_enabled():
            x = wav[:, None, :]  # (B, 1, N)
            for layer in self.conv_layers:
                x = layer(x)
            return x.transpose(1, 2)
        layers: list[_ConvLayer] = list(self.conv_layers)  # type: ignore[arg-type]
        folded = fold_first_norm(wav, layers[0].conv, layers[0].layer_norm)
        convs = [layer.conv for layer in layers[1:]]
        dtype = dtype or wav.dtype
        taps = self._taps.get(
            [c.weight for c in convs], lambda: [tap_matrix(c.weight.detach()).to(dtype) for c in convs], dtype
        )
        return conv_stack(wav, folded, layers[0].conv, convs, taps=taps, dtype=dtype)


class _FeatureProjection(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        if c.feat_proj_layer_norm:
            self.layer_norm = nn.LayerNorm(c.conv_dim[-1], eps=c.layer_norm_eps)
        self.projection = Linear(c.conv_dim[-1], c.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        if hasattr(self, "layer_norm"):
            x = self.layer_norm(x)
        return self.projection(x)


class _PositionalConv(nn.Module):
    """Grouped conv positional embedding; stored weight-normed, folded to one weight at load."""

    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        k = c.num_conv_pos_embeddings
        self.conv = nn.Conv1d(c.hidden_size, c.hidden_size, k, padding=k // 2, groups=c.num_conv_pos_embedding_groups)
        self.conv._register_load_state_dict_pre_hook(self._fold_weight_norm)
        self.drop_last = k % 2 == 0  # HF HubertSamePadLayer
        self._spec: DerivedWeights[Tensor] = DerivedWeights()

    @staticmethod
    def _fold_weight_norm(state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
        g, v = prefix + "weight_g", prefix + "weight_v"
        if g in state_dict and v in state_dict:
            v_t = state_dict.pop(v).float()
            g_t = state_dict.pop(g).float()
            # weight_norm(dim=2): one magnitude per kernel tap, norm over (out, in/groups).
            state_dict[prefix + "weight"] = torch._weight_norm(v_t, g_t, 2)

    def _spectrum(self, n: int) -> Tensor:
        """The weight's (G, F, C/G, C/G) spectrum for FFT length ``n``, kept in step with the weight;
        16 x 97 x 48 x 48 complex64 = 29 MB for chinese-hubert-base."""
        w = self.conv.weight
        return self._spec.get([w], lambda: grouped_spectrum(w.detach(), self.conv.groups, n), n, w.dtype, w.device)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C) GELU(conv(x)).

        Inference (grad disabled): overlap-save FFT convolution (:func:`hubert_fast.fft_same_conv`,
        ~5x faster than the grouped CPU conv for 500 frames; max error ~3e-7 of the output scale
        against float64, no more than the direct float32 conv's own). With grad enabled the plain
        ``nn.Conv1d`` runs on purpose, as the cached spectrum is detached.
        """
        k = self.conv.kernel_size[0]
        if torch.is_grad_enabled():
            y = self.conv(x.transpose(1, 2))
            if self.drop_last:
                y = y[:, :, :-1]
            return F.gelu(y.transpose(1, 2))
        n = overlap_save_size(k)
        return F.gelu(fft_same_conv(x, self._spectrum(n), self.conv.bias, k, n))


class _Attention(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.k_proj, self.v_proj = Linear(d, d), Linear(d, d)
        self.q_proj, self.out_proj = Linear(d, d), Linear(d, d)
        self._fused: DerivedWeights[tuple[Tensor, Tensor]] = DerivedWeights()

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        projs = (self.q_proj, self.k_proj, self.v_proj)
        if self.training or torch.is_grad_enabled():
            return projs[0](x), projs[1](x), projs[2](x)
        # Inference: one (3D x D) GEMM instead of three (measured ~1.6x faster on 500 frames,
        # identical sums), on a fused copy (+3 D^2 floats per layer) kept in step with the weights.
        params = [t for m in projs for t in (m.weight, m.bias)]
        w, b = self._fused.get(
            params, lambda: (torch.cat([m.weight for m in projs]), torch.cat([m.bias for m in projs]))
        )
        q, k, v = linear(x, w, b).chunk(3, dim=-1)
        return q, k, v

    def forward(self, x: Tensor, segments: list[int] | None = None) -> Tensor:  # (B, T, D)
        """``segments``: lengths of the utterances packed one after another along T (B = 1); each
        attends only to itself."""
        b, t, d = x.shape
        hs = d // self.heads

        def split(y: Tensor) -> Tensor:
            return y.reshape(y.shape[0], y.shape[1], self.heads, hs).transpose(1, 2)  # (B, nh, T, hs)

        q, k, v = self._qkv(x)
        if segments is None:
            out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        else:
            ends = list(itertools.accumulate(segments))
            out = torch.cat([F.scaled_dot_product_attention(split(q[:, a:e]), split(k[:, a:e]), split(v[:, a:e]))
                             for a, e in zip([0, *ends[:-1]], ends, strict=True)], 2)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class _FeedForward(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        self.intermediate_dense = Linear(c.hidden_size, c.intermediate_size)
        self.output_dense = Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        inner = self.intermediate_dense
        return self.output_dense(linear(x, inner.weight, inner.bias, act="gelu"))


class _EncoderLayer(nn.Module):
    """Post-LN transformer layer (``do_stable_layer_norm: false``)."""

    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.feed_forward = _FeedForward(c)
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: Tensor, segments: list[int] | None = None) -> Tensor:
        x = self.layer_norm(x + self.attention(x, segments))
        return self.final_layer_norm(x + self.feed_forward(x))


class _Encoder(nn.Module):
    def __init__(self, c: HubertConfig) -> None:
        super().__init__()
        self.pos_conv_embed = _PositionalConv(c)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(_EncoderLayer(c) for _ in range(c.num_hidden_layers))

    def forward(self, x: Tensor, layers: nn.ModuleList | None = None) -> Tensor:  # (B, T, D)
        """``layers``: copies of :attr:`layers` in another dtype to run instead (the result is float32)."""
        x = x + self.pos_conv_embed(x)
        return self.run_layers(self.layer_norm(x), layers)

    def run_layers(self, x: Tensor, layers: nn.ModuleList | None = None, segments: list[int] | None = None) -> Tensor:
        """The transformer layers over ``x`` (B, T, D), after the positional conv and first LayerNorm."""
        if layers is None:
            layers = self.layers
        else:
            x = x.to(next(layers.parameters()).dtype)
        for layer in layers:
            x = layer(x, segments)
        return x.float()


class HubertModel(nn.Module):
    """HuBERT without any task head: ``forward(wav (B, N) @ 16 kHz) -> last_hidden_state (B, T, D)``.

    ``T = frames of the conv stack`` (about N / 320). The waveform is used raw, as GPT-SoVITS
    inference calls ``ssl_model.model(wav16k)`` (no Wav2Vec2FeatureExtractor normalisation).

    ``precision`` ``"bfloat16"`` (inference only, :meth:`use_precision`): the conv stack after its first
    layer and the transformer layers run in bfloat16 on a bf16 copy of their weights (built on first
    use, +half the model's size); the folded first conv, the projection, the positional conv and the
    first LayerNorm stay float32, and so does the result. Agreement with float32 on real speech is
    printed by ``bench/hubert_rtf.py``.
    """

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_extractor = _FeatureEncoder(config)
        self.feature_projection = _FeatureProjection(config)
        # Only used by SpecAugment masking in training; kept so official files load strictly.
        self.masked_spec_embed = nn.Parameter(torch.zeros(config.hidden_size))
        self.encoder = _Encoder(config)
        self.precision: InferencePrecision = "float32"
        self._low: DerivedWeights[nn.ModuleList] = DerivedWeights()

    def use_precision(self, precision: InferencePrecision) -> None:
        """``"float32"`` (exact) or ``"bfloat16"`` for inference (see the class notes)."""
        self.precision = check_precision(precision)

    def _runs_low(self) -> bool:
        """Whether this call takes the bfloat16 path (inference with precision bfloat16)."""
        return self.precision == "bfloat16" and not torch.is_grad_enabled()

    def _low_layers(self) -> nn.ModuleList:
        layers = self.encoder.layers
        return self._low.get(list(layers.parameters()), lambda: copy.deepcopy(layers).to(torch.bfloat16))

    @property
    def min_samples(self) -> int:
        """Shortest input that yields one frame (400 samples = 25 ms for the base config)."""
        return receptive_field(self.config.conv_kernel, self.config.conv_stride)[1]

    def conv_features(self, wav: Tensor) -> Tensor:
        """(B, N) 16 kHz -> (B, T, C) feature-encoder output.

        Frame t sees samples 320t .. 320t+399 only, except that the first GroupNorm normalises each
        channel with its mean and variance over all of ``wav`` (as HF does): a chunk's frames equal
        the whole signal's only with the statistics frozen, see :func:`hubert_fast.fold_first_norm`
        and :func:`hubert_fast.conv_stack` (``tests/gsv/test_hubert_fast.py``)."""
        return self.feature_extractor(wav, torch.bfloat16 if self._runs_low() else None)  # type: ignore[no-any-return]

    def encode_features(self, feats: Tensor) -> Tensor:
        """(B, T, C) conv features -> (B, T, D) last hidden state (projection, positional conv, transformer)."""
        low = self._low_layers() if self._runs_low() else None
        return self.encoder(self.feature_projection(feats.float()), low)  # type: ignore[no-any-return]

    def forward(self, wav: Tensor) -> Tensor:
        return self.encode_features(self.conv_features(wav))  # (B, T, D)

    def forward_packed(self, wavs: list[Tensor]) -> list[Tensor]:
        """Several utterances (each (N_i,) at 16 kHz) -> each one's (T_i, D) last hidden state, as
        ``forward(wav[None])[0]`` gives it (to float32 rounding), for inference.

        The conv stack, positional conv and attention run per utterance; every row-wise step (the
        projection, LayerNorms, attention projections and FFN) runs once over the rows of all of them
        stacked, so its GEMMs get hundreds of rows more than one short clip gives them, which a 2-core
        CPU runs at a markedly higher rate (``bench/hubert_rtf.py --packed``).
        """
        if torch.is_grad_enabled():
            raise RuntimeError("forward_packed is for inference: call it under torch.inference_mode()")
        enc = self.encoder
        feats = [self.conv_features(w[None])[0] for w in wavs]
        lengths = [int(f.shape[0]) for f in feats]
        proj = self.feature_projection(torch.cat(feats).float()[None])  # (1, sum T, D)
        rows = [x + enc.pos_conv_embed(x) for x in proj.split(lengths, 1)]
        x = enc.layer_norm(torch.cat(rows, 1))
        low = self._low_layers() if self._runs_low() else None
        return list(enc.run_layers(x, low, lengths)[0].split(lengths))

    def official_key_shapes(self) -> dict[str, tuple[int, ...]]:
        """Keys and shapes as HF's HubertModel stores them (legacy weight-norm names)."""
        out: dict[str, tuple[int, ...]] = {}
        for key, t in self.state_dict().items():
            if key == "encoder.pos_conv_embed.conv.weight":
                out["encoder.pos_conv_embed.conv.weight_g"] = (1, 1, t.shape[2])
                out["encoder.pos_conv_embed.conv.weight_v"] = tuple(t.shape)
            else:
                out[key] = tuple(t.shape)
        return out

    def load_official(
        self, weights: dict[str, Tensor], source: str = "HuBERT checkpoint", assign: bool = False
    ) -> None:
        """Load an HF state_dict (legacy ``weight_g``/``weight_v`` or ``parametrizations`` names) strictly;
        ``assign``: into a model built by :func:`anchorvoice.engine.state_dicts.build_unset`."""
        sd = {_PARAMETRIZED.get(k, k): v for k, v in weights.items()}
        # Files saved from HubertForCTC etc. prefix the backbone with "hubert.".
        if sd and all(k.startswith("hubert.") for k in sd):
            sd = {k.removeprefix("hubert."): v for k, v in sd.items()}
        want = self.official_key_shapes()
        check_keys(set(want), set(sd), what=source)
        bad = [f"{k} {tuple(sd[k].shape)} != {s}" for k, s in want.items() if tuple(sd[k].shape) != s]
        if bad:
            raise CorruptCheckpointError(f"{source}: shapes differ from config.json: {'; '.join(bad[:5])}")
        if assign:
            load_assigned(self, sd, source)
            return
        dtype = self.masked_spec_embed.dtype
        self.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True)


def build_hubert(ckpt: HubertCheckpoint) -> HubertModel:
    """A float32 eval-mode :class:`HubertModel` with the checkpoint's weights."""
    try:
        config = HubertConfig.from_json(ckpt.config)
        model = build_unset(lambda: HubertModel(config))  # no random init: the weights replace it
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. a size given as a string or <= 0
        raise CorruptCheckpointError(f"{ckpt.path}/config.json: unusable sizes ({exc})") from exc
    model.load_official(ckpt.weights, source=str(ckpt.path or "HuBERT checkpoint"), assign=True)
    return model.eval()
