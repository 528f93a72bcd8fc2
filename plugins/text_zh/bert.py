"""Chinese BERT features for the GPT stage (chinese-roberta-wwm-ext-large layout), own implementation.

GPT-SoVITS feeds its GPT (T2S) stage 1024-d BERT features per phoneme for Chinese text and zeros for
other languages (official ``inference_webui.get_bert_feature`` / ``get_bert_inf``): the normalised
text is tokenised one character per token, run through ``hfl/chinese-roberta-wwm-ext-large``
(``AutoModelForMaskedLM``, ``output_hidden_states=True``), ``hidden_states[-3]`` is taken, [CLS] and
[SEP] are dropped, and each character's vector is repeated ``word2ph[i]`` times -> (1024, P).

This module reads the HuggingFace folder (``config.json``, ``vocab.txt``, ``pytorch_model.bin`` or
``model.safetensors``) with parameter names as HuggingFace's ``BertModel`` defines them (with or
without the ``bert.`` prefix of the masked-LM checkpoint; old ``gamma``/``beta`` LayerNorm names
accepted) and never unpickles code (``torch.load(weights_only=True)``). Only the layers up to
``hidden_states[-3]`` are run: the last two layers do not change the features.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from anchorvoice.errors import CheckpointError, CorruptCheckpointError, StageError
from anchorvoice.frames import FloatArray


@dataclass
class BertConfig:
    """The fields of a HuggingFace BERT ``config.json`` this implementation uses."""

    vocab_size: int = 21128
    """Token vocabulary size (21128 for the Chinese BERT/RoBERTa vocab)."""
    hidden_size: int = 1024
    """Width of every layer (1024 for the large model GPT-SoVITS uses)."""
    num_hidden_layers: int = 24
    """Transformer layers."""
    num_attention_heads: int = 16
    """Attention heads per layer."""
    intermediate_size: int = 4096
    """Feed-forward width."""
    max_position_embeddings: int = 512
    """Longest token sequence, [CLS] and [SEP] included."""
    type_vocab_size: int = 2
    """Segment (token type) vocabulary."""
    layer_norm_eps: float = 1e-12
    """LayerNorm epsilon."""

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("hidden_act", "gelu") != "gelu":
            raise CheckpointError(f"{path}: hidden_act {data['hidden_act']!r} is not supported (only gelu)")
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)


class _Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids: Tensor) -> Tensor:  # ids (B, T) -> (B, T, H)
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, H)
        b, t, h = x.shape
        d = h // self.heads

        def split(y: Tensor) -> Tensor:  # (B, T, H) -> (B, nh, T, d)
            return y.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)  # (B, nh, T, T)
        return (att @ v).transpose(1, 2).reshape(b, t, h)


class _DenseNorm(nn.Module):
    """Projection + residual + LayerNorm (BertSelfOutput / BertOutput)."""

    def __init__(self, n_in: int, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _DenseNorm(cfg.hidden_size, cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.self(x), x)


class _Intermediate(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.gelu(self.dense(x))  # exact (erf) gelu = HF "gelu"


class _Layer(nn.Module):
    """Post-LN transformer layer with HF BertLayer parameter names."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = _Attention(cfg)
        self.intermediate = _Intermediate(cfg)
        self.output = _DenseNorm(cfg.intermediate_size, cfg)

    def forward(self, x: Tensor) -> Tensor:
        a = self.attention(x)
        return self.output(self.intermediate(a), a)


class _Encoder(nn.Module):
    def __init__(self, cfg: BertConfig, n_layers: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(n_layers))


class BertBody(nn.Module):
    """Embeddings + the first ``n_layers`` encoder layers; returns every hidden state."""

    def __init__(self, cfg: BertConfig, n_layers: int) -> None:
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg, n_layers)

    def forward(self, ids: Tensor) -> list[Tensor]:
        states = [self.embeddings(ids)]
        for layer in self.encoder.layer:
            states.append(layer(states[-1]))
        return states


def _read_state_dict(folder: Path) -> dict[str, Tensor]:
    st, pt = folder / "model.safetensors", folder / "pytorch_model.bin"
    try:
        if st.is_file():
            from safetensors.torch import load_file

            state = load_file(str(st))
        elif pt.is_file():
            state = torch.load(pt, map_location="cpu", weights_only=True)
        else:
            raise CheckpointError(
                f"no model.safetensors or pytorch_model.bin in {folder} (point bert_path at the "
                "chinese-roberta-wwm-ext-large folder of GPT-SoVITS' pretrained_models)"
            )
    except CheckpointError:
        raise
    except Exception as exc:
        raise CorruptCheckpointError(f"cannot read BERT weights in {folder}: {type(exc).__name__}: {exc}") from None
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = key.removeprefix("bert.").replace("LayerNorm.gamma", "LayerNorm.weight")
        out[name.replace("LayerNorm.beta", "LayerNorm.bias")] = value
    return out


class ChineseBert:
    """Tokenizer + BERT body of one HuggingFace folder; :meth:`features` gives (H, P) per-phone features."""

    def __init__(self, folder: str | Path, device: str = "cpu") -> None:
        self.folder = Path(folder)
        for name in ("config.json", "vocab.txt"):
            if not (self.folder / name).is_file():
                raise CheckpointError(f"BERT folder {self.folder} has no {name} (expected a HuggingFace model folder)")
        self.config = BertConfig.from_json(self.folder / "config.json")
        if self.config.num_hidden_layers < 2:
            raise CheckpointError(f"{self.folder}: hidden_states[-3] needs at least 2 layers")
        vocab = (self.folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        self.vocab = {tok: i for i, tok in enumerate(vocab)}
        for special in ("[CLS]", "[SEP]", "[UNK]"):
            if special not in self.vocab:
                raise CheckpointError(f"{self.folder}/vocab.txt lacks {special}")
        # hidden_states has L + 1 entries (embeddings, then each layer): [-3] is after layer L - 2.
        self.model = BertBody(self.config, self.config.num_hidden_layers - 2)
        state = _read_state_dict(self.folder)
        wanted = self.model.state_dict()
        missing = sorted(k for k in wanted if k not in state)
        if missing:
            raise CorruptCheckpointError(
                f"BERT weights in {self.folder} lack {len(missing)} tensors, e.g. {missing[:3]}"
            )
        for key, ref in wanted.items():
            if state[key].shape != ref.shape:
                raise CorruptCheckpointError(
                    f"{self.folder}: {key} has shape {tuple(state[key].shape)}, config says {tuple(ref.shape)}"
                )
        self.model.load_state_dict({k: state[k].float() for k in wanted})
        self.model.eval().to(device)
        self.device = device

    def token_ids(self, text: str) -> list[int]:
        """[CLS], one id per character (lower-cased if needed, else [UNK]), [SEP]."""
        unk = self.vocab["[UNK]"]
        ids = [self.vocab.get(ch, self.vocab.get(ch.lower(), unk)) for ch in text]
        return [self.vocab["[CLS]"], *ids, self.vocab["[SEP]"]]

    @torch.no_grad()
    def features(self, text: str, word2ph: list[int]) -> FloatArray:
        """(hidden, sum(word2ph)) float32: each character's hidden_states[-3] vector, per phone."""
        if len(word2ph) != len(text):
            raise StageError(
                f"BERT features need one word2ph entry per character: {len(word2ph)} for {len(text)} characters"
            )
        # BERT reads at most max_position_embeddings - 2 characters; a longer text (numbers grow when
        # spelled out) is read in consecutive windows instead of failing.
        window = self.config.max_position_embeddings - 2
        pieces = []
        for start in range(0, len(text), window):
            ids = torch.tensor([self.token_ids(text[start : start + window])], device=self.device)
            pieces.append(self.model(ids)[-1][0, 1:-1].float().cpu())  # (T, H) without [CLS]/[SEP]
        hidden = torch.cat(pieces, dim=0)
        reps = torch.tensor(word2ph, dtype=torch.long)
        per_phone = torch.repeat_interleave(hidden, reps, dim=0)  # (P, H)
        return np.ascontiguousarray(per_phone.T.numpy(), dtype=np.float32)
