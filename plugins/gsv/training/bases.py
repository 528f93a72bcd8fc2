"""Load the pretrained bases of a fine-tune (same safe loader as inference) and check them against a dataset."""

from __future__ import annotations

from pathlib import Path

import torch

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.engine.state_dicts import tensor_dict
from anchorvoice.errors import CheckpointError, CorruptCheckpointError, TrainingError
from anchorvoice.plugins.gsv.training.dataset import GsvDataset
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator

DOWNLOAD_HINT = (
    "Download the GPT-SoVITS v2 pretrained models (Hugging Face lj1995/GPT-SoVITS, folder "
    "gsv-v2final-pretrained: s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt, s2G2333k.pth, s2D2333k.pth) "
    "and pass them as --base-gpt, --base-sovits and --base-disc; or give --from-scratch to train from "
    "random weights (a few minutes of speech will not converge from scratch)"
)


def load_discriminator(path: str | Path) -> MultiPeriodDiscriminator:
    """A pretrained ``s2D*.pth`` (``{"weight": state dict}``, weight-norm pairs folded) -> float32 module."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"discriminator file '{p}' not found (--base-disc); {DOWNLOAD_HINT}")
    obj, _ = load_pickled(p)
    if not isinstance(obj, dict) or not isinstance(obj.get("weight", obj.get("model")), dict):
        raise CorruptCheckpointError(f"{p}: not a GPT-SoVITS discriminator file (no 'weight' state dict)")
    weights = tensor_dict(obj.get("weight", obj.get("model")), p, "weight")
    disc = MultiPeriodDiscriminator()
    try:
        disc.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    except RuntimeError as exc:
        raise CorruptCheckpointError(
            f"{p}: does not fit the v2 multi-period discriminator ({str(exc).splitlines()[0]}); "
            "use s2D2333k.pth or a discriminator saved by a v2 fine-tune"
        ) from None
    return disc


def check_dataset_fits(data: GsvDataset, text_rows: int, bins: int = 1024) -> None:
    """Refuse a dataset made for another base: phone ids beyond the text table, tokens beyond the codebook."""
    top_phone = max((max(u.phones, default=0) for u in data.items), default=0)
    if top_phone >= text_rows:
        raise TrainingError(
            f"dataset {data.root} uses phoneme id {top_phone} but the base model's phoneme table has {text_rows} "
            "entries: the dataset was made for another GPT-SoVITS version; remake it with this base"
        )
    tokens = [t for u in data.items for t in (u.semantic or [])]
    if tokens and max(tokens) >= bins:
        raise TrainingError(
            f"dataset {data.root} holds semantic token {max(tokens)} but the base quantizer has {bins} codes; "
            "remake the dataset's 6-name2semantic.tsv with this base SoVITS"
        )


def tokens_match(data: GsvDataset, extracted: dict[str, torch.Tensor]) -> float:
    """Share of the dataset's stored tokens equal to ``extracted`` (1.0 = made with this base)."""
    same = total = 0
    for u in data.items:
        if u.semantic is None or u.name not in extracted:
            continue
        e = extracted[u.name].tolist()
        n = min(len(e), len(u.semantic))
        same += sum(int(a == b) for a, b in zip(e[:n], u.semantic[:n]))
        total += n
    return same / total if total else 1.0
