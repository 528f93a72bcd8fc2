"""Which sliced clips a training set must not use, and why (silent, clipped, too short/long, mostly noise)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anchorvoice.frames import FloatArray


@dataclass
class QualityConfig:
    """Thresholds of the clip checks."""

    min_clip_s: float = 1.0
    """Clips shorter than this are rejected (too little to learn from, and HuBERT needs context)."""
    max_clip_s: float = 30.0
    """Clips longer than this after slicing are rejected (a transcript cannot be split)."""
    silence_dbfs: float = -45.0
    """A clip whose loudest 10 ms frame is below this level is silent."""
    clip_level: float = 0.999
    """Samples at or above this magnitude count as clipped."""
    max_clipped: float = 0.001
    """Share of clipped samples above which the clip is rejected (0.1 %)."""
    min_snr_db: float = 12.0
    """Estimated speech-to-noise ratio below which the clip is mostly noise."""


def frame_levels_db(x: FloatArray, sample_rate: int, frame_ms: float = 10.0) -> FloatArray:
    """dBFS of each non-overlapping ``frame_ms`` frame."""
    n = max(1, int(sample_rate * frame_ms / 1000))
    frames = x[: len(x) // n * n].reshape(-1, n) if len(x) >= n else x.reshape(1, -1)
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    return 10 * np.log10(np.maximum(power, 1e-12))


def estimate_snr_db(x: FloatArray, sample_rate: int) -> float:
    """Speech-to-noise estimate: loud frames (95th percentile power) over the floor (10th percentile)."""
    levels = frame_levels_db(x, sample_rate)
    return float(np.percentile(levels, 95) - np.percentile(levels, 10))


def reject_reason(x: FloatArray, sample_rate: int, cfg: QualityConfig) -> str | None:
    """Why the clip is unusable, or None when it is fine. ``x`` is the clip before loudness normalisation."""
    seconds = len(x) / sample_rate
    if seconds < cfg.min_clip_s:
        return f"too short ({seconds:.2f} s < {cfg.min_clip_s:g} s)"
    if seconds > cfg.max_clip_s:
        return f"too long ({seconds:.1f} s > {cfg.max_clip_s:g} s; cut it or leave it out of the .list)"
    levels = frame_levels_db(x, sample_rate)
    if float(levels.max()) < cfg.silence_dbfs:
        return f"silent (loudest frame {levels.max():.0f} dBFS)"
    clipped = float(np.mean(np.abs(x) >= cfg.clip_level))
    if clipped > cfg.max_clipped:
        return f"clipped ({clipped * 100:.1f} % of samples at full scale; record with less gain)"
    snr = estimate_snr_db(x, sample_rate)
    if snr < cfg.min_snr_db:
        return f"mostly noise (estimated SNR {snr:.0f} dB < {cfg.min_snr_db:g} dB; try --denoise)"
    return None
