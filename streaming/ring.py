"""Single-producer single-consumer float32 ring buffer for the audio callback hand-off.

One thread writes (``write``), one other thread reads (``read_into``). Each position counter has
exactly one writer: the producer owns ``_write_pos`` and the consumer owns ``_read_pos``. Both only
ever grow (Python ints do not wrap), so ``write_pos - read_pos`` is the fill level. A counter is
published only after the samples it covers have been copied, so the other side never sees a
position ahead of its data. No lock is taken on either path: the only shared state is two ints,
whose assignment is atomic in CPython, and the preallocated storage, which the two sides touch in
disjoint regions. The hot paths allocate no sample memory (numpy slice views and in-place copies).

Overflow policy (``overflow``), chosen per buffer:

``"drop_newest"``
    ``write`` stores what fits and drops the rest of the incoming block. The queued audio is kept
    intact; the producer loses its newest samples. Latency cannot grow past ``capacity``.
``"drop_oldest"``
    The buffer keeps the newest ``capacity`` samples, so latency stays bounded and fresh audio
    wins, as real-time voice changers do with stale output (w-okada VCClient, Applio). Because
    only the consumer may move ``_read_pos``, the *consumer* discards the oldest samples at its
    next read whenever more than ``capacity`` are queued. The storage has ``headroom`` extra slots
    so the producer can keep writing past ``capacity`` until then; only if the consumer stalls
    long enough to fill the headroom too does ``write`` drop newest samples as well.

Counters (plain ints, each written by one side only): ``overrun_samples``/``overrun_events``
(samples dropped by either policy), ``underrun_samples``/``underrun_events`` (a padded
``read_into`` found fewer samples than asked for). Underruns before the first ``write`` are not
counted: a stream that has not started yet is silent, not starved.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from anchorvoice.frames import FloatArray

OverflowPolicy = Literal["drop_oldest", "drop_newest"]


class RingBuffer:
    """SPSC ring of mono float32 samples; see the module docstring for the threading contract."""

    def __init__(self, capacity: int, *, overflow: OverflowPolicy = "drop_newest", headroom: int | None = None):
        if capacity <= 0:
            raise ValueError(f"RingBuffer capacity must be a positive number of samples, got {capacity}")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"RingBuffer overflow must be 'drop_oldest' or 'drop_newest', got {overflow!r}")
        self.capacity = int(capacity)
        self.overflow: OverflowPolicy = overflow
        if headroom is None:
            headroom = self.capacity if overflow == "drop_oldest" else 0
        if headroom < 0:
            raise ValueError(f"RingBuffer headroom must be >= 0, got {headroom}")
        self._size = self.capacity + int(headroom)
        self._buf: FloatArray = np.zeros(self._size, dtype=np.float32)
        self._write_pos = 0  # owned by the producer
        self._read_pos = 0  # owned by the consumer
        # Producer-side counters.
        self._writer_dropped = 0
        self._writer_drop_events = 0
        self._ever_written = False
        # Consumer-side counters.
        self._reader_dropped = 0
        self._reader_drop_events = 0
        self.underrun_samples = 0
        self.underrun_events = 0

    # -- shared views -------------------------------------------------------------------------
    def available(self) -> int:
        """Samples queued for the consumer (may exceed ``capacity`` under ``drop_oldest``)."""
        return self._write_pos - self._read_pos

    def free(self) -> int:
        """Samples the producer can write now without dropping any."""
        return self._size - (self._write_pos - self._read_pos)

    @property
    def overrun_samples(self) -> int:
        """Samples dropped on overflow, by either side."""
        return self._writer_dropped + self._reader_dropped

    @property
    def overrun_events(self) -> int:
        """Number of writes/reads that had to drop samples."""
        return self._writer_drop_events + self._reader_drop_events

    # -- producer -----------------------------------------------------------------------------
    def write(self, data: FloatArray) -> int:
        """Queue ``data`` (1-D, any float dtype); returns how many samples were stored."""
        n = len(data)
        if n == 0:
            return 0
        self._ever_written = True
        w = self._write_pos
        room = self._size - (w - self._read_pos)
        if self.overflow == "drop_newest":
            room = min(room, self.capacity - (w - self._read_pos))
        if n > room:
            self._writer_dropped += n - max(room, 0)
            self._writer_drop_events += 1
            n = max(room, 0)
            if n == 0:
                return 0
        start = w % self._size
        first = min(n, self._size - start)
        self._buf[start : start + first] = data[:first]
        if first < n:
            self._buf[: n - first] = data[first:n]
        self._write_pos = w + n  # publish after the copy
        return n

    def set_capacity(self, capacity: int) -> None:
        """Change the ``drop_oldest`` bound within the storage allocated at construction (the runner's
        adaptive jitter buffer); one int assignment, so the consumer sees the old or the new bound."""
        if self.overflow != "drop_oldest" or not 0 < capacity <= self._size // 2:
            raise ValueError(f"RingBuffer capacity can change only under drop_oldest, within 1..{self._size // 2}")
        self.capacity = int(capacity)

    # -- consumer -----------------------------------------------------------------------------
    def _trim(self) -> int:
        """Under ``drop_oldest``, skip the oldest samples beyond ``capacity``; returns the fill."""
        avail = self._write_pos - self._read_pos
        if avail > self.capacity and self.overflow == "drop_oldest":
            excess = avail - self.capacity
            self._read_pos += excess
            self._reader_dropped += excess
            self._reader_drop_events += 1
            avail = self.capacity
        return avail

    def read_into(self, out: FloatArray, *, pad: bool = False) -> int:
        """Copy up to ``len(out)`` of the oldest queued samples into ``out``; returns the count.

        With ``pad=True`` (the audio callback's case) the rest of ``out`` is zero-filled and a
        shortfall counts as an underrun once the stream has started.
        """
        want = len(out)
        avail = self._trim()
        n = min(want, avail)
        if n:
            r = self._read_pos
            start = r % self._size
            first = min(n, self._size - start)
            out[:first] = self._buf[start : start + first]
            if first < n:
                out[first:n] = self._buf[: n - first]
            self._read_pos = r + n  # release the slots after the copy
        if pad and n < want:
            out[n:] = 0.0
            if self._ever_written:
                self.underrun_samples += want - n
                self.underrun_events += 1
        return n

    def read(self, n: int) -> FloatArray:
        """Read up to ``n`` samples into a new array (allocates: not for the audio callback)."""
        out = np.empty(n, dtype=np.float32)
        got = self.read_into(out)
        return out[:got]

    def discard(self, n: int | None = None) -> int:
        """Drop up to ``n`` (all if None) queued samples without counting an overrun."""
        avail = self._write_pos - self._read_pos
        k = avail if n is None else min(n, avail)
        self._read_pos += k
        return k
