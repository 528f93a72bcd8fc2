"""Per-stage thread counts for torch (and the numba GPT step, which follows torch's count) on a busy CPU.

A stage calls its heavy work inside ``with self.threads.unit(work, enabled=...):``. On CPU with two or more
intra-op threads, a :class:`~anchorvoice.streaming.thread_governor.ThreadGovernor` picks the count
for that call from the measured time of earlier calls (all threads on a quiet machine, one when
other programs keep the cores busy and every parallel region waits for a descheduled thread), sets
it with ``torch.set_num_threads`` and sets the previous count back afterwards, so other stages and
threads keep theirs. Off (``enabled=False``, the stage's ``adaptive_threads``), on a GPU, or with one
thread, it does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from anchorvoice.streaming.thread_governor import GovernedUnit, GovernorConfig, ThreadGovernor, thread_counts


class AdaptiveThreads:
    """The thread governor of one stage, bound to torch's intra-op thread count."""

    def __init__(self, config: GovernorConfig | None = None) -> None:
        self.config = config
        self.governor: ThreadGovernor | None = None

    @contextmanager
    def unit(
        self, work: float = 1.0, device: str | torch.device = "cpu", enabled: bool = True
    ) -> Iterator[GovernedUnit]:
        """Run the block on the governed count; ``work`` = its size (tokens, frames), which the block
        may set on the yielded unit when it is known only at the end."""
        have = torch.get_num_threads()
        if not enabled or torch.device(device).type != "cpu" or (self.governor is None and have < 2):
            yield GovernedUnit(have, work)
            return
        if self.governor is None:
            self.governor = ThreadGovernor(thread_counts(have), self.config)
        with self.governor.unit(torch.set_num_threads, work, restore=have) as u:
            yield u

    def summary(self) -> dict[str, object]:
        """The governor's choice for status pages and benches (``{}`` before the first governed call)."""
        return self.governor.summary() if self.governor is not None else {}
