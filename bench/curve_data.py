"""Speech for the training curves: Debian's Asterisk prompts (one speaker, Allison) and flite's ``slt``
reading the same transcripts, featurised for the SoVITS and GPT trainers (``bench/train_curve.py``)."""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from anchorvoice.audio_io import read_audio
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.gsv.hubert import HubertModel
from anchorvoice.plugins.gsv.sovits import SovitsConfig
from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
from anchorvoice.plugins.gsv.training.dataset import match_length
from anchorvoice.plugins.gsv.training.sovits_step import SovitsBatch, collate_sovits, item_randomness
from anchorvoice.plugins.text_en.frontend import EnglishFrontend

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")

Item = tuple[Tensor, Tensor, Tensor, list[int]]


@dataclass
class Clip:
    name: str
    text: str
    item: Item
    """(ssl (768, T), spec (bins, T), wav (1, N) 32 kHz, phone ids)."""


def have_speech() -> bool:
    return TRANSCRIPTS.exists() and shutil.which("flite") is not None


def transcripts() -> dict[str, str]:
    out = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";") and (SOUNDS / f"{name.strip()}.g722").exists():
                out[name.strip()] = text.strip()
    return out


def featurize(paths: list[tuple[str, str, Path]], cfg: SovitsConfig, hubert: HubertModel) -> list[Clip]:
    fe = EnglishFrontend()
    clips = []
    for name, text, path in paths:
        wav = torch.from_numpy(read_audio(path, 32000).samples.copy())
        wav = wav / max(1.0, float(wav.abs().max()) / 0.95)
        spec = linear_spectrogram(wav, cfg.spectrogram)[0]
        with torch.no_grad():
            a16 = torch.from_numpy(read_audio(path, 16000).samples.copy())
            ssl = hubert(a16[None]).transpose(1, 2)[0]
        ids = list(fe.phonemize(TextFrame(text, "en")).ids)
        clips.append(Clip(name, text, (match_length(ssl, spec.shape[1]), spec, wav[None], ids)))
    return clips


def base_speaker(texts: dict[str, str], minutes: float, cfg: SovitsConfig, hubert: HubertModel) -> list[Clip]:
    """About ``minutes`` of Allison: prompts of 1-12 s in name order."""
    chosen, total = [], 0.0
    for n in sorted(texts):
        if total >= minutes * 60:
            break
        dur = read_audio(SOUNDS / f"{n}.g722").duration
        if 1.0 <= dur <= 12.0:
            chosen.append(n)
            total += dur
    return featurize([(n, texts[n], SOUNDS / f"{n}.g722") for n in chosen], cfg, hubert)


def target_speaker(texts: dict[str, str], minutes: float, cfg: SovitsConfig, hubert: HubertModel) -> list[Clip]:
    """About ``minutes`` of flite ``slt`` reading the transcripts in reverse name order."""
    work = Path(tempfile.mkdtemp(prefix="av-curve-"))
    try:
        chosen, total = [], 0.0
        for n in sorted(texts)[::-1]:
            if total >= minutes * 60:
                break
            path = work / f"{n}.wav"
            subprocess.run(["flite", "-voice", "slt", "-t", texts[n], "-o", str(path)], check=True,
                           capture_output=True)
            total += read_audio(path).duration
            chosen.append((n, texts[n], path))
        return featurize(chosen, cfg, hubert)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def seconds(clips: list[Clip]) -> float:
    return sum(c.item[2].shape[-1] for c in clips) / 32000


def batches(items: list[Item], batch: int, seed: int, seg_frames: int, channels: int) -> Any:
    """Endless shuffled batches with their slice starts and posterior noise drawn per (epoch, item), so a
    run's batches do not depend on what else consumed torch's RNG."""
    rng = random.Random(seed)
    epoch = 0
    while True:
        order = list(range(len(items)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch + 1, batch):
            picked = order[i : i + batch]
            b = collate_sovits([items[j] for j in picked])
            seeds = [(seed * 1_000_003 + epoch) * 1_000_003 + j for j in picked]
            yield (b, *item_randomness(b, seg_frames, channels, seeds))
        epoch += 1


BatchDraw = tuple[SovitsBatch, Tensor, Tensor]
"""(batch, slice starts, posterior noise)."""
