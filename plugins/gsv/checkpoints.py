"""GPT-SoVITS model files: version tags, the phoneme-table rule, and safe loaders (no pickled code runs).

Formats (facts of the official GPT-SoVITS code, see ``shared/gsv_reference/README.md`` 1.2 / 2.1):

* SoVITS (s2) ``.pth``: ``{"weight": fp16 state_dict without enc_q.*, "config": utils.HParams or a
  plain dict, "info": "<epoch>epoch_<steps>iteration"}``. ``process_ckpt.my_save2`` overwrites the
  zip magic ``PK`` with a 2-byte version tag (``head2version`` in ``process_ckpt.py``):
  ``00`` v1, ``01`` v2, ``02`` v3, ``03`` v3 LoRA, ``04`` v4 LoRA, ``05`` v2Pro, ``06`` v2ProPlus.
* GPT (s1) ``.ckpt``: ``{"weight": fp16 state_dict with the "model." prefix, "config": dict, "info"}``.
* HuBERT: a HuggingFace folder with ``config.json`` and ``pytorch_model.bin`` or ``model.safetensors``.

Each loader also reads a voice-store blob (``<home>/blobs/<sha256>``, safetensors with the config in its
header) that :mod:`anchorvoice.plugins.gsv.model_import` made from such a file.

Weights are returned as stored (fp16 in official files): ``nn.Module.load_state_dict`` upcasts on
copy, exactly as the official loaders do, and keeping them halves peak memory while loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from anchorvoice.engine.checkpoint_unpickler import load_pickled, to_plain
from anchorvoice.engine.state_dicts import load_state_dict, tensor_dict
from anchorvoice.engine.store.blobs import blob_shapes, is_blob_file
from anchorvoice.errors import CheckpointError, CorruptCheckpointError, UnsupportedCheckpointError
from anchorvoice.plugins.gsv.model_import import checkpoint_from_blob

SOVITS_HEAD_TAGS: dict[bytes, str] = {
    b"00": "v1",
    b"01": "v2",
    b"02": "v3",
    b"03": "v3 LoRA",
    b"04": "v4 LoRA",
    b"05": "v2Pro",
    b"06": "v2ProPlus",
}
"""GPT-SoVITS ``process_ckpt.head2version``: 2-byte tag written over ``PK`` -> model version."""

SUPPORTED_SOVITS = ("v1", "v2")
"""SoVITS model versions anchorvoice can run (the v2 SynthesizerTrn family without speaker-verification)."""

# Rows of enc_p.text_embedding / ar_text_embedding per symbol table (text/symbols.py: 322,
# text/symbols2.py: 732); the official loaders pick v1 vs v2 from exactly this (README 1.2).
_V1_SOVITS_PHONES = 322
_V1_GPT_PHONES = 512


@dataclass
class SovitsCheckpoint:
    """A SoVITS (s2) generator checkpoint."""

    weights: dict[str, torch.Tensor]
    """state_dict as stored (fp16 in official files), keys as ``SynthesizerTrn`` names them."""
    config: dict[str, Any]
    """The training hyper-parameters as plain nested dicts (``utils.HParams`` converted)."""
    version: str
    """``"v1"`` or ``"v2"`` (from the text-embedding rows, as the official loaders decide)."""
    info: str = ""
    """Free text the trainer stored, e.g. ``"8epoch_96iteration"``."""
    path: Path | None = None
    """File it came from."""


@dataclass
class GptCheckpoint:
    """A GPT / T2S (s1) checkpoint."""

    weights: dict[str, torch.Tensor]
    """state_dict as stored, with the Lightning wrapper's ``model.`` prefix removed
    (keys as ``Text2SemanticDecoder`` names them, e.g. ``ar_text_embedding.word_embeddings.weight``)."""
    config: dict[str, Any]
    """The training config (``config["model"]`` holds the sizes, ``config["data"]["max_sec"]``)."""
    version: str
    """``"v1"`` (512 phoneme rows) or ``"v2"`` (732)."""
    info: str = ""
    """Free text the trainer stored, e.g. ``"GPT-e15"``."""
    path: Path | None = None
    """File it came from."""


@dataclass
class HubertCheckpoint:
    """A HuggingFace HubertModel folder."""

    config: dict[str, Any]
    """``config.json`` contents."""
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    """state_dict as stored (legacy ``weight_g``/``weight_v`` or ``parametrizations`` names kept)."""
    path: Path | None = None
    """The folder."""


def check_phoneme_vocab(s1_phoneme_vocab: int, s2_text_rows: int) -> None:
    """Refuse a GPT (s1) / SoVITS (s2) pair whose phoneme tables belong to different versions.

    v1 pairs are s1 512 rows with s2 322 rows; otherwise both must have the same number of rows
    (732 for v2). Raises :class:`CheckpointError` naming both sizes.
    """
    s2_is_v1 = s2_text_rows == _V1_SOVITS_PHONES
    ok = s1_phoneme_vocab == _V1_GPT_PHONES if s2_is_v1 else s1_phoneme_vocab == s2_text_rows
    if not ok:
        raise CheckpointError(
            f"GPT (s1) checkpoint has a phoneme vocabulary of {s1_phoneme_vocab} but the SoVITS (s2) "
            f"checkpoint's text embedding has {s2_text_rows} rows: they were trained for different "
            "GPT-SoVITS versions. Use the GPT and SoVITS files of the same voice/version."
        )


def _require_container(obj: Any, path: Path, kind: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or "weight" not in obj or "config" not in obj:
        keys = sorted(map(str, obj.keys()))[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CorruptCheckpointError(
            f"{path}: not a GPT-SoVITS {kind} file (expected 'weight' and 'config' entries, found {keys})"
        )
    return obj


def _unsupported(path: Path, version: str) -> UnsupportedCheckpointError:
    return UnsupportedCheckpointError(
        f"{path}: GPT-SoVITS {version} SoVITS model; anchorvoice supports {' and '.join(SUPPORTED_SOVITS)} "
        "SoVITS files (train or export a v2 model, or use a v2 pretrained s2G2333k.pth)"
    )


def _sovits_version(weights: dict[str, torch.Tensor], config: dict[str, Any], info: str, path: Path) -> str:
    keys = set(weights)
    # SynthesizerTrnV3 (v3/v4) has a conditional flow-matching head `cfm.*` and no HiFi-GAN `dec`.
    if any(k.startswith("cfm.") for k in keys):
        raise _unsupported(path, "v4" if info == "pretrained_s2G_v4" else "v3")
    # v2Pro adds a speaker-verification projection (`sv_emb`, `ge_to512`, `prelu`); ProPlus has
    # gin 1024 and upsample_initial_channel 768 (process_ckpt.inspect_version).
    if any(k.startswith(("sv_emb.", "ge_to512.")) for k in keys):
        model = config.get("model", {}) if isinstance(config.get("model"), dict) else {}
        raise _unsupported(path, "v2ProPlus" if model.get("upsample_initial_channel") == 768 else "v2Pro")
    declared = config.get("version") or (config.get("model") or {}).get("version")
    if declared in ("v3", "v4", "v2Pro", "v2ProPlus"):
        raise _unsupported(path, str(declared))
    emb = weights.get("enc_p.text_embedding.weight")
    if emb is None or emb.dim() != 2:
        raise CorruptCheckpointError(f"{path}: no enc_p.text_embedding.weight; not a SoVITS generator file")
    return "v1" if emb.shape[0] == _V1_SOVITS_PHONES else "v2"


def load_sovits(path: str | Path) -> SovitsCheckpoint:
    """Load a SoVITS (s2) ``.pth`` safely; refuse versions other than v1/v2 with the version named."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"SoVITS file '{p}' not found (check the voice's models.sovits path)")
    if is_blob_file(p):
        w, meta = checkpoint_from_blob(p, "gsv-s2")
        return SovitsCheckpoint(weights=w, config=meta["config"], version=str(meta.get("version", "v2")),
                                info=str(meta.get("info", "")), path=p)
    with open(p, "rb") as fh:
        head = fh.read(2)
    if head != b"PK":
        tagged = SOVITS_HEAD_TAGS.get(head)
        if tagged is None:
            raise CorruptCheckpointError(
                f"{p}: starts with {head!r}, neither a zip nor a GPT-SoVITS version tag"
            )
        if tagged not in SUPPORTED_SOVITS:
            raise _unsupported(p, tagged)
    obj, _ = load_pickled(p)
    box = _require_container(obj, p, "SoVITS")
    if "lora_rank" in box:
        raise _unsupported(p, "LoRA")
    weights = tensor_dict(box["weight"], p, "weight")
    config = to_plain(box["config"])
    if not isinstance(config, dict):
        raise CorruptCheckpointError(f"{p}: 'config' is {type(config).__name__}, expected hyper-parameters")
    info = str(box.get("info", ""))
    version = _sovits_version(weights, config, info, p)
    return SovitsCheckpoint(weights=weights, config=config, version=version, info=info, path=p)


def load_gpt(path: str | Path) -> GptCheckpoint:
    """Load a GPT (s1) ``.ckpt`` safely; the ``model.`` key prefix is stripped."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"GPT file '{p}' not found (check the voice's models.gpt path)")
    if is_blob_file(p):
        w, meta = checkpoint_from_blob(p, "gsv-s1")
        return GptCheckpoint(weights=w, config=meta["config"], version=str(meta.get("version", "v2")),
                             info=str(meta.get("info", "")), path=p)
    obj, _ = load_pickled(p)
    box = _require_container(obj, p, "GPT")
    stored = tensor_dict(box["weight"], p, "weight")
    weights = {k.removeprefix("model."): v for k, v in stored.items()}
    config = to_plain(box["config"])
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CorruptCheckpointError(f"{p}: GPT config has no 'model' section")
    emb = weights.get("ar_text_embedding.word_embeddings.weight")
    if emb is None or emb.dim() != 2:
        raise CorruptCheckpointError(
            f"{p}: no ar_text_embedding.word_embeddings.weight; not a GPT-SoVITS s1 file"
        )
    version = "v1" if emb.shape[0] == _V1_GPT_PHONES else "v2"
    return GptCheckpoint(
        weights=weights, config=config, version=version, info=str(box.get("info", "")), path=p
    )


def load_hubert(folder: str | Path) -> HubertCheckpoint:
    """Load a HuggingFace HuBERT folder (``config.json`` + ``pytorch_model.bin``/``model.safetensors``)."""
    d = Path(folder)
    if d.is_file() and is_blob_file(d):
        w, meta = checkpoint_from_blob(d, "hf-hubert")
        return HubertCheckpoint(config=meta["config"], weights=w, path=d)
    if not d.is_dir():
        raise CheckpointError(f"HuBERT folder '{d}' not found (point models.hubert at chinese-hubert-base/)")
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(
            f"HuBERT folder '{d}' has no config.json; copy the whole chinese-hubert-base folder "
            "(config.json and pytorch_model.bin), not just the weights"
        )
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpointError(f"{cfg_path}: unreadable JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise CorruptCheckpointError(f"{cfg_path}: expected a JSON object")
    st, pt = d / "model.safetensors", d / "pytorch_model.bin"
    if st.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            weights = load_file(str(st))
        except (SafetensorError, OSError) as exc:
            raise CorruptCheckpointError(f"{st}: damaged safetensors file ({exc})") from exc
    elif pt.is_file():
        weights = load_state_dict(pt)
    else:
        raise CheckpointError(f"HuBERT folder '{d}' has neither model.safetensors nor pytorch_model.bin")
    return HubertCheckpoint(config=config, weights=weights, path=d)


def sovits_text_rows(path: Path) -> int | None:
    """Rows of a SoVITS model's phoneme embedding (``enc_p.text_embedding.weight``: 322 v1, 732 v2), or None;
    a store blob answers from its header, without reading the weights."""
    if is_blob_file(path):
        shape = blob_shapes(path).get("enc_p.text_embedding.weight")
        return int(shape[0]) if shape else None
    rows = load_sovits(path).weights.get("enc_p.text_embedding.weight")
    return int(rows.shape[0]) if rows is not None else None
