"""The recordings a user gives: which files are audio, and how each is cut into scored clips."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.dataset.quality import QualityConfig, estimate_snr_db, reject_reason
from anchorvoice.engine.dataset.slicer import (
    SlicerConfig,
    normalise_loudness,
    slice_at_silences,
    split_long,
    uncut_end,
)
from anchorvoice.engine.dataset_stages import Denoiser
from anchorvoice.errors import AnchorVoiceError, AudioInputError
from anchorvoice.frames import AudioFrame

CLIP_RATE = 32000
"""Clips are cut and stored at the SoVITS v2 rate (official slice step and 5-wav32k)."""


def list_files(folder: Path) -> list[Path]:
    """Visible regular files in ``folder`` (not recursive), sorted by name like the official slicer."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def probe_audio(path: Path) -> str | None:
    """None if ``path`` looks like audio the project reads, else why not (checked without decoding)."""
    if path.suffix.lower() == ".g722":
        return None if path.stat().st_size > 0 else "empty file"
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return "not audio this project reads (use WAV, FLAC, OGG, MP3 or G.722)"
    if info.frames == 0:
        return "contains no samples"
    return None


def read_source(path: Path) -> AudioFrame:
    """The whole recording as 32 kHz mono float32 (AudioInputError if it cannot be decoded)."""
    try:
        return read_audio(path, CLIP_RATE)
    except AnchorVoiceError:
        raise
    except Exception as exc:  # a decoder failing on a damaged file: name the file, go on with the rest
        raise AudioInputError(f"cannot decode {path.name}: {type(exc).__name__}: {exc}") from None


@dataclass
class Piece:
    """One cut of a recording, scored."""

    name: str
    """Clip file name: ``<source>_<start:010d>_<end:010d>.wav`` (official slice naming, 32 kHz samples; its
    end may pass the recording's last sample by up to one hop, as the official slicer's does)."""
    start: int
    end: int
    """Sample range of the clip in the recording (end clamped to its length)."""
    samples: np.ndarray
    """Loudness-normalised samples to store (empty when rejected)."""
    reason: str | None
    """Why it is rejected, or None."""
    snr_db: float
    snr_after_db: float | None = None


def cut_source(
    audio: AudioFrame,
    source_name: str,
    slicer: SlicerConfig,
    quality: QualityConfig,
    whole: bool = False,
    denoiser: Denoiser | None = None,
) -> list[Piece]:
    """Slice at silences (or keep ``whole`` when one transcript covers the file), score, denoise, normalise."""
    x = audio.samples
    if whole:  # named as the official slicer names a recording it does not cut
        spans = [(0, uncut_end(len(x), CLIP_RATE, slicer))]
    else:
        spans = []
        for a, b in slice_at_silences(x, CLIP_RATE, slicer):
            spans += split_long(x, a, b, CLIP_RATE, slicer.max_clip_s)
    pieces = []
    for a, b in spans:
        chunk = x[a:b]
        name = f"{source_name}_{a:010d}_{b:010d}.wav"
        snr = estimate_snr_db(chunk, CLIP_RATE) if len(chunk) else 0.0
        snr_after = None
        if denoiser is not None and len(chunk) >= CLIP_RATE // 10:
            chunk = denoiser.denoise(AudioFrame(chunk, CLIP_RATE)).samples
            snr_after = estimate_snr_db(chunk, CLIP_RATE)
        reason = reject_reason(chunk, CLIP_RATE, quality)
        data = np.zeros(0, np.float32) if reason else normalise_loudness(chunk, slicer.norm_max, slicer.norm_alpha)
        after = None if snr_after is None else round(snr_after, 1)
        pieces.append(Piece(name, a, min(b, len(x)), data, reason, round(snr, 1), after))
    return pieces


def wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV bytes at 32 kHz (the official slice step writes ``chunk * 32767`` as int16)."""
    buf = io.BytesIO()
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    sf.write(buf, pcm, CLIP_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()
