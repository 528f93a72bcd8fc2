"""The one typed configuration of the live path: devices, the runner's block scheme, queues, degradation.

``LiveConfig`` fills from the ``[live]`` table of ``configs/vc.toml`` via
:func:`anchorvoice.engine.config.from_dict` (``prefix="live"``) and from ``anchorvoice live`` options;
:class:`~anchorvoice.streaming.live_session.LiveSession` opens devices with it and
:class:`~anchorvoice.streaming.runner.LiveRunner` runs with it. Queue sizes are given in milliseconds and
rounded up to whole blocks by the ``*_blocks`` methods.

Two runner modes follow from the block scheme (``block_mode``): with ``context_ms``, ``lookahead_ms``,
``crossfade_ms`` and ``sola_search_ms`` all 0 the runner hands ``process`` exactly each new block (the mode
for stateful converters, which keep their own history); otherwise it hands it an overlapping window and
joins the answers with SOLA (the mode for windowed processes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from anchorvoice.errors import ConfigError
from anchorvoice.streaming.ring import OverflowPolicy
from anchorvoice.streaming.sola import MAX_OVERLAP_S

BLOCK_MS_RANGE = (1.0, 1000.0)
"""Allowed ``block_ms``: below 1 ms the per-call overhead dominates; above 1 s the voice arrives too late to talk."""
SAMPLE_RATE_RANGE = (8000, 192000)
"""Allowed ``sample_rate`` in Hz (what sound cards and PortAudio offer)."""
WorkerPriority = Literal["rr", "nice", "normal"]
"""How the worker thread is raised: SCHED_RR below the audio thread, nice -10, or left as it is."""
BUFFER_MS_MAX = 2000.0
"""Largest ``jitter_ms``, ``input_queue_ms``, ``output_queue_ms`` and ``device_buffer_ms``: more only adds delay."""


@dataclass
class LiveConfig:
    """Live path settings (the ``[live]`` table); times in milliseconds, rounded to whole samples."""

    backend: str = "sounddevice"
    """Audio API: 'sounddevice' (default) or 'pyaudio'."""
    input: str | None = None
    """Capture device name substring, or an audio file played in real time instead (name ending .wav,
    .flac, .ogg, ...); None: the system default microphone."""
    output: str = "virtual"
    """'virtual' (the virtual microphone, created if missing), a playback device name substring, an audio
    file to record to (.wav/.flac/.ogg) or 'null' (discard)."""
    monitor: str | None = None
    """Optional second playback device (headphones) that hears the converted voice; also a file or 'null'."""
    sample_rate: int = 48000
    """Device rate in Hz; 48 kHz is native to Pulse, Discord's Opus and OBS. Also the rate of the frames
    given to process."""
    block_ms: float = 10.0
    """New audio per process call. 10 ms + the DSP converter's 32 ms + ~2 ms resampling keeps the
    algorithmic latency under 50 ms; neural converters need 150-250 ms (``anchorvoice live`` picks 250)."""
    context_ms: float = 0.0
    """Past audio re-sent before each block (windowed mode; pitch trackers need ~30-40 ms). Stateful
    converters keep their own history: 0."""
    lookahead_ms: float = 0.0
    """Future audio given to process after the block (windowed mode); adds to latency."""
    crossfade_ms: float = 0.0
    """SOLA overlap between consecutive windowed answers, at most 40 ms (RVC's cap) and <= block_ms; 0 for
    stateful converters, whose blocks are exact continuations."""
    sola_search_ms: float = 0.0
    """SOLA search window for the best-matching offset (RVC: ~10 ms); 0 with crossfade 0."""
    jitter_ms: float = 20.0
    """Output queued before playback starts (rounded up to whole blocks): tolerates a worker this late. The
    adaptive jitter buffer starts here and never goes below it."""
    jitter_max_ms: float = 100.0
    """Bound of the adaptive jitter buffer: each output underrun adds one block of queued output (one block
    more latency) up to this (rounded up to whole blocks); equal to ``jitter_ms`` turns adaptation off."""
    jitter_shrink_after_s: float = 30.0
    """Seconds without an underrun after which the jitter buffer gives one block back (it drops one quiet
    output block, below -40 dBFS, so nothing audible is cut), down to ``jitter_ms``."""
    input_queue_ms: float = 80.0
    """Input queued for a late worker before ``input_overflow`` drops audio (rounded up to blocks)."""
    output_queue_ms: float = 80.0
    """Output queued beyond the jitter buffer before the oldest output is dropped (rounded up to blocks), so
    latency returns to this bound after a stall. Must exceed the device buffer."""
    input_overflow: OverflowPolicy = "drop_oldest"
    """Input queue overflow: drop_oldest keeps the newest audio (fresh audio wins), drop_newest the queue."""
    device_buffer_ms: float = 10.0
    """PortAudio buffer per callback."""
    realtime: bool = True
    """Raise the live threads where the OS allows: SCHED_FIFO at ``rt_priority`` for the audio callback thread
    (set from its first callback; rtkit is asked when that is refused) and ``worker_priority`` for the worker.
    The outcome, and what to do when it is refused, is in the live status and summary."""
    rt_priority: int = 20
    """SCHED_FIFO priority of the audio callback thread, 1-99 (rtkit allows up to 20; PulseAudio runs at 5)."""
    worker_priority: WorkerPriority = "rr"
    """Worker thread: 'rr' (SCHED_RR at ``rt_priority`` - 10, at least 1; nice -10 when refused), 'nice'
    (nice -10) or 'normal'. Kernel real-time throttling (95 %) keeps a runaway converter from locking a core."""
    device_latency: str = "low"
    """PortAudio suggested latency: 'low', 'high' or seconds as text (e.g. '0.05')."""
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
    """``gc.collect()`` + ``gc.freeze()`` when the runner starts, ``gc.unfreeze()`` when it stops (the only
    place the live path touches the GC): objects alive at start (models, modules) leave the cyclic GC's
    reach, so a full collection no longer walks them; measured 184-190 ms per gen-2 pass with models
    loaded, enough to make the device callbacks late."""

    # -- derived sizes ---------------------------------------------------------------------------
    def samples(self, ms: float) -> int:
        """Milliseconds -> whole samples at ``sample_rate``."""
        return int(round(ms * self.sample_rate / 1000.0))

    @property
    def block_mode(self) -> bool:
        """True when process receives exactly each new block (no context, lookahead, crossfade or search)."""
        return not (self.context_ms or self.lookahead_ms or self.crossfade_ms or self.sola_search_ms)

    def _blocks(self, ms: float) -> int:
        return max(0, math.ceil(ms / self.block_ms - 1e-9)) if self.block_ms > 0 else 0

    def prefill_blocks(self) -> int:
        """The jitter buffer in whole blocks (``jitter_ms`` rounded up)."""
        return self._blocks(self.jitter_ms)

    def jitter_max_blocks(self) -> int:
        """The adaptive jitter buffer's bound in whole blocks (``jitter_max_ms`` rounded up, at least the start)."""
        return max(self.prefill_blocks(), self._blocks(self.jitter_max_ms))

    def worker_rt_priority(self) -> int:
        """SCHED_RR priority of the worker: below the audio thread's."""
        return max(1, self.rt_priority - 10)

    def input_queue_blocks(self) -> int:
        """The input queue bound in whole blocks (``input_queue_ms`` rounded up, at least 1)."""
        return max(1, self._blocks(self.input_queue_ms))

    def output_queue_blocks(self) -> int:
        """The output queue bound beyond the jitter buffer in whole blocks (at least 1)."""
        return max(1, self._blocks(self.output_queue_ms))

    def suggested_latency(self) -> float | str:
        """``device_latency`` as PortAudio takes it: 'low', 'high' or seconds."""
        if self.device_latency in ("low", "high"):
            return self.device_latency
        try:
            return float(self.device_latency)
        except ValueError:
            raise ConfigError(f"device_latency {self.device_latency!r}: use 'low', 'high' or seconds",
                              key="live.device_latency") from None

    # -- validation ------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the field (``live.<field>``) if a value cannot work."""

        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"{why}, got {getattr(self, key)!r}", key=f"live.{key}")

        if self.backend not in ("sounddevice", "pyaudio"):
            raise bad("backend", "is unknown; choose sounddevice or pyaudio")
        lo, hi = SAMPLE_RATE_RANGE
        if not lo <= self.sample_rate <= hi:
            raise bad("sample_rate", f"must be between {lo} and {hi} Hz")
        lo_ms, hi_ms = BLOCK_MS_RANGE
        if not lo_ms <= self.block_ms <= hi_ms:
            raise bad("block_ms", f"must be between {lo_ms:g} and {hi_ms:g} ms")
        for name in ("jitter_ms", "jitter_max_ms", "input_queue_ms", "output_queue_ms", "device_buffer_ms"):
            if getattr(self, name) > BUFFER_MS_MAX:
                raise bad(name, f"must be at most {BUFFER_MS_MAX:g} ms")
        for name in ("context_ms", "lookahead_ms", "crossfade_ms", "sola_search_ms", "jitter_ms"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.jitter_max_ms < self.jitter_ms:
            raise bad("jitter_max_ms", f"must be >= jitter_ms ({self.jitter_ms})")
        if not self.jitter_shrink_after_s > 0:
            raise bad("jitter_shrink_after_s", "must be positive")
        if not 1 <= self.rt_priority <= 99:
            raise bad("rt_priority", "must be between 1 and 99")
        if self.worker_priority not in get_args(WorkerPriority):
            raise bad("worker_priority", "must be 'rr', 'nice' or 'normal'")
        if self.crossfade_ms > MAX_OVERLAP_S * 1000 or self.crossfade_ms > self.block_ms:
            raise bad("crossfade_ms", f"must be <= 40 ms and <= block_ms ({self.block_ms})")
        for name in ("input_queue_ms", "output_queue_ms", "device_buffer_ms", "degrade_rtf", "recover_rtf",
                     "poll_ms"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be positive")
        for name in ("degrade_after_blocks", "recover_after_probes", "probe_every_blocks", "max_callback_frames"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if self.input_overflow not in ("drop_oldest", "drop_newest"):
            raise bad("input_overflow", "must be 'drop_oldest' or 'drop_newest'")
        if self.degrade_policy not in ("dry", "silence"):
            raise bad("degrade_policy", "must be 'dry' or 'silence'")
        self.suggested_latency()
