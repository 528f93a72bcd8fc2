"""Latency account arithmetic and its one-line description."""

from __future__ import annotations

import pytest

from anchorvoice.streaming.latency import LatencyAccount


def test_parts_add_up() -> None:
    acc = LatencyAccount(
        block_ms=20, lookahead_ms=5, crossfade_ms=10, sola_search_ms=10, jitter_buffer_ms=20,
        device_input_ms=12.5, device_output_ms=7.5,
    )
    assert acc.algorithmic_ms == 45
    assert acc.buffering_ms == 40
    assert acc.total_ms == 85
    assert acc.samples(48000) == 4080


def test_describe_names_every_part_and_the_total() -> None:
    text = LatencyAccount(block_ms=20, crossfade_ms=10, sola_search_ms=10, jitter_buffer_ms=20).describe()
    assert text.startswith("algorithmic 40.0 ms")
    for part in ("block 20.0", "lookahead 0.0", "crossfade 10.0", "search 10.0", "jitter 20.0"):
        assert part in text
    assert text.endswith("= 60.0 ms")


def test_negative_part_is_refused() -> None:
    with pytest.raises(ValueError, match="crossfade_ms"):
        LatencyAccount(block_ms=20, crossfade_ms=-1)
