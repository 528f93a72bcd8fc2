"""GPT-SoVITS v2 text-to-semantic model (T2S, the "GPT" of GPT-SoVITS).

Phonemes (+ projected BERT features) and the reference's semantic tokens go in; logits over the
semantic vocabulary (1024 codes + EOS) come out, one token at a time. The module tree keeps the
official parameter names (``GPT_SoVITS/AR/models/t2s_model.py`` at commit 48b1a01) so that the
``weight`` dict of a real s1 ``.ckpt`` (keys ``model.<name>``) loads strictly:

* ``bert_proj``: Linear(1024 -> embedding_dim), added to the phone embedding;
* ``ar_text_embedding.word_embeddings`` / ``ar_audio_embedding.word_embeddings``: token tables;
* ``ar_text_position.alpha`` / ``ar_audio_position.alpha``: learned scalar on a sinusoidal table
  (official ``SinePositionalEmbedding(scale=False, alpha=True)``: x * 1 + alpha * pe);
* ``h.layers.<i>``: post-LN transformer layers (``self_attn.in_proj_*`` packs q, k, v as
  ``torch.nn.MultiheadAttention`` does; ReLU FFN of width 4 * hidden_dim; LayerNorm eps 1e-5);
* ``ar_predict_layer``: Linear(hidden_dim -> vocab_size), no bias.

The fast cached forward lives in :mod:`anchorvoice.plugins.gsv.kv_cache`; decoding rules in
:mod:`anchorvoice.plugins.gsv.t2s_sampling`. ``forward_full`` here is the plain uncached reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.engine.state_dicts import build_unset, check_keys, load_assigned
from anchorvoice.errors import CorruptCheckpointError, UnsupportedCheckpointError
from anchorvoice.plugins.gsv.checkpoints import load_gpt

BERT_DIM = 1024
"""Official ``bert_proj = nn.Linear(1024, embedding_dim)``: chinese-roberta-wwm-ext-large width, hard-coded."""

SEMANTIC_HZ = 50
"""Official TTS.py ``configs.hz = 50``: early_stop_num = hz * data.max_sec."""


@dataclass
class T2SConfig:
    """Sizes of a T2S model; names follow the official ``config['model']`` section."""

    hidden_dim: int = 512
    """Transformer width (official ``hidden_dim``); the FFN is 4x this (``linear_units`` is unused)."""
    embedding_dim: int = 512
    """Token-embedding width (official ``embedding_dim``); must equal hidden_dim."""
    head: int = 16
    """Attention heads (official ``head``)."""
    n_layer: int = 24
    """Transformer layers (official ``n_layer``)."""
    vocab_size: int = 1025
    """Semantic vocabulary including EOS (official ``vocab_size``)."""
    phoneme_vocab_size: int = 732
    """Phoneme-embedding rows: 732 for v2, 512 for v1 checkpoints."""
    eos: int = 1024
    """End-of-sequence id (official ``EOS``); always vocab_size - 1."""
    max_sec: int = 54
    """``data.max_sec`` of the training config (s1longer-v2.yaml: 54); early stop = 50 * max_sec."""

    @property
    def early_stop_num(self) -> int:
        """Official generation limit in tokens (TTS.py: ``hz * max_sec``)."""
        return SEMANTIC_HZ * self.max_sec

    @classmethod
    def from_checkpoint_config(cls, config: Mapping[str, Any]) -> T2SConfig:
        """Read an s1 checkpoint's ``config`` dict (sections ``model`` and ``data``)."""
        model = config.get("model") if isinstance(config, Mapping) else None
        if not isinstance(model, Mapping):
            raise CorruptCheckpointError("GPT checkpoint config has no 'model' section (is this an s1 .ckpt?)")
        values: dict[str, int] = {}
        for key in ("hidden_dim", "embedding_dim", "head", "n_layer", "vocab_size", "phoneme_vocab_size", "EOS"):
            if not isinstance(model.get(key), int):
                raise CorruptCheckpointError(
                    f"GPT checkpoint config 'model.{key}' is missing or not an integer (got {model.get(key)!r})"
                )
            values[key] = int(model[key])
        data = config.get("data")
        max_sec = data.get("max_sec", cls.max_sec) if isinstance(data, Mapping) else cls.max_sec
        cfg = cls(
            hidden_dim=values["hidden_dim"],
            embedding_dim=values["embedding_dim"],
            head=values["head"],
            n_layer=values["n_layer"],
            vocab_size=values["vocab_size"],
            phoneme_vocab_size=values["phoneme_vocab_size"],
            eos=values["EOS"],
            max_sec=int(max_sec),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Refuse sizes the official model cannot have."""
        if self.eos != self.vocab_size - 1:
            raise CorruptCheckpointError(f"GPT config EOS={self.eos} must be vocab_size - 1 = {self.vocab_size - 1}")
        if self.embedding_dim != self.hidden_dim:
            raise UnsupportedCheckpointError(
                f"GPT config embedding_dim={self.embedding_dim} differs from hidden_dim={self.hidden_dim}; "
                "only equal widths are supported (as in every official config)"
            )
        if self.head <= 0 or self.hidden_dim % self.head:
            raise CorruptCheckpointError(
                f"GPT config hidden_dim={self.hidden_dim} is not divisible by head={self.head}"
            )


class TokenEmbedding(nn.Module):
    """Official ``TokenEmbedding``: only ``word_embeddings`` holds weights (dropout 0 at inference)."""

    def __init__(self, dim: int, vocab: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    def forward(self, ids: Tensor) -> Tensor:
        return self.word_embeddings(ids)


class SinePositionalEmbedding(nn.Module):
    """``x + alpha * pe[start:start+T]``; pe interleaves sin (even dims) and cos (odd dims).

    The table is computed in float32 exactly as the official ``extend_pe`` does and is not a
    checkpoint entry; it grows on demand instead of the official fixed 4000 rows.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))
        self._table = torch.zeros(0, dim)

    def table(self, length: int, device: torch.device) -> Tensor:
        """(length, dim) float32 sinusoid rows 0..length-1."""
        if self._table.shape[0] < length or self._table.device != device:
            rows = max(length, 2 * self._table.shape[0], 512)
            position = torch.arange(0, rows, dtype=torch.float32).unsqueeze(1)
            div_term = torch.exp(torch.arange(0, self.dim, 2, dtype=torch.float32) * -(math.log(10000.0) / self.dim))
            pe = torch.zeros(rows, self.dim)
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            self._table = pe.to(device)
        return self._table[:length]

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        # x: (B, T, D); positions start .. start+T-1
        pe = self.table(start + x.shape[1], x.device)[start:]
        return x + self.alpha.to(x.dtype) * pe.to(x.dtype)


class SelfAttention(nn.Module):
    """Parameter layout of ``torch.nn.MultiheadAttention`` (packed ``in_proj``: q rows, k rows, v rows)."""

    dropout_p: float = 0.0
    """Dropout on the attention weights in training mode (the official trainer's layers use 0.1)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: Tensor, attend: Tensor | None) -> Tensor:
        # x: (B, T, D); attend: bool, True = may attend, broadcastable to (B, H, T, T)
        b, t, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, hd)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                             dropout_p=self.dropout_p if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class T2SLayer(nn.Module):
    """Post-LN encoder layer (official ``norm_first=False``): x = LN1(x + SA(x)); x = LN2(x + FFN(x))."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, 4 * dim)
        self.linear2 = nn.Linear(4 * dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: Tensor, attend: Tensor | None) -> Tensor:
        x = self.norm1(x + self.self_attn(x, attend))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class T2SStack(nn.Module):
    """Official ``h`` (a TransformerEncoder): only ``layers`` holds weights."""

    def __init__(self, dim: int, heads: int, n_layer: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(T2SLayer(dim, heads) for _ in range(n_layer))


class Text2SemanticDecoder(nn.Module):
    """The T2S network. Shapes: phones (B, P), bert (B, 1024, P), tokens (B, T), hidden (B, L, D)."""

    def __init__(self, config: T2SConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        d = config.hidden_dim
        self.bert_proj = nn.Linear(BERT_DIM, config.embedding_dim)
        self.ar_text_embedding = TokenEmbedding(config.embedding_dim, config.phoneme_vocab_size)
        self.ar_text_position = SinePositionalEmbedding(config.embedding_dim)
        self.ar_audio_embedding = TokenEmbedding(config.embedding_dim, config.vocab_size)
        self.ar_audio_position = SinePositionalEmbedding(config.embedding_dim)
        self.h = T2SStack(d, config.head, config.n_layer)
        self.ar_predict_layer = nn.Linear(d, config.vocab_size, bias=False)

    def embed_text(self, phones: Tensor, bert: Tensor) -> Tensor:
        """(B, P) ids + (B, 1024, P) features -> (B, P, D) with text positions 0..P-1."""
        x = self.ar_text_embedding(phones) + self.bert_proj(bert.transpose(1, 2))
        return self.ar_text_position(x)

    def embed_audio(self, tokens: Tensor, start: int = 0) -> Tensor:
        """(B, T) semantic ids -> (B, T, D) with audio positions start..start+T-1."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens), start)

    def forward_full(self, xy: Tensor, attend: Tensor | None) -> Tensor:
        """Uncached reference forward of the whole sequence: (B, L, D) -> logits (B, L, V)."""
        for layer in self.h.layers:
            xy = layer(xy, attend)
        return self.ar_predict_layer(xy)


def prefix_mask(text_len: int, audio_len: int, device: torch.device | None = None) -> Tensor:
    """(L, L) bool, True = may attend: text rows see all text only; audio rows see text + earlier audio.

    Official ``infer_panel_naive`` first-step mask (inverted: the official marks blocked cells).
    """
    total = text_len + audio_len
    attend = torch.ones(total, total, dtype=torch.bool, device=device)
    attend[:text_len, text_len:] = False
    attend[text_len:, text_len:] = torch.ones(audio_len, audio_len, dtype=torch.bool, device=device).tril()
    return attend


def load_t2s_weights(config: T2SConfig, weights: Mapping[str, Tensor]) -> Text2SemanticDecoder:
    """Build a float32 model from an s1 ``weight`` dict, strictly.

    Keys may carry the Lightning wrapper's ``model.`` prefix (as stored) or not (as
    :func:`anchorvoice.plugins.gsv.checkpoints.load_gpt` returns them). Missing, unexpected or mis-shaped entries
    raise :class:`CorruptCheckpointError` naming them.
    """
    model = build_unset(lambda: Text2SemanticDecoder(config))  # no random init: the weights replace it
    own = model.state_dict()
    state = {key.removeprefix("model."): value for key, value in weights.items()}
    check_keys(set(own), set(state), "GPT (s1) checkpoint")
    for name, value in state.items():
        if tuple(value.shape) != tuple(own[name].shape):
            raise CorruptCheckpointError(
                f"GPT checkpoint entry {name} has shape {tuple(value.shape)}, expected "
                f"{tuple(own[name].shape)} for the sizes in its config"
            )
    # fp16 -> float32 upcast on copy, as the official loader does
    load_assigned(model, state, "GPT (s1) checkpoint")
    return model.eval().requires_grad_(False)


def load_t2s(path: str | Path) -> Text2SemanticDecoder:
    """Load an official s1 ``.ckpt`` through the safe loader into a float32 eval-mode model."""
    ckpt = load_gpt(path)
    return load_t2s_weights(T2SConfig.from_checkpoint_config(ckpt.config), ckpt.weights)
