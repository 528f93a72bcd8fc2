"""The live runner's stats snapshot (:meth:`anchorvoice.streaming.runner.LiveRunner.stats`)."""

from __future__ import annotations

from dataclasses import dataclass


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
    """Samples dropped by both rings, and output left out to bring the delay back after a stall."""
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
    jitter_buffer_ms: float = 0.0
    """Current size of the adaptive jitter buffer (included in ``total_latency_ms``)."""
    jitter_peak_ms: float = 0.0
    """Largest jitter buffer since the start."""
    jitter_grows: int = 0
    """Times an underrun grew the jitter buffer by a block."""
    jitter_shrinks: int = 0
    """Times a quiet period gave a block back."""
    audio_priority: str = "normal"
    """Scheduling of the audio callback thread, e.g. 'SCHED_FIFO 20' or 'normal'."""
    worker_priority: str = "normal"
    """Scheduling of the worker thread, e.g. 'SCHED_RR 10', 'nice -10' or 'normal'."""
    priority_note: str | None = None
    """Why a thread stayed at normal priority and what to do about it, or None."""
