"""Stream resampling between the device rate and a stage's rate, with soxr (no torchaudio on CPU paths).

:class:`StreamResampler` is stateful, for a continuous stream cut into blocks: it carries the filter
state across blocks, so concatenating its outputs equals resampling the whole stream (no edge effects
at block joins). Its output lags by ``delay()`` output samples until ``flush``. One-shot resampling of a
clip or a window is :func:`anchorvoice.audio_io.resample`.
"""

from __future__ import annotations

import numpy as np
import soxr

from anchorvoice.audio_io import Quality, check_rate
from anchorvoice.frames import FloatArray


class StreamResampler:
    """Block-by-block resampler that keeps filter state between calls."""

    def __init__(self, sr_in: int, sr_out: int, quality: Quality = "HQ") -> None:
        check_rate("sr_in", sr_in)
        check_rate("sr_out", sr_out)
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
