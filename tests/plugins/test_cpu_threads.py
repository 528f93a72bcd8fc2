"""Stages run their heavy calls on the governed thread count and give torch's count back afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from anchorvoice.plugins.cpu_threads import AdaptiveThreads
from anchorvoice.streaming.thread_governor import GovernorConfig


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_unit_sets_the_governed_count_and_restores(two_threads: None) -> None:
    threads = AdaptiveThreads(config=GovernorConfig(probe_every=2, max_every=2, settle=0, probe_units=1))
    seen = []
    for _ in range(12):
        with threads.unit() as u:
            seen.append((u.threads, torch.get_num_threads()))
        assert torch.get_num_threads() == 2
    assert all(governed == inside for governed, inside in seen)  # the block really ran on that count
    assert {n for n, _ in seen} == {1, 2}  # probing tried one thread
    assert threads.summary()["counts"] == [2, 1]


def test_off_gpu_or_single_thread_leaves_torch_alone(two_threads: None) -> None:
    off = AdaptiveThreads()
    with off.unit(enabled=False) as u:
        assert u.threads == 2
    assert off.summary() == {}
    gpu = AdaptiveThreads()
    with gpu.unit(device="cuda") as u:  # the device is only inspected, nothing runs on it
        assert u.threads == 2
    assert gpu.summary() == {}
    torch.set_num_threads(1)
    single = AdaptiveThreads()
    with single.unit() as u:
        assert u.threads == 1
    assert single.summary() == {}


def test_restores_after_an_error(two_threads: None) -> None:
    threads = AdaptiveThreads(config=GovernorConfig(probe_every=1, max_every=1, settle=0, probe_units=1))
    with threads.unit():
        pass
    with pytest.raises(RuntimeError), threads.unit() as u:
        assert u.threads == 1 and torch.get_num_threads() == 1
        raise RuntimeError("stage failed")
    assert torch.get_num_threads() == 2
