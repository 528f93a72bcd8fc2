"""Chunker: windows with left context and lookahead, at the stream positions they claim."""

from __future__ import annotations

import numpy as np
import pytest

from anchorvoice.streaming.chunker import Chunker


def _stream_slice(x: np.ndarray, start: int, size: int) -> np.ndarray:
    padded = np.concatenate([np.zeros(max(0, -start), np.float32), x[max(0, start) : start + size]])
    return padded[:size]


@pytest.mark.parametrize("feed", [1, 7, 32, 100])
def test_windows_hold_context_block_and_lookahead(feed: int) -> None:
    x = np.arange(1, 501, dtype=np.float32)
    ch = Chunker(block=32, context=20, lookahead=8)
    windows = []
    for i in range(0, len(x), feed):
        ch.feed(x[i : i + feed])
        while True:
            start = ch.window_start
            w = ch.next_window()
            if w is None:
                break
            windows.append((start, w.copy()))
    # Block k is ready once (k+1)*32 samples exist: 15 windows from 500 samples.
    assert len(windows) == 500 // 32
    for k, (start, w) in enumerate(windows):
        assert start == k * 32 - 20 - 8
        assert len(w) == 20 + 32 + 8
        np.testing.assert_array_equal(w, _stream_slice(x, start, len(w)))
        # The block part lags the newest sample by the lookahead.
        np.testing.assert_array_equal(w[20:52], _stream_slice(x, k * 32 - 8, 32))


def test_reset_restarts_with_zero_history() -> None:
    ch = Chunker(block=4, context=3)
    ch.feed(np.ones(8, np.float32))
    assert ch.next_window() is not None
    ch.reset()
    ch.feed(np.full(4, 2.0, np.float32))
    np.testing.assert_array_equal(ch.next_window(), [0, 0, 0, 2, 2, 2, 2])


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="block"):
        Chunker(block=0)
    with pytest.raises(ValueError, match="context"):
        Chunker(block=4, context=-1)
