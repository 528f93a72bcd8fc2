"""Typed configuration and statistics of the live runner (:mod:`anchorvoice.engine.runner`).

``RunnerConfig`` fills from the ``[runner]`` table of ``configs/vc.toml`` via
:func:`anchorvoice.engine.config.from_dict` and from ``anchorvoice live`` options; ``RunnerStats`` is the
snapshot ``LiveRunner.stats()`` returns for the status line and the end-of-stream summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from anchorvoice.errors import ConfigError
from anchorvoice.streaming.ring import OverflowPolicy
from anchorvoice.streaming.sola import MAX_OVERLAP_S


@dataclass
class RunnerConfig:
    """Live runner parameters (times in milliseconds, rounded to whole samples)."""

    sample_rate: int = 48000
    """Device sample rate in Hz; the rate of ``callback`` buffers and of the window given to process."""
    block_ms: float = 20.0
    """New audio per processed block (RVC default 250 ms for neural VC; 20 ms suits the DSP path)."""
    context_ms: float = 40.0
    """Past audio given to process before the kept part (pitch trackers need ~30-40 ms of history)."""
    lookahead_ms: float = 0.0
    """Future audio given to process after the block; adds to latency."""
    crossfade_ms: float = 10.0
    """SOLA overlap between consecutive blocks, at most 40 ms (RVC's cap)."""
    sola_search_ms: float = 10.0
    """SOLA search window for the best-matching offset (RVC and DESIGN.md: ~10 ms)."""
    prefill_blocks: int = 1
    """Jitter buffer: blocks queued before playback starts; tolerates a worker this many blocks late."""
    input_queue_blocks: int = 8
    """Input ring bound in blocks; beyond it the oldest input is dropped (fresh audio wins)."""
    output_queue_blocks: int = 4
    """Output ring bound in blocks beyond the jitter buffer; beyond it the oldest output is dropped, so
    latency stays bounded after a stall. Must exceed the device buffer (4 x 20 ms covers 80 ms)."""
    input_overflow: OverflowPolicy = "drop_oldest"
    """Input ring overflow policy: drop_oldest keeps the newest audio, drop_newest keeps the queue."""
    degrade_policy: Literal["dry", "silence"] = "dry"
    """What to play while degraded: the unprocessed input, or silence."""
    degrade_rtf: float = 1.0
    """Per-block real-time factor (compute / block duration) above which a block counts as slow."""
    degrade_after_blocks: int = 5
    """Consecutive slow blocks that trigger bypass."""
    recover_rtf: float = 0.8
    """A probe must run below this real-time factor to count towards recovery."""
    recover_after_probes: int = 3
    """Consecutive good probes needed to leave bypass."""
    probe_every_blocks: int = 5
    """While degraded, try the real process on every Nth block."""
    max_callback_frames: int = 16384
    """Largest device buffer handled without splitting (scratch preallocated for it)."""
    poll_ms: float = 1.0
    """Worker sleep when no block is queued (the callback cannot signal without a lock)."""
    freeze_gc: bool = True
    """``gc.freeze()`` at start: objects alive then (models, modules) leave the cyclic GC's reach, so a
    full collection no longer walks them; measured 190 ms per gen-2 pass with the DSP converter
    loaded (146k objects, bench/soak.py), enough to underrun. Undone by ``stop()``."""

    def samples(self, ms: float) -> int:
        """Milliseconds -> whole samples at ``sample_rate``."""
        return int(round(ms * self.sample_rate / 1000.0))

    def validate(self) -> None:
        """Raise ConfigError naming the field (``[live] key``) if a value cannot work."""

        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"{why}, got {getattr(self, key)!r}", key=f"live.{key}")

        if self.sample_rate <= 0:
            raise bad("sample_rate", "must be a positive rate in Hz")
        if self.samples(self.block_ms) <= 0:
            raise bad("block_ms", "must be at least one sample long")
        for name in ("context_ms", "lookahead_ms", "crossfade_ms", "sola_search_ms"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.crossfade_ms > MAX_OVERLAP_S * 1000 or self.crossfade_ms > self.block_ms:
            raise bad("crossfade_ms", f"must be <= 40 ms and <= block_ms ({self.block_ms})")
        for name in ("input_queue_blocks", "output_queue_blocks", "degrade_after_blocks",
                     "recover_after_probes", "probe_every_blocks", "max_callback_frames"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if self.prefill_blocks < 0:
            raise bad("prefill_blocks", "must be >= 0")
        if self.degrade_policy not in ("dry", "silence"):
            raise bad("degrade_policy", "must be 'dry' or 'silence'")
        for name in ("degrade_rtf", "recover_rtf"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be positive")


@dataclass
class RunnerStats:
    """A snapshot for the live status line and the end-of-stream summary."""

    input_level_db: float
    """RMS level of the newest processed input block in dBFS (-inf for digital silence)."""
    algorithmic_latency_ms: float
    """Block + lookahead + crossfade + SOLA search."""
    total_latency_ms: float
    """Algorithmic latency + jitter buffer + device latencies reported to the runner."""
    compute_ms: float
    """Compute time of the last real process call, in ms."""
    compute_ms_avg: float
    """Exponential moving average of the compute time (about 20 blocks)."""
    compute_ms_max: float
    """Longest compute time of one block since the start (spikes cause underruns, averages do not)."""
    rtf: float
    """Average compute time / block duration; above 1 the converter cannot keep up."""
    underruns: int
    """Output callbacks that found too few samples since playback started."""
    overruns: int
    """Drop events in the input and output rings."""
    dropped_samples: int
    """Samples dropped by both rings."""
    degraded: bool
    """True while bypass is playing."""
    degraded_reason: str | None
    """"error" or "slow" while degraded, else None."""
    blocks_processed: int
    """Blocks handed to the output, converted or bypassed."""
    blocks_bypassed: int
    """Blocks played in bypass."""
    errors: int
    """Exceptions raised by process (including probes)."""
    last_error: str | None
    """The most recent process exception, as text."""
    callback_errors: int
    """Exceptions caught inside callback (should stay 0)."""
    worker_alive: bool
    """Whether the worker thread is running."""


