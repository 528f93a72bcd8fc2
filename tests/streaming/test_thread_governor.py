"""The thread governor keeps the fast count on a quiet machine and leaves a count the load slowed down."""

from __future__ import annotations

import pytest

from anchorvoice.streaming.thread_governor import GovernorConfig, ThreadGovernor, thread_counts


def run(gov: ThreadGovernor, cost: dict[int, float], units: int, work: float = 1.0) -> list[int]:
    """Drive ``units`` units whose time per unit of work on n threads is ``cost[n]``; the counts used."""
    used = []
    for _ in range(units):
        n = gov.threads()
        used.append(n)
        gov.record(cost[n] * work, work)
    return used


QUIET = {2: 1.0, 1: 1.7}  # two threads ~1.7x faster (GPT decode, vocoder on an idle 2-core machine)
BUSY = {2: 12.0, 1: 1.8}  # two busy processes beside us: every parallel region waits for a descheduled thread


def test_counts_worth_trying() -> None:
    assert thread_counts(2) == [2, 1]
    assert thread_counts(8) == [8, 4, 1]
    assert thread_counts(1) == [1]
    with pytest.raises(ValueError):
        thread_counts(0)


def test_quiet_machine_keeps_all_threads_and_probes_less_and_less() -> None:
    gov = ThreadGovernor([2, 1])
    used = run(gov, QUIET, 3000)
    on_one = used.count(1)
    assert gov.current == 2 and gov.switches == 0
    # probes back off to one every max_every units: a few per cent of the units, mostly early
    assert on_one / len(used) < 0.03
    assert used[-1000:].count(1) <= 4 * 3
    assert gov.summary()["probe_gap"] == gov.config.max_every


def test_load_arriving_moves_to_one_thread_quickly_and_back_when_it_leaves() -> None:
    cfg = GovernorConfig()
    gov = ThreadGovernor([2, 1], cfg)
    run(gov, QUIET, 2000)  # long quiet stretch: probing has backed off to max_every
    used = run(gov, BUSY, 200)
    first_one = used.index(1)
    # the jump in the current count's time triggers a probe at once, not after max_every units
    assert first_one <= len(gov._recent) + 1
    assert gov.current == 1
    # later probes of 2 threads stop at their first unit (over 4x the current median while settling)
    probes = sum(1 for a, b in zip(used[first_one:], used[first_one + 1:]) if (a, b) == (1, 2))
    assert used[first_one:].count(2) == probes
    # load gone: two threads win again at the next probe
    used = run(gov, QUIET, cfg.max_every + 50)
    assert gov.current == 2
    assert gov.switches == 2


def test_noisy_load_on_one_thread_does_not_trigger_probes_of_more_threads() -> None:
    """Under load our one thread's share of a core swings; slower steps there are no reason to try two."""
    import random

    rng = random.Random(0)
    gov = ThreadGovernor([2, 1])
    run(gov, BUSY, 100)
    assert gov.current == 1
    used = []
    for i in range(2000):
        n = gov.threads()
        used.append(n)
        swing = 1.0 + (1.5 if (i // 40) % 2 else 0.0) + 0.2 * rng.random()  # load comes and goes in waves
        gov.record(BUSY[n] * swing)
    assert gov.current == 1
    probes = sum(1 for a, b in zip(used, used[1:]) if (a, b) == (1, 2))
    assert probes <= 2000 // gov.config.max_every + 6  # the backed-off schedule, not one per wave


def test_time_is_compared_per_unit_of_work() -> None:
    """Chunks of different sizes: a big chunk on the fast count must not look slow."""
    gov = ThreadGovernor([2, 1], GovernorConfig(probe_every=4, max_every=8))
    for i in range(400):
        n = gov.threads()
        work = 10.0 if n == 2 and i % 2 else 1.0
        gov.record(QUIET[n] * work, work)
    assert gov.current == 2 and gov.switches == 0


def test_settle_units_are_not_counted() -> None:
    """The first unit after a change (threads waking) is slow; it must not decide the probe."""
    cfg = GovernorConfig(probe_every=5, max_every=5, settle=1, probe_units=2)
    gov = ThreadGovernor([2, 1], cfg)
    last = None
    for _ in range(200):
        n = gov.threads()
        cost = QUIET[n] * (20.0 if n != last else 1.0)  # huge first-unit cost after every switch
        last = n
        gov.record(cost)
    assert gov.current == 2 and gov.switches == 0


def test_unit_context_sets_times_and_restores() -> None:
    calls: list[int] = []
    gov = ThreadGovernor([2, 1])
    with gov.unit(calls.append, restore=4) as u:
        assert u.threads == 2
    assert calls == [2, 4]
    assert len(gov._recent) == 1
    with gov.unit(calls.append) as u:
        u.work = 0  # nothing came out of this unit: it is not counted
    assert len(gov._recent) == 1


def test_empty_units_and_bad_settings() -> None:
    gov = ThreadGovernor([2, 1])
    gov.record(1.0, work=0)  # nothing was produced: says nothing about speed
    assert not gov._recent
    with pytest.raises(ValueError):
        ThreadGovernor([])
    with pytest.raises(ValueError):
        ThreadGovernor([2, 0])
    with pytest.raises(ValueError):
        ThreadGovernor([2, 1], GovernorConfig(probe_units=0))
    with pytest.raises(ValueError):
        ThreadGovernor([2, 1], GovernorConfig(win=1.5))
    single = ThreadGovernor([1])
    assert run(single, {1: 1.0}, 100) == [1] * 100
