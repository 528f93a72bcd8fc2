"""When the live runner bypasses a converter and when it comes back (see :mod:`.runner`).

When ``process`` raises, returns too little audio, or runs with a real-time factor above
``degrade_rtf`` for ``degrade_after_blocks`` blocks in a row, the runner switches to bypass
(``degrade_policy``: the dry input, or silence), keeps the stream running and emits
``{"event": "degraded", "reason": "error"|"slow", ...}``. While degraded, the real ``process`` is
retried every ``probe_every_blocks`` blocks (on a side thread when the runner is started, inline when
it is driven by ``step()``); after ``recover_after_probes`` consecutive probes that succeed with a
real-time factor under ``recover_rtf`` it switches back and emits ``{"event": "recovered", ...}``.

Pure bookkeeping, no clock, thread or I/O: the runner reports each block's compute time and each
probe's outcome, and emits the ``degraded`` / ``recovered`` events this returns. Also keeps the
compute-time figures ``stats()`` reports.
"""

from __future__ import annotations

from typing import Any

from anchorvoice.streaming.live_config import LiveConfig


class DegradeGuard:
    """Slow-run and probe counters against a :class:`LiveConfig`'s degrade/recover thresholds."""

    def __init__(self, config: LiveConfig, block_s: float) -> None:
        self.config = config
        self.block_s = block_s
        """Seconds of audio per block (RTF = compute time / this)."""
        self.reset()

    def reset(self) -> None:
        """New stream: not degraded, no measurements."""
        self.reason: str | None = None
        """Why bypass is playing (``"error"`` / ``"slow"``); None while the converter plays."""
        self.degraded_at = 0
        self.compute_ms = 0.0
        self.compute_avg = 0.0
        self.compute_max = 0.0
        self._slow_run = 0
        self._good_probes = 0
        self.errors = 0
        """Failed calls of the converter (blocks and probes)."""
        self.last_error: str | None = None

    def failed(self, error: str, block: int) -> dict[str, Any]:
        """A block's call failed: count it and switch to bypass; returns the event to emit."""
        self.errors += 1
        self.last_error = error
        return self.degrade("error", block, error=error)

    def note_compute(self, dt: float) -> None:
        """One successful call of ``dt`` seconds (last, maximum and a ~20-block average)."""
        self.compute_ms = dt * 1000.0
        self.compute_max = max(self.compute_max, self.compute_ms)
        first = self.compute_avg == 0.0
        self.compute_avg = self.compute_ms if first else 0.95 * self.compute_avg + 0.05 * self.compute_ms

    def after_block(self, dt: float, block: int) -> dict[str, Any] | None:
        """A block computed in ``dt`` s: the ``degraded`` event when too many in a row were slow."""
        rtf = dt / self.block_s
        self._slow_run = self._slow_run + 1 if rtf > self.config.degrade_rtf else 0
        if self._slow_run >= self.config.degrade_after_blocks:
            return self.degrade("slow", block, rtf=rtf)
        return None

    def degrade(self, reason: str, block: int, **info: Any) -> dict[str, Any]:
        """Switch to bypass; returns the event to emit."""
        self.reason = reason
        self.degraded_at = block
        self._slow_run = 0
        self._good_probes = 0
        return {"event": "degraded", "reason": reason, "policy": self.config.degrade_policy, "block": block, **info}

    def probe_due(self, block: int) -> bool:
        """While degraded: whether this block should retry the converter."""
        return (block - self.degraded_at) % self.config.probe_every_blocks == 0

    def after_probe(self, ok: bool, dt: float, block: int, error: str | None = None) -> dict[str, Any] | None:
        """A probe's outcome: the ``recovered`` event after enough good probes in a row."""
        rtf = dt / self.block_s
        if ok:
            self.note_compute(dt)
        else:
            self.errors += 1
            self.last_error = error
        self._good_probes = self._good_probes + 1 if ok and rtf < self.config.recover_rtf else 0
        if self._good_probes < self.config.recover_after_probes or self.reason is None:
            return None
        was, self.reason, self._good_probes = self.reason, None, 0
        return {"event": "recovered", "reason": was, "rtf": rtf, "block": block,
                "bypassed_blocks": block - self.degraded_at}
