"""SOLA crossfade: identity passes unchanged, misaligned blocks join without clicks."""

from __future__ import annotations

import numpy as np
import pytest

from anchorvoice.streaming.chunker import Chunker
from anchorvoice.streaming.sola import SolaJoiner, best_offset, equal_power_fades

SR = 48000
BLOCK, OVERLAP, SEARCH = 960, 480, 480  # 20 ms blocks, 10 ms crossfade, 10 ms search at 48 kHz


def _run(x: np.ndarray, shift_of_block) -> np.ndarray:  # noqa: ANN001 - test helper
    """Chunk ``x``, take each block's segment from ``x`` delayed by ``shift_of_block(k)``, join."""
    head = OVERLAP + SEARCH
    pad = 200  # room for shifted reads
    ch = Chunker(BLOCK, context=head + pad)
    joiner = SolaJoiner(BLOCK, OVERLAP, SEARCH)
    out = []
    for k in range(len(x) // BLOCK):
        ch.feed(x[k * BLOCK : (k + 1) * BLOCK])
        w = ch.next_window()
        assert w is not None
        s = pad - int(shift_of_block(k))  # a later start = a converter whose output lags
        out.append(joiner.join(w[s : s + joiner.segment_size]).copy())
    return np.concatenate(out)


def test_identity_output_is_input_delayed_by_overlap_plus_search() -> None:
    x = (0.3 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    y = _run(x, lambda k: 0)
    d = OVERLAP + SEARCH
    assert SolaJoiner(BLOCK, OVERLAP, SEARCH).delay == d
    # After the fade-in of the very first block the output is the input, delayed.
    np.testing.assert_allclose(y[d + OVERLAP :], x[OVERLAP : len(y) - d], atol=1e-6)


def test_blocks_with_jittered_timing_join_without_clicks() -> None:
    # A converter whose output timing wanders by up to 3 ms per block: plain concatenation clicks,
    # SOLA realigns each block to the previous one so the waveform stays smooth.
    t = np.arange(3 * SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    shifts = np.random.default_rng(3).integers(0, 144, size=len(x) // BLOCK)
    y = _run(x, lambda k: shifts[k])
    smooth_step = 0.5 * 2 * np.pi * 180 / SR  # largest sample-to-sample change of the sine
    steps = np.abs(np.diff(y[2 * BLOCK :]))
    assert steps.max() < 1.5 * smooth_step

    # The same blocks without SOLA (hard cuts at the shifted positions) do click.
    naive = np.concatenate([x[k * BLOCK - s : (k + 1) * BLOCK - s] for k, s in enumerate(shifts) if k > 0])
    assert np.abs(np.diff(naive)).max() > 5 * smooth_step


def test_best_offset_finds_a_known_shift() -> None:
    rng = np.random.default_rng(5)
    head = rng.standard_normal(1000).astype(np.float32)
    tail = head[137 : 137 + 300].copy()
    assert best_offset(head, tail, search=400) == 137
    assert best_offset(head, np.zeros(300, np.float32), search=400) == 0


def test_fades_are_complementary_and_monotonic() -> None:
    fade_in, fade_out = equal_power_fades(480)
    np.testing.assert_allclose(fade_in + fade_out, 1.0, atol=1e-6)
    assert np.all(np.diff(fade_in) > 0) and fade_in[0] < 1e-4 and fade_in[-1] > 1 - 1e-4


def test_wrong_segment_length_and_sizes_are_refused() -> None:
    joiner = SolaJoiner(BLOCK, OVERLAP, SEARCH)
    with pytest.raises(ValueError, match="block \\+ overlap \\+ search"):
        joiner.join(np.zeros(BLOCK, np.float32))
    with pytest.raises(ValueError, match="crossfade"):
        SolaJoiner(100, 200, 10)
