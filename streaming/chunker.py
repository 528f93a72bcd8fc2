"""Cut a sample stream into fixed blocks, each handed out with left context and optional lookahead.

A block-based converter sees more than the block it must produce: ``context`` samples of the past
(so that pitch trackers and convolutions have history; RVC feeds 2.5 s of it) and ``lookahead``
samples of the future (which cost latency). Windows end on the block grid: window ``k`` is ready as
soon as ``(k+1)*B`` samples have been fed (``B`` = block) and holds the newest
``context + B + lookahead`` of them::

    window k = stream[(k+1)*B - context - B - lookahead : (k+1)*B]
             = [ context | block k = stream[k*B - lookahead : (k+1)*B - lookahead] | lookahead ]

so the block part lags the input by exactly ``lookahead`` samples (a window whose *block* sat on the
grid would instead wait for part of the next block, which arrives a whole device buffer later).
Samples before the start of the stream are zeros. ``window_start`` (the stream index of the
window's first sample) tells callers where it sits.

Sans-I/O: ``feed()`` samples, then call ``next_window()`` until it returns None. The returned
window is a view of an internal buffer that the next ``feed``/``next_window`` overwrites; copy it
if you keep it.
"""

from __future__ import annotations

import numpy as np

from anchorvoice.frames import FloatArray


class Chunker:
    """Fixed-size blocks with ``context`` samples of history and ``lookahead`` samples of future."""

    def __init__(self, block: int, context: int = 0, lookahead: int = 0) -> None:
        if block <= 0:
            raise ValueError(f"Chunker block must be a positive number of samples, got {block}")
        if context < 0 or lookahead < 0:
            raise ValueError(f"Chunker context and lookahead must be >= 0, got {context}, {lookahead}")
        self.block = int(block)
        self.context = int(context)
        self.lookahead = int(lookahead)
        self.window_size = self.context + self.block + self.lookahead
        # Holds one window plus room for incoming samples; grown only if a feed is larger.
        self._buf: FloatArray = np.zeros(self.window_size + 4 * self.block, dtype=np.float32)
        self._out: FloatArray = np.zeros(self.window_size, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: history becomes zeros, the block counter restarts."""
        self._buf[:] = 0.0
        self._fill = self.context + self.lookahead  # the zero history counts as already present
        self.blocks_out = 0

    @property
    def window_start(self) -> int:
        """Stream index of the first sample of the window ``next_window`` returns next."""
        return self.blocks_out * self.block - self.context - self.lookahead

    def pending(self) -> int:
        """Samples fed beyond the history that the next window needs."""
        return self._fill - self.context - self.lookahead

    def feed(self, samples: FloatArray) -> None:
        """Append samples to the stream."""
        n = len(samples)
        if self._fill + n > len(self._buf):
            grown = np.zeros(self._fill + n + self.window_size, dtype=np.float32)
            grown[: self._fill] = self._buf[: self._fill]
            self._buf = grown
        self._buf[self._fill : self._fill + n] = samples
        self._fill += n

    def next_window(self) -> FloatArray | None:
        """The next ``(window_size,)`` window, or None until enough samples have been fed."""
        if self._fill < self.window_size:
            return None
        self._out[:] = self._buf[: self.window_size]
        b = self.block
        rest = self._fill - b
        self._buf[:rest] = self._buf[b : self._fill]  # overlapping move; numpy copies safely
        self._fill = rest
        self.blocks_out += 1
        return self._out
