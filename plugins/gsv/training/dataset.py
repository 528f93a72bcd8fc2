"""Read a training set in the official GPT-SoVITS layout (what ``prepare_datasets/1-3`` write).

One folder holds, per utterance ``NAME`` (the 32 kHz wav's file name, extension included):

* ``2-name2text.txt``: ``NAME<TAB>phones separated by spaces<TAB>word2ph<TAB>normalised text``;
* ``3-bert/NAME.pt`` (optional, Chinese only): BERT features (1024, phones); zeros otherwise;
* ``4-cnhubert/NAME.pt``: HuBERT features (1, 768, T50) as ``torch.save`` wrote them;
* ``5-wav32k/NAME``: the audio, 32 kHz;
* ``6-name2semantic.tsv``: ``NAME<TAB>semantic ids separated by spaces`` (an ``item_name`` header
  line may come first), the tokens the base SoVITS quantizer gives the HuBERT features;
* any ``*.list`` (``wav|speaker|lang|text``) for the transcripts and languages.

``.pt`` files go through the same restricted unpickler as model files: a file that tries to run
code is refused and nothing runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import Tensor

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.errors import CheckpointError, TrainingDatasetError
from anchorvoice.plugins.text_common.symbols import SymbolTable, load_symbols_v2

SSL_DIM = 768


@dataclass
class Utterance:
    """One training utterance of a dataset folder."""

    name: str
    """File name in ``5-wav32k/`` (the key of every other file)."""
    phones: list[int]
    """Phoneme ids (v2 symbol table)."""
    text: str
    """Normalised transcript."""
    lang: str
    """Language code from the ``.list`` ("en" when absent)."""
    semantic: list[int] | None
    """Semantic tokens from ``6-name2semantic.tsv`` (None when the file lacks the utterance)."""


class GsvDataset:
    """The utterances of one dataset folder, loaded lazily; open with :meth:`open`."""

    def __init__(self, root: Path, items: list[Utterance]) -> None:
        self.root = root
        self.items = items

    @classmethod
    def open(cls, root: str | Path, symbols: SymbolTable | None = None) -> GsvDataset:
        """Check the folder and read its text files; raises :class:`TrainingDatasetError` saying what is missing."""
        root = Path(root)
        table = symbols or load_symbols_v2()
        name2text = root / "2-name2text.txt"
        for need in (name2text, root / "4-cnhubert", root / "5-wav32k"):
            if not need.exists():
                raise TrainingDatasetError(
                    f"dataset {root}: {need.name} is missing; make the dataset first "
                    "(`anchorvoice dataset make`) or point --dataset at a GPT-SoVITS experiment folder"
                )
        langs = _read_lists(root)
        semantic = _read_semantic(root / "6-name2semantic.tsv")
        items = []
        for lineno, line in enumerate(name2text.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split("\t")
            if len(parts) != 4:
                continue  # the official loader skips such lines too
            name, phones, _, text = parts
            try:
                ids = [table.id(p) for p in phones.split(" ") if p]
            except Exception as exc:  # noqa: BLE001 - TextInputError from the table
                raise TrainingDatasetError(f"{name2text}:{lineno}: {exc}") from None
            if not (root / "5-wav32k" / name).is_file() or not (root / "4-cnhubert" / f"{name}.pt").is_file():
                continue  # the official loaders use the names present in all folders
            items.append(Utterance(name, ids, text, langs.get(name, "en"), semantic.get(name)))
        if not items:
            raise TrainingDatasetError(
                f"dataset {root}: no utterance has its line in 2-name2text.txt, its wav in 5-wav32k/ "
                "and its HuBERT features in 4-cnhubert/; the dataset is empty or incomplete"
            )
        return cls(root, sorted(items, key=lambda u: u.name))

    def __len__(self) -> int:
        return len(self.items)

    def wav(self, i: int) -> Tensor:
        """(1, N) float32 audio in [-1, 1] at 32 kHz."""
        path = self.root / "5-wav32k" / self.items[i].name
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise TrainingDatasetError(f"{path}: unreadable audio ({exc})") from None
        if sr != 32000:
            raise TrainingDatasetError(f"{path}: {sr} Hz, the 5-wav32k folder must hold 32 kHz audio")
        return torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))[None]

    def hubert(self, i: int) -> Tensor:
        """(768, T50) float32 HuBERT features."""
        t = _load_tensor(self.root / "4-cnhubert" / f"{self.items[i].name}.pt")
        if t.dim() == 3:
            t = t[0]
        if t.dim() != 2 or t.shape[0] != SSL_DIM:
            raise TrainingDatasetError(
                f"{self.items[i].name}.pt: HuBERT features of shape {tuple(t.shape)}, expected (1, {SSL_DIM}, T)"
            )
        return t.float()

    def bert(self, i: int) -> Tensor:
        """(1024, P) BERT features, zeros when ``3-bert/NAME.pt`` is absent (every language but Chinese)."""
        path = self.root / "3-bert" / f"{self.items[i].name}.pt"
        n = len(self.items[i].phones)
        if not path.is_file():
            return torch.zeros(1024, n)
        t = _load_tensor(path).float()
        if tuple(t.shape) != (1024, n):
            raise TrainingDatasetError(f"{path}: BERT features {tuple(t.shape)}, expected (1024, {n})")
        return t

    def with_semantic(self, tokens: dict[str, list[int]]) -> None:
        """Replace the semantic tokens (after re-extraction with a fine-tuned quantizer)."""
        for u in self.items:
            u.semantic = tokens.get(u.name, u.semantic)


def _load_tensor(path: Path) -> Tensor:
    try:
        obj, _ = load_pickled(path)
    except CheckpointError as exc:
        raise TrainingDatasetError(f"{path}: {exc}") from None
    if not isinstance(obj, Tensor):
        raise TrainingDatasetError(f"{path}: holds a {type(obj).__name__}, expected one tensor")
    return obj


def _read_lists(root: Path) -> dict[str, str]:
    langs: dict[str, str] = {}
    for lst in sorted(root.glob("*.list")):
        for line in lst.read_text(encoding="utf-8").splitlines():
            parts = line.split("|")
            if len(parts) >= 4:
                langs[Path(parts[0]).name] = parts[2].lower()
    return langs


def _read_semantic(path: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 2 or parts[0] == "item_name":
            continue
        try:
            out[parts[0]] = [int(t) for t in parts[1].split()]
        except ValueError:
            raise TrainingDatasetError(f"{path}: line for {parts[0]} holds a non-integer token") from None
    return out


def write_semantic(path: Path, tokens: dict[str, list[int]]) -> None:
    """Write ``6-name2semantic.tsv`` (official layout, with the header the webui merge writes)."""
    lines = ["item_name\tsemantic_audio"] + [f"{k}\t{' '.join(map(str, v))}" for k, v in sorted(tokens.items())]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def match_length(ssl: Tensor, frames: int) -> Tensor:
    """HuBERT features one frame short of the spectrogram get the last frame repeated (official loader)."""
    if ssl.shape[-1] == frames - 1:
        return F.pad(ssl[None], (0, 1), mode="replicate")[0]
    return ssl
