"""The live runner's adaptive jitter buffer: grows by a block after an underrun, gives it back when calm.

The worker watches the output ring's underrun count. After an underrun (one stall, however many callbacks
it starved) the buffer, and the latency, grow by one block (``jitter_max_ms`` bounds it); after
``jitter_shrink_after_s`` without an underrun it shrinks by a block, never below ``jitter_ms`` (an underrun
soon after a shrink doubles that wait, up to ``JITTER_BACKOFF_MAX`` times, so a load that comes and goes
does not make it oscillate). The delay actually queued follows: the samples an underrun padded delay the
stream, so the worker adds silence or leaves out output until the stall cost exactly the block the buffer
grew (leaving out only while catching up after the underrun or in an output block below
``JITTER_QUIET_DB``, so speech is never cut). Each change emits ``{"event": "jitter", "reason":
"underrun"|"quiet", "jitter_ms": ...}``; the runner's ``stats()`` and ``latency`` report the current size,
so ``total_latency_ms`` is what the listener hears.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from anchorvoice.frames import FloatArray
from anchorvoice.streaming.latency import LatencyAccount
from anchorvoice.streaming.ring import RingBuffer

JITTER_QUIET_DB = -40.0
"""Only an output block quieter than this (RMS, dBFS) is left out when the jitter buffer shrinks."""
JITTER_BACKOFF_MAX = 8
"""An underrun within the calm period after a shrink doubles the calm period needed for the next one, up to
this many times ``jitter_shrink_after_s``: a load that comes and goes does not make the buffer oscillate."""


def is_quiet(out: FloatArray) -> bool:
    """True when ``out`` is at or below :data:`JITTER_QUIET_DB` RMS (or empty / digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) if len(out) else 0.0
    return rms == 0.0 or 20.0 * math.log10(rms) <= JITTER_QUIET_DB


class AdaptiveJitter:
    """The jitter buffer between the worker and the output ring (sizes in blocks of ``block`` samples).

    ``adapt(out)`` is called by the worker for every output block before it is queued and returns the part
    of ``out`` to queue (it may also queue silence itself). ``latency.jitter_buffer_ms`` and the output
    ring's capacity always follow the current size.
    """

    def __init__(self, *, block: int, sample_rate: int, min_blocks: int, max_blocks: int, shrink_after: int,
                 out_queue: int, input_ring: RingBuffer, output_ring: RingBuffer, latency: LatencyAccount,
                 emit: Callable[[dict[str, Any]], None]) -> None:
        self.block = block
        self.sample_rate = sample_rate
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.shrink_after = shrink_after
        self.out_queue = out_queue
        self.input_ring = input_ring
        self.output_ring = output_ring
        self.latency = latency
        self._emit = emit
        self._silence: FloatArray = np.zeros(block, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Back to the smallest size; counters restart (the ring counters never reset, so start from them)."""
        self.blocks = self.min_blocks
        self.peak = self.min_blocks
        self.grows = 0
        self.shrinks = 0
        self.skipped = 0
        """Output samples left out (catching up after stalls, shrinking)."""
        self.block_index = 0
        self._seen_underruns = self.output_ring.underrun_events
        self._calm_blocks = 0
        self._shrink_wait = self.shrink_after  # calm blocks before a shrink; doubles when one was premature
        self._since_shrink = self.shrink_after * JITTER_BACKOFF_MAX  # "long ago"
        self._seen_padded = self.output_ring.underrun_samples
        self._seen_lost = self.input_ring.overrun_samples
        self._debt = 0
        self._catching_up = False
        self.latency.jitter_buffer_ms = self.ms(self.blocks)
        self.output_ring.set_capacity(self.blocks * self.block + self.out_queue)

    def ms(self, blocks: int) -> float:
        """Milliseconds of ``blocks`` blocks."""
        return 1000.0 * blocks * self.block / self.sample_rate

    def adapt(self, out: FloatArray) -> FloatArray:
        """Grow after an underrun, shrink after a calm period, make the queued delay follow; returns the part
        of ``out`` to queue.

        Samples the callback padded during an underrun delay the rest of the stream, input dropped by the
        input ring during the stall advances it: their balance, less the block the buffer grew, is a debt.
        Silence is queued for a negative debt and output left out for a positive one, only while catching
        up after the underrun (the stream glitched anyway) or in a quiet block, so speech is never cut
        otherwise. Output-ring drops are the bound doing its job (a slower playback clock) and change
        nothing here.
        """
        ring = self.output_ring
        self._since_shrink += 1
        lost = self.input_ring.overrun_samples - self._seen_lost
        self._seen_lost += lost
        if ring.underrun_events != self._seen_underruns:
            self._seen_underruns = ring.underrun_events
            padded = ring.underrun_samples - self._seen_padded
            self._seen_padded += padded
            self._calm_blocks = 0
            self._debt += padded
            if self._since_shrink < self._shrink_wait:  # the last shrink was too early: wait longer next time
                self._shrink_wait = min(2 * self._shrink_wait, JITTER_BACKOFF_MAX * self.shrink_after)
            if not self._catching_up and self.blocks < self.max_blocks:  # one stall grows it once
                self.grows += 1
                self._set(self.blocks + 1, "underrun")
                self._debt -= self.block
            self._catching_up = True
        else:
            self._calm_blocks += 1
        if self._catching_up:
            self._debt -= lost
        quiet: bool | None = None
        if self.blocks > self.min_blocks and self._calm_blocks >= self._shrink_wait and not self._catching_up:
            quiet = is_quiet(out)
            if quiet:
                self._calm_blocks = 0
                self.shrinks += 1
                self._since_shrink = 0
                self._set(self.blocks - 1, "quiet")
                self._debt += self.block
        while self._debt < 0:  # queue silence up to the new size
            k = min(-self._debt, len(self._silence))
            ring.write(self._silence[:k])
            self._debt += k
        if self._debt > 0 and (self._catching_up or (quiet if quiet is not None else is_quiet(out))):
            k = min(self._debt, len(out))
            self.skipped += k
            self._debt -= k
            out = out[k:]
        if self._debt <= 0:
            self._catching_up = False
        return out

    def _set(self, blocks: int, reason: str) -> None:
        self.blocks = blocks
        self.peak = max(self.peak, blocks)
        ms = self.ms(blocks)
        self.latency.jitter_buffer_ms = ms
        self.output_ring.set_capacity(blocks * self.block + self.out_queue)
        self._emit({"event": "jitter", "reason": reason, "jitter_ms": ms, "total_latency_ms": self.latency.total_ms,
                    "block": self.block_index})
