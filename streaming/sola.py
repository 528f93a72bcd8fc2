"""SOLA: join independently processed blocks without clicks.

Each processed block is handed over as a *segment* of ``block + overlap + search`` samples (the
converter's output for the newest part of its window, see :class:`SolaJoiner`). The joiner keeps
the ``overlap`` samples that followed the previous block's output (its *tail*), searches the first
``overlap + search`` samples of the new segment for the offset ``d`` in ``[0, search]`` whose
``overlap`` samples best match that tail by normalised cross-correlation, and emits
``segment[d : d + block]`` with its first ``overlap`` samples crossfaded against the tail. The new
tail is ``segment[d + block : d + block + overlap]``.

Facts carried over from RVC's realtime GUI: SOLA overlap min(crossfade, 40 ms), a ~10 ms search
window, normalised cross-correlation ``<a, b> / (||a|| + eps)``, and sin^2/cos^2 fades whose sum is
exactly one, so identical signals pass through the crossfade unchanged.

For an identity converter the best offset is always 0 and the output equals the input delayed by
``overlap + search`` samples (see ``delay``), bit-exact up to float rounding.
"""

from __future__ import annotations

import numpy as np

from anchorvoice.frames import FloatArray

# RVC caps the SOLA overlap at 40 ms (its realtime GUI, "sola_buffer_frame = min(crossfade, 0.04 s)").
MAX_OVERLAP_S = 0.040


def equal_power_fades(n: int) -> tuple[FloatArray, FloatArray]:
    """``(fade_in, fade_out)`` of length ``n``: sin^2 and cos^2 of a quarter period, summing to 1."""
    x = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    fade_in = np.sin(0.5 * np.pi * x) ** 2
    return fade_in.astype(np.float32), (1.0 - fade_in).astype(np.float32)


def best_offset(head: FloatArray, tail: FloatArray, search: int) -> int:
    """Offset ``d`` in ``[0, search]`` maximising ``<head[d:d+n], tail> / ||head[d:d+n]||``.

    ``head`` must hold at least ``len(tail) + search`` samples. A silent tail or head gives 0.
    """
    n = len(tail)
    if search <= 0 or n == 0:
        return 0
    h = np.asarray(head[: n + search], dtype=np.float64)
    t = np.asarray(tail, dtype=np.float64)
    num = np.correlate(h, t, mode="valid")  # (search + 1,)
    sq = np.concatenate(([0.0], np.cumsum(h * h)))
    energy = sq[n:] - sq[:-n]  # sum of squares of each n-sample slice of h
    den = np.sqrt(np.maximum(energy, 0.0)) + 1e-8  # eps as in RVC's NCC
    if not np.any(num):
        return 0
    return int(np.argmax(num / den))


class SolaJoiner:
    """Join segments of ``block + overlap + search`` samples into a continuous block stream."""

    def __init__(self, block: int, overlap: int, search: int) -> None:
        if block <= 0:
            raise ValueError(f"SOLA block must be a positive number of samples, got {block}")
        if overlap < 0 or search < 0:
            raise ValueError(f"SOLA overlap and search must be >= 0, got {overlap}, {search}")
        if overlap > block:
            raise ValueError(f"SOLA overlap ({overlap}) must not exceed the block ({block}); lower crossfade")
        self.block = int(block)
        self.overlap = int(overlap)
        self.search = int(search)
        self.segment_size = self.block + self.overlap + self.search
        self._fade_in, self._fade_out = equal_power_fades(self.overlap)
        self._tail: FloatArray = np.zeros(self.overlap, dtype=np.float32)
        self._out: FloatArray = np.zeros(self.block, dtype=np.float32)
        self.reset()

    @property
    def delay(self) -> int:
        """Samples by which the joined output lags the end of the block (``overlap + search``)."""
        return self.overlap + self.search

    def reset(self) -> None:
        """Forget the previous tail: the next segment starts from silence (faded in)."""
        self._tail[:] = 0.0
        self._has_tail = False
        self.last_offset = 0

    def join(self, segment: FloatArray) -> FloatArray:
        """Emit ``block`` samples; the returned array is reused by the next call."""
        if len(segment) != self.segment_size:
            raise ValueError(
                f"SOLA segment must hold block + overlap + search = {self.segment_size} samples, "
                f"got {len(segment)}"
            )
        o = self.overlap
        d = best_offset(segment, self._tail, self.search) if self._has_tail else 0
        self.last_offset = d
        out = self._out
        out[:] = segment[d : d + self.block]
        if o:
            # Crossfade from the previous tail (or silence at stream start) into the new block.
            out[:o] = self._tail * self._fade_out + out[:o] * self._fade_in
            self._tail[:] = segment[d + self.block : d + self.block + o]
        self._has_tail = True
        return out
