"""Cut long recordings at silences and normalise their loudness, as GPT-SoVITS' data preparation does.

The slicing rule is the official ``tools/slicer2.py`` (facts, our code): an RMS curve with hop
``hop_ms`` and a window of ``min(min_interval, 4 hops)``; a silence of at least ``min_interval``
splits the audio once the current clip is ``min_length`` long; at most ``max_sil_kept`` of silence
stays at either side of a cut, the cut falling on the quietest frame. The webui's defaults are ours:
-34 dB, 4000 ms, 300 ms, 10 ms, 500 ms. Clips longer than ``max_clip_s`` are split again at their
quietest frame (the official trainer has no cap; long clips cost memory and align badly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anchorvoice.frames import FloatArray


@dataclass
class SlicerConfig:
    """Parameters of the silence slicer (defaults: the official webui's)."""

    threshold_db: float = -34.0
    """RMS below this (dBFS) counts as silence."""
    min_length_ms: int = 4000
    """A clip is not cut before it is this long (short pieces join the next one)."""
    min_interval_ms: int = 300
    """Shortest silence that may cut."""
    hop_ms: int = 10
    """Hop of the RMS curve."""
    max_sil_kept_ms: int = 500
    """Most silence kept at either side of a cut."""
    max_clip_s: float = 15.0
    """Clips longer than this are split again at their quietest point."""
    norm_max: float = 0.9
    """Peak of the normalised part of the loudness mix (official slice step: 0.9)."""
    norm_alpha: float = 0.25
    """Share of the peak-normalised clip in the mix (official slice step: 0.25)."""

    def __post_init__(self) -> None:
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_ms > 0:
            raise ValueError("slicer: need min_length_ms >= min_interval_ms >= hop_ms > 0")
        if self.max_sil_kept_ms < self.hop_ms:
            raise ValueError("slicer: need max_sil_kept_ms >= hop_ms")


def rms_curve(x: FloatArray, frame: int, hop: int) -> FloatArray:
    """RMS per hop of centred frames of ``frame`` samples (zero padding), like librosa's ``rms``."""
    padded = np.pad(x.astype(np.float64), (frame // 2, frame // 2))
    n = 1 + (len(padded) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return np.sqrt(np.mean(np.square(padded[idx]), axis=1))


def _cut_points(rms: FloatArray, thr: float, min_len: int, min_int: int, max_kept: int) -> list[tuple[int, int]]:
    """Silent ranges (start, end) in frames to remove, following slicer2's rule."""
    tags: list[tuple[int, int]] = []
    sil_start: int | None = None
    clip_start = 0
    for i, value in enumerate(rms):
        if value < thr:
            if sil_start is None:
                sil_start = i
            continue
        if sil_start is None:
            continue
        leading = sil_start == 0 and i > max_kept
        middle = i - sil_start >= min_int and i - clip_start >= min_len
        if not leading and not middle:
            sil_start = None
            continue
        if i - sil_start <= max_kept:
            pos = int(rms[sil_start : i + 1].argmin()) + sil_start
            tags.append((0, pos) if sil_start == 0 else (pos, pos))
            clip_start = pos
        elif i - sil_start <= max_kept * 2:
            pos = int(rms[i - max_kept : sil_start + max_kept + 1].argmin()) + i - max_kept
            pos_l = int(rms[sil_start : sil_start + max_kept + 1].argmin()) + sil_start
            pos_r = int(rms[i - max_kept : i + 1].argmin()) + i - max_kept
            if sil_start == 0:
                tags.append((0, pos_r))
                clip_start = pos_r
            else:
                tags.append((min(pos_l, pos), max(pos_r, pos)))
                clip_start = max(pos_r, pos)
        else:
            pos_l = int(rms[sil_start : sil_start + max_kept + 1].argmin()) + sil_start
            pos_r = int(rms[i - max_kept : i + 1].argmin()) + i - max_kept
            tags.append((0, pos_r) if sil_start == 0 else (pos_l, pos_r))
            clip_start = pos_r
        sil_start = None
    total = len(rms)
    if sil_start is not None and total - sil_start >= min_int:
        end = min(total, sil_start + max_kept)
        pos = int(rms[sil_start : end + 1].argmin()) + sil_start
        tags.append((pos, total + 1))
    return tags


def slice_at_silences(x: FloatArray, sample_rate: int, cfg: SlicerConfig) -> list[tuple[int, int]]:
    """(start, end) of the clips in mono ``x``, silences between them left out.

    Both are RMS frame x hop, as the official slicer reports them (and names its clips by): the end
    of a clip that runs to the end of ``x`` may pass ``len(x)`` (see :func:`uncut_end`); the clip's
    samples are ``x[start:end]``.
    """
    hop = round(sample_rate * cfg.hop_ms / 1000)
    min_interval = sample_rate * cfg.min_interval_ms / 1000
    win = min(round(min_interval), 4 * hop)
    min_len = round(sample_rate * cfg.min_length_ms / 1000 / hop)
    if len(x) <= min_len:  # slicer2 compares samples with frames here; kept for identical cuts
        return [(0, len(x))]
    rms = rms_curve(x, win, hop)
    tags = _cut_points(
        rms, 10 ** (cfg.threshold_db / 20), min_len, round(min_interval / hop),
        round(sample_rate * cfg.max_sil_kept_ms / 1000 / hop),
    )
    total = len(rms)
    if not tags:
        return [(0, total * hop)]
    bounds: list[tuple[int, int]] = []
    if tags[0][0] > 0:
        bounds.append((0, tags[0][0]))
    bounds += [(tags[i][1], tags[i + 1][0]) for i in range(len(tags) - 1)]
    if tags[-1][1] < total:
        bounds.append((tags[-1][1], total))
    return [(a * hop, b * hop) for a, b in bounds if b > a]


def uncut_end(n: int, sample_rate: int, cfg: SlicerConfig) -> int:
    """End the official slicer reports for ``n`` samples it leaves in one piece: its RMS frames x hop.

    The centred RMS curve has ``1 + n // hop`` frames, so this passes ``n`` by up to one hop; the
    official clip name (``<file>_<start>_<end>.wav``) carries it, and 2-name2text / 4-cnhubert /
    6-name2semantic are keyed by that name.
    """
    hop = round(sample_rate * cfg.hop_ms / 1000)
    win = min(round(sample_rate * cfg.min_interval_ms / 1000), 4 * hop)
    return (1 + (n + 2 * (win // 2) - win) // hop) * hop


def split_long(x: FloatArray, start: int, end: int, sample_rate: int, max_s: float) -> list[tuple[int, int]]:
    """Split [start, end) of ``x`` at its quietest 10 ms frame (middle half) until no piece exceeds ``max_s``."""
    limit = int(max_s * sample_rate)
    if end - start <= limit:
        return [(start, end)]
    hop = max(1, sample_rate // 100)
    lo, hi = start + (end - start) // 4, start + 3 * (end - start) // 4
    energy = rms_curve(x[lo:hi], hop, hop)
    cut = lo + int(np.argmin(energy)) * hop
    cut = min(max(cut, start + hop), end - hop)
    return split_long(x, start, cut, sample_rate, max_s) + split_long(x, cut, end, sample_rate, max_s)


def normalise_loudness(chunk: FloatArray, peak: float, alpha: float) -> FloatArray:
    """The official max/alpha mix: ``alpha`` of the clip scaled to ``peak`` plus ``1 - alpha`` of it as is."""
    top = float(np.max(np.abs(chunk))) if len(chunk) else 0.0
    if top <= 0:
        return chunk.astype(np.float32)
    if top > 1:
        chunk = chunk / top
        top = 1.0
    return ((chunk / top) * (peak * alpha) + (1 - alpha) * chunk).astype(np.float32)
