"""RingBuffer: SPSC hand-off between threads, overflow policies and their counters."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from anchorvoice.streaming.ring import RingBuffer


def test_concurrent_producer_consumer_loses_and_duplicates_nothing() -> None:
    # A counting ramp written in ragged blocks by one thread and read in other ragged blocks by
    # another must come out complete and in order when the buffer never overflows.
    total = 400_000
    ring = RingBuffer(4096, overflow="drop_newest")
    data = np.arange(total, dtype=np.float32)  # float32 is exact for integers below 2**24
    received = np.full(total, -1.0, dtype=np.float32)
    got = 0

    def producer() -> None:
        rng = np.random.default_rng(1)
        pos = 0
        while pos < total:
            n = min(int(rng.integers(1, 700)), total - pos, ring.free())
            if n == 0:
                time.sleep(0)
                continue
            assert ring.write(data[pos : pos + n]) == n
            pos += n

    def consumer() -> None:
        nonlocal got
        rng = np.random.default_rng(2)
        out = np.zeros(900, dtype=np.float32)
        while got < total:
            n = ring.read_into(out[: int(rng.integers(1, 900))])
            received[got : got + n] = out[:n]
            got += n
            if n == 0:
                time.sleep(0)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert got == total
    np.testing.assert_array_equal(received, data)
    assert ring.overrun_samples == 0 and ring.underrun_events == 0


def test_drop_newest_keeps_queued_audio_and_counts() -> None:
    ring = RingBuffer(10, overflow="drop_newest")
    assert ring.write(np.arange(8, dtype=np.float32)) == 8
    assert ring.write(np.arange(100, 105, dtype=np.float32)) == 2
    assert ring.overrun_samples == 3 and ring.overrun_events == 1
    np.testing.assert_array_equal(ring.read(10), [0, 1, 2, 3, 4, 5, 6, 7, 100, 101])


def test_drop_oldest_keeps_newest_capacity_samples() -> None:
    ring = RingBuffer(10, overflow="drop_oldest")
    ring.write(np.arange(8, dtype=np.float32))
    ring.write(np.arange(8, 14, dtype=np.float32))  # 14 queued > capacity 10
    np.testing.assert_array_equal(ring.read(20), np.arange(4, 14))
    assert ring.overrun_samples == 4 and ring.overrun_events == 1
    # Latency stays bounded: never more than capacity readable at once.
    ring.write(np.arange(100, 125, dtype=np.float32))  # more than capacity + headroom
    out = ring.read(100)
    assert len(out) == 10
    np.testing.assert_array_equal(out, np.arange(110, 120))  # oldest trimmed, excess newest dropped


def test_wraparound_many_times_preserves_order() -> None:
    ring = RingBuffer(13)  # small, so positions wrap dozens of times
    seq = np.arange(1000, dtype=np.float32)
    pos, out = 0, []
    for n in [3, 5, 7, 1, 6] * 40:
        ring.write(seq[pos : pos + n])
        pos += n
        out.append(ring.read(4 if n % 2 else 7))
    out.append(ring.read(100))
    assert ring.overrun_samples == 0
    np.testing.assert_array_equal(np.concatenate(out), seq[:pos])


def test_padded_read_counts_underruns_only_after_start() -> None:
    ring = RingBuffer(16)
    out = np.ones(4, dtype=np.float32)
    assert ring.read_into(out, pad=True) == 0
    assert ring.underrun_events == 0  # nothing was ever written: silence, not starvation
    np.testing.assert_array_equal(out, 0.0)
    ring.write(np.array([1.0, 2.0], dtype=np.float32))
    assert ring.read_into(out, pad=True) == 2
    np.testing.assert_array_equal(out, [1.0, 2.0, 0.0, 0.0])
    assert ring.underrun_events == 1 and ring.underrun_samples == 2


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)
    with pytest.raises(ValueError, match="drop_oldest"):
        RingBuffer(8, overflow="block")  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_concurrent_overflow_keeps_order_and_accounts_for_every_sample(policy: str) -> None:
    # A producer faster than the consumer: whatever arrives is in order, never duplicated, and
    # every sample is either received or counted as dropped.
    total = 200_000
    ring = RingBuffer(512, overflow=policy)  # type: ignore[arg-type]
    data = np.arange(total, dtype=np.float32)
    chunks: list[np.ndarray] = []
    done = threading.Event()

    def producer() -> None:
        for i in range(0, total, 100):
            ring.write(data[i : i + 100])
        done.set()

    def consumer() -> None:
        out = np.zeros(64, dtype=np.float32)
        while True:
            finished = done.is_set()
            n = ring.read_into(out)
            if n:
                chunks.append(out[:n].copy())
            elif finished:
                return
            time.sleep(0.00005)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    got = np.concatenate(chunks)
    assert np.all(np.diff(got) > 0)  # in order, no duplicates
    assert len(got) + ring.overrun_samples == total
    assert ring.overrun_samples > 0  # the test really overflowed
