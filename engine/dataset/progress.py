"""Progress of long dataset work: counts and an ETA, reported through a callback (the CLI draws it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ProgressEvent:
    """How far one phase of ``dataset make`` is."""

    phase: str
    """'slice', 'transcribe', or a dataset step's name."""
    done: int
    """Items finished (cached ones included)."""
    total: int
    """Items in this phase."""
    eta_s: float | None
    """Estimated seconds left (None until something was computed)."""
    item: str = ""
    """The item just finished."""


ProgressFn = Callable[[ProgressEvent], None]


class PhaseProgress:
    """Counts one phase; the ETA only uses items that were computed, not the cached ones."""

    def __init__(self, phase: str, total: int, report: ProgressFn | None) -> None:
        self.phase, self.total, self.report = phase, total, report
        self.done = 0
        self._computed = 0
        self._busy_s = 0.0
        self._t = time.perf_counter()

    def step(self, item: str, cached: bool = False) -> None:
        now = time.perf_counter()
        if not cached:
            self._computed += 1
            self._busy_s += now - self._t
        self._t = now
        self.done += 1
        if self.report is None:
            return
        eta = None
        if self._computed:
            eta = self._busy_s / self._computed * (self.total - self.done)
        self.report(ProgressEvent(self.phase, self.done, self.total, eta, item))

    def skip_time(self) -> None:
        """Restart the clock (time spent elsewhere is not this phase's)."""
        self._t = time.perf_counter()
