"""Resampling between the device rate and a stage's rate, with soxr (no torchaudio on CPU paths).

* :func:`resample` - one-shot, for whole clips or for an overlapping window processed on its own.
* :class:`StreamResampler` - stateful, for a continuous stream cut into blocks: it carries the
  filter state across blocks, so concatenating its outputs equals resampling the whole stream
  (no edge effects at block joins). Its output lags by ``delay()`` output samples until ``flush``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

from anchorvoice.frames import FloatArray

Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]


def _check_rate(name: str, rate: float) -> None:
    if not rate > 0:
        raise ValueError(f"{name} must be a positive sample rate in Hz, got {rate!r}")


def resample(samples: FloatArray, sr_in: int, sr_out: int, quality: Quality = "HQ") -> FloatArray:
    """Resample mono ``samples`` from ``sr_in`` to ``sr_out`` Hz; returns float32."""
    _check_rate("sr_in", sr_in)
    _check_rate("sr_out", sr_out)
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono 1-D samples, got shape {x.shape}")
    if sr_in == sr_out or len(x) == 0:
        return x.copy()
    return np.asarray(soxr.resample(x, sr_in, sr_out, quality=quality), dtype=np.float32)


class StreamResampler:
    """Block-by-block resampler that keeps filter state between calls."""

    def __init__(self, sr_in: int, sr_out: int, quality: Quality = "HQ") -> None:
        _check_rate("sr_in", sr_in)
        _check_rate("sr_out", sr_out)
        self.sr_in = int(sr_in)
        self.sr_out = int(sr_out)
        self.quality: Quality = quality
        self._stream = soxr.ResampleStream(self.sr_in, self.sr_out, 1, dtype="float32", quality=quality)

    @property
    def passthrough(self) -> bool:
        """True when both rates are equal and blocks are returned unchanged."""
        return self.sr_in == self.sr_out

    def process(self, block: FloatArray, last: bool = False) -> FloatArray:
        """Resample the next block; ``last=True`` also flushes the samples held in the filter."""
        x = np.ascontiguousarray(block, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"StreamResampler expects mono 1-D blocks, got shape {x.shape}")
        if self.passthrough:
            return x.copy()
        return np.asarray(self._stream.resample_chunk(x, last=last), dtype=np.float32)

    def flush(self) -> FloatArray:
        """Return the samples still held in the filter and end the stream (then ``reset``)."""
        return self.process(np.zeros(0, dtype=np.float32), last=True)

    def delay(self) -> float:
        """Output samples currently held back by the filter (0 when passthrough)."""
        return 0.0 if self.passthrough else float(self._stream.delay())

    def reset(self) -> None:
        """Start a new stream."""
        if not self.passthrough:
            self._stream.clear()
