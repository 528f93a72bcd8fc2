"""How many threads the next unit of repeated work should use, chosen from how long the last ones took.

Why: an intra-op parallel region (a torch op, a numba ``prange``) waits at its end for its slowest
thread. On a quiet two-core machine two threads make a GPT decode step or a vocoder chunk about
1.5-1.9x faster than one. On a streamer's PC, where OBS and a game keep the cores busy, the OS
deschedules one of the two threads for a whole time slice at almost every region, and the same work
on two threads was measured 3-20x *slower* than on one (AMD EPYC, 2 cores, two busy processes at
normal priority: full-size GPT float32 decode 440-650 ms/token on 2 threads vs 35 on 1; bf16
HiFi-GAN 3.5 s vs 0.7 s per second of audio). No thread count is right for both cases, and the
load changes while a stream runs, so the count is measured, not configured.

The rule (pure logic, no clock or threads of its own: the caller times each unit and reports it):
run on the current count; every ``probe_every`` units, run ``probe_units`` units on each other
count (after ``settle`` units that are not counted: the first region after a change pays for waking
threads) and keep the count with the lowest median time per unit of work; a probe whose first timed
unit takes twice the current median (a settling one four times) stops there, since under load the
slow count is very slow. A probe that does not
win doubles the gap to the next one, up to ``max_every``, so a machine whose load does not change
pays little for probing; when the current count's recent median moves by more than ``change``
in the direction where another count could win (all threads got slower: a game started; one thread
got faster: it stopped), the next probe comes at once, unless such probes keep losing (load that
comes and goes in waves), which doubles their own gap the same way.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter


@dataclass
class GovernedUnit:
    """One unit of work under a governor: the thread count it runs on and its size."""

    threads: int
    work: float


@dataclass(frozen=True)
class GovernorConfig:
    """Probing schedule of a :class:`ThreadGovernor`."""

    probe_every: int = 24
    """Units on the current count before the first probe (and after the count changed)."""
    max_every: int = 384
    """Longest gap between probes, reached by doubling after each probe that did not win."""
    probe_units: int = 3
    """Timed units per probed count; the median of these is compared (>= 1)."""
    settle: int = 1
    """Units run on a newly set count before timing starts (thread wake-up, first-call caches)."""
    win: float = 0.92
    """A probed count replaces the current one when its median is below ``win`` x the current's."""
    change: float = 0.5
    """Relative move of the current count's median that triggers a probe at once."""

    def validate(self) -> None:
        if self.probe_units < 1 or self.settle < 0 or self.probe_every < 1 or self.max_every < self.probe_every:
            raise ValueError(
                "thread governor: probe_units and probe_every must be >= 1, settle >= 0 and max_every >= "
                f"probe_every; got {self}"
            )
        if not 0.0 < self.win <= 1.0 or self.change <= 0.0:
            raise ValueError(f"thread governor: win must be in (0, 1] and change > 0; got {self}")


def thread_counts(max_threads: int) -> list[int]:
    """The counts worth trying on ``max_threads`` cores: all of them, half, and one (largest first)."""
    if max_threads < 1:
        raise ValueError(f"max_threads must be >= 1, got {max_threads}")
    return sorted({max_threads, max(1, max_threads // 2), 1}, reverse=True)


class ThreadGovernor:
    """Picks a thread count per unit of work; see the module docstring for the rule.

    ``threads()`` says what to run the next unit on; ``record(seconds, work)`` reports how long that
    unit took and how much work it was (tokens, frames: time is compared per unit of work, so units
    of different sizes can share a governor). ``unit(set_threads)`` does both around a ``with`` block.
    """

    def __init__(self, counts: Sequence[int], config: GovernorConfig | None = None) -> None:
        if not counts or any(c < 1 for c in counts):
            raise ValueError(f"thread counts must be a non-empty list of counts >= 1, got {list(counts)}")
        self.config = config or GovernorConfig()
        self.config.validate()
        self.counts = list(dict.fromkeys(counts))
        self.current = self.counts[0]
        self.switches = 0
        """How often the chosen count changed (status pages and benches print it)."""
        self._recent: deque[float] = deque(maxlen=max(self.config.probe_units, 3))
        self._reference: float | None = None  # current count's median when it was last chosen
        self._gap = self.config.probe_every  # units between scheduled probes (doubles while they lose)
        self._trigger_gap = self.config.probe_every  # the same for probes a change of load asked for
        self._wait = self._gap  # units from the last probe to the next one
        self._triggered = False
        self._since_probe = 0
        self._queue: list[int] = []  # counts still to probe in this round
        self._probe_count: int | None = None
        self._probe_seen = 0
        self._probe_times: list[float] = []
        self._results: dict[int, float] = {}

    def threads(self) -> int:
        """The count to run the next unit on."""
        if self._probe_count is None and len(self.counts) > 1 and self._since_probe >= self._wait:
            self._queue = [c for c in self.counts if c != self.current]
            self._results = {}
            self._next_probe()
        return self._probe_count if self._probe_count is not None else self.current

    def record(self, seconds: float, work: float = 1.0) -> None:
        """Report the unit just run on ``threads()``'s count: its wall time and its size (> 0)."""
        if work <= 0 or seconds < 0:
            return  # an empty unit says nothing about speed
        per = seconds / work
        if self._probe_count is not None:
            self._probe_seen += 1
            settling = self._probe_seen <= self.config.settle
            if not settling:
                self._probe_times.append(per)
            mine = statistics.median(self._recent) if self._recent else None
            # A count that runs at 2x the current's median (4x while it settles) cannot win: stop paying.
            hopeless = mine is not None and per > (4.0 if settling else 2.0) * mine
            if hopeless:
                self._probe_times.append(per)
            if hopeless or len(self._probe_times) >= self.config.probe_units:
                self._results[self._probe_count] = statistics.median(self._probe_times)
                self._next_probe()
                if self._probe_count is None:
                    self._decide()
            return
        self._recent.append(per)
        self._since_probe += 1
        if len(self._recent) == self._recent.maxlen:
            now = statistics.median(self._recent)
            if self._reference is None:
                self._reference = now
            elif abs(now - self._reference) > self.config.change * self._reference:
                # The load moved. Look again at once only where another count could now win: more
                # threads once this count got faster (load left), fewer once it got slower (load came).
                slower = now > self._reference
                if (slower and self.current != min(self.counts)) or (not slower and self.current != max(self.counts)):
                    self._wait = min(self._wait, self._trigger_gap)
                    self._triggered = True
                self._reference = now

    @contextmanager
    def unit(
        self, set_threads: Callable[[int], None], work: float = 1.0, restore: int | None = None
    ) -> Iterator[GovernedUnit]:
        """``with gov.unit(torch.set_num_threads) as u:`` runs the block on ``u.threads`` and records its
        time; the block may set ``u.work`` when its size is known only at the end (samples produced).
        ``restore`` is set back afterwards (other work in the process keeps its own count)."""
        u = GovernedUnit(self.threads(), work)
        set_threads(u.threads)
        t0 = perf_counter()
        try:
            yield u
            self.record(perf_counter() - t0, u.work)
        finally:
            if restore is not None and restore != u.threads:
                set_threads(restore)

    def _next_probe(self) -> None:
        self._probe_count = self._queue.pop(0) if self._queue else None
        self._probe_seen = 0
        self._probe_times = []

    def _decide(self) -> None:
        mine = statistics.median(self._recent) if self._recent else None
        best = min(self._results, key=self._results.__getitem__)
        self._since_probe = 0
        if mine is None or self._results[best] < self.config.win * mine:
            if best != self.current:
                self.switches += 1
            self.current = best
            self._recent.clear()
            self._reference = None
            self._gap = self._trigger_gap = self.config.probe_every
        else:
            self._gap = min(2 * self._gap, self.config.max_every)
            if self._triggered:  # load that comes and goes in waves: ask less often
                self._trigger_gap = min(2 * self._trigger_gap, self.config.max_every)
        self._wait, self._triggered = self._gap, False

    def summary(self) -> dict[str, object]:
        """What it chose and how often it changed its mind (for status pages and benches)."""
        return {"threads": self.current, "counts": list(self.counts), "switches": self.switches,
                "probe_gap": self._gap}
