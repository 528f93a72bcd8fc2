"""The live runner: audio callback <-> ring buffers <-> worker thread running the converter.

Public API (used by :class:`~anchorvoice.streaming.live_session.LiveSession`, the device backends' tests and
the benchmarks)::

    from anchorvoice.streaming.live_config import LiveConfig
    from anchorvoice.streaming.runner import LiveRunner

    runner = LiveRunner(process, LiveConfig(sample_rate=48000), on_event=print)
    runner.warmup()                    # optional: first calls (JIT, CUDA init) before going live
    runner.start()                     # worker thread (and a side thread for recovery probes)
    ...  # the backend calls, from the device's audio thread, for every device buffer:
    runner.callback(indata, outdata)   # (frames,) or (frames, channels) float32 arrays, or None
    runner.stats()                     # RunnerStats snapshot for the live status line
    runner.latency.describe()          # streaming.latency.LatencyAccount of this configuration
    runner.stop()                      # or: with LiveRunner(...) as runner: ...

:class:`~anchorvoice.streaming.live_config.LiveConfig` holds every setting; bad values raise
:class:`~anchorvoice.errors.ConfigError` naming ``[live.<field>]``. ``runner.block``, ``runner.window_size``,
``runner.input_ring`` and ``runner.output_ring`` (:class:`streaming.ring.RingBuffer`) are public for
backends and tests.

``process(frame: AudioFrame) -> AudioFrame`` (``ProcessFn``) is the converter, called from one thread at a
time; ``frame.timestamp`` is the stream time of its first sample. The runner has two modes
(``LiveConfig.block_mode``):

* **Block mode** (context, lookahead, crossfade and SOLA search all 0; the live default): ``process``
  receives exactly each new block of captured samples, in order, and returns the same span at any rate
  (the runner resamples a different rate back and keeps the newest ``block`` samples). No window is
  assembled and no SOLA runs: the mode for stateful converters
  (:class:`~anchorvoice.streaming.converter_stream.ConverterProcess`), whose answers continue each other.
* **Windowed mode**: ``process`` receives a *window* of ``context + crossfade + sola_search + block +
  lookahead`` samples and returns audio covering the same span, aligned to the *end* of the window, so it
  may skip the context head and return only the newest ``crossfade + sola_search + block + lookahead``
  samples (as RVC's decoder does). The runner keeps ``block + crossfade + sola_search`` samples of it and
  joins them with SOLA (:mod:`anchorvoice.streaming.sola`).

Output that is too short or not finite counts as an error (see below).

Contract of ``callback`` (python-sounddevice's callback rules): it only copies between the device
buffers and the two lock-free rings, takes no lock, does no file or console I/O, allocates no
sample memory and never raises; a failure inside it is counted (``callback_errors``) and the
output buffer is silenced. Input: channel 0 is used. Output: the mono signal goes to every
channel. Playback starts once ``prefill_blocks()`` blocks beyond the callback's own buffer are
queued (the jitter buffer); after that a short read is an underrun.

Real-time priority (``LiveConfig.realtime``): the callback threads belong to the audio API (PortAudio runs
capture and playback on one thread, or on two for two streams), so the *first* capture and the first
playback callback after ``start()`` each make one ``sched_setscheduler`` call (SCHED_FIFO at
``rt_priority``; :mod:`anchorvoice.streaming.priority`) and never touch scheduling again; a program's main
thread is never promoted (sans-I/O tests call ``callback`` from it). When that is refused, the worker asks
rtkit for the callback thread (a D-Bus round trip, never in the callback). The worker raises itself when it starts
(``worker_priority``). ``stats()`` reports both, and one ``{"event": "priority", ...}`` carries them with a
note saying what to do when the system refused.

Adaptive jitter buffer (:mod:`anchorvoice.streaming.jitter`): an underrun grows it, and the latency, by a block;
a calm period gives the block back. ``stats()`` and ``latency`` report the current size, so
``total_latency_ms`` is what the listener hears.

Degradation instead of crackle (:mod:`anchorvoice.streaming.degrade` decides): when ``process`` fails or
keeps running slower than real time, bypass plays (``degrade_policy``) while the converter is probed, and
``on_event`` gets ``degraded`` / ``recovered`` events, emitted from the worker thread, never from the audio
callback; a bug in the runner itself ends the worker with ``{"event": "worker_error", ...}``.

Queues: the input ring holds ``input_queue_blocks()`` blocks and by default drops the *oldest* input
when the worker stalls (fresh audio wins); the output ring holds the jitter buffer plus
``output_queue_blocks()`` blocks and always drops the oldest output, so latency after a stall returns
to at most that bound. Every drop is counted in ``stats().overruns``.

GC: ``start()`` collects and freezes the cyclic GC when ``freeze_gc`` is set and ``stop()`` unfreezes it
(the live path's only ``gc.freeze``).

Sans-I/O use (tests, file rendering): do not ``start()``; call ``callback`` and then ``step()``
(processes one block if one is queued, returns whether it did) from one thread, with an injected
``clock`` to simulate compute time.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from anchorvoice.audio_io import resample
from anchorvoice.frames import AudioFrame, FloatArray
from anchorvoice.streaming import priority as prio
from anchorvoice.streaming.chunker import Chunker
from anchorvoice.streaming.degrade import DegradeGuard
from anchorvoice.streaming.jitter import AdaptiveJitter
from anchorvoice.streaming.latency import LatencyAccount
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.ring import RingBuffer
from anchorvoice.streaming.runner_stats import RunnerStats
from anchorvoice.streaming.sola import SolaJoiner

log = logging.getLogger(__name__)

ProcessFn = Callable[[AudioFrame], AudioFrame]
EventFn = Callable[[dict[str, Any]], None]

class LiveRunner:
    """Runs ``process`` on live audio between an audio callback and a worker thread."""

    def __init__(
        self,
        process: ProcessFn,
        config: LiveConfig | None = None,
        on_event: EventFn | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        device_latency_ms: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.config = cfg = config if config is not None else LiveConfig()
        cfg.validate()
        self.process = process
        self.on_event = on_event
        self._clock = clock
        sr = cfg.sample_rate
        self.block = cfg.samples(cfg.block_ms)
        self.context = cfg.samples(cfg.context_ms)
        self.lookahead = cfg.samples(cfg.lookahead_ms)
        self.overlap = cfg.samples(cfg.crossfade_ms)
        self.search = cfg.samples(cfg.sola_search_ms)
        self.block_mode = cfg.block_mode
        """process receives exactly each new block: no window, no SOLA (see the module docstring)."""
        self.chunker: Chunker | None = None
        self.joiner: SolaJoiner | None = None
        if self.block_mode:
            self.window_size = self._seg_size = self.block
        else:
            self.joiner = SolaJoiner(self.block, self.overlap, self.search)
            # The kept segment starts overlap + search samples before the block: the chunker's context
            # therefore holds the user's context plus that SOLA head.
            self.chunker = Chunker(self.block, self.context + self.overlap + self.search, self.lookahead)
            self.window_size = self.chunker.window_size
            self._seg_size = self.joiner.segment_size
        self._seg_start = self.context
        self._prefill = cfg.prefill_blocks() * self.block
        self.input_ring = RingBuffer(cfg.input_queue_blocks() * self.block, overflow=cfg.input_overflow)
        # Storage for the largest jitter buffer; the bound follows the current one (see AdaptiveJitter), so that
        # after a stall latency returns to jitter buffer + output queue.
        self._out_queue = cfg.output_queue_blocks() * self.block
        self.output_ring = RingBuffer(
            cfg.jitter_max_blocks() * self.block + self._out_queue,
            overflow="drop_oldest",
        )
        self.latency = LatencyAccount(
            block_ms=1000.0 * self.block / sr,
            lookahead_ms=1000.0 * self.lookahead / sr,
            crossfade_ms=1000.0 * self.overlap / sr,
            sola_search_ms=1000.0 * self.search / sr,
            jitter_buffer_ms=1000.0 * self._prefill / sr,
            device_input_ms=device_latency_ms[0],
            device_output_ms=device_latency_ms[1],
        )
        # Preallocated buffers: the callback's scratch, the worker's block and silence.
        self._cb_out: FloatArray = np.zeros(cfg.max_callback_frames, dtype=np.float32)
        self._in_block: FloatArray = np.zeros(self.block, dtype=np.float32)
        self._silence: FloatArray = np.zeros(self._seg_size, dtype=np.float32)
        self._dry: FloatArray = np.zeros(self._seg_size, dtype=np.float32)
        self._position = 0  # block mode: stream time of the next block, in samples
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._prober: ThreadPoolExecutor | None = None
        self._probe: Future[tuple[bool, float, str | None]] | None = None
        self._primed = False
        self._froze_gc = False
        self.threads = prio.LiveThreads(cfg.realtime, cfg.rt_priority)
        self.callback_errors = 0
        self.worker_error: BaseException | None = None
        self.guard = DegradeGuard(cfg, self.block / sr)
        self.jitter = AdaptiveJitter(
            block=self.block, sample_rate=sr, min_blocks=cfg.prefill_blocks(), max_blocks=cfg.jitter_max_blocks(),
            shrink_after=max(1, math.ceil(cfg.jitter_shrink_after_s * sr / self.block)), out_queue=self._out_queue,
            input_ring=self.input_ring, output_ring=self.output_ring, latency=self.latency, emit=self._emit,
        )
        self._reset_state()

    # -- audio thread -------------------------------------------------------------------------
    def callback(self, indata: np.ndarray | None, outdata: np.ndarray | None) -> None:
        """Device buffer hand-off; see the module docstring for the real-time contract."""
        try:
            if indata is not None:  # promotes the thread once per start() and role: one syscall
                self.threads.on_callback(0)
            if outdata is not None:
                self.threads.on_callback(1)
            if indata is not None:
                self.input_ring.write(indata if indata.ndim == 1 else indata[:, 0])
            if outdata is None:
                return
            frames = outdata.shape[0]
            done = 0
            while done < frames:  # a buffer larger than the scratch is served in pieces
                n = min(frames - done, len(self._cb_out))
                buf = self._cb_out[:n]
                if not self._primed and self.output_ring.available() >= min(
                    frames + self._prefill, self.output_ring.capacity
                ):
                    self._primed = True
                if self._primed:
                    self.output_ring.read_into(buf, pad=True)
                else:
                    buf.fill(0.0)
                if outdata.ndim == 1:
                    outdata[done : done + n] = buf
                else:
                    outdata[done : done + n] = buf[:, None]
                done += n
        except Exception:
            self.callback_errors += 1
            if outdata is not None:
                try:
                    outdata.fill(0)
                except Exception:
                    self.callback_errors += 1

    # -- worker -------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._level_db = -math.inf
        self._blocks = 0
        self._bypassed = 0
        self.guard.reset()
        self.jitter.reset()

    @property
    def degraded(self) -> bool:
        """True while bypass is playing."""
        return self.guard.reason is not None

    @property
    def degraded_reason(self) -> str | None:
        """Why bypass is playing (``"error"`` / ``"slow"``); None while the converter plays."""
        return self.guard.reason

    def step(self) -> bool:
        """Process one queued input block (if any) into the output ring; returns whether it did."""
        if self.input_ring.available() < self.block:
            return False
        self.input_ring.read_into(self._in_block)
        rms = float(np.sqrt(np.mean(np.square(self._in_block, dtype=np.float64))))
        self._level_db = 20.0 * math.log10(rms) if rms > 0 else -math.inf
        sr = self.config.sample_rate
        if self.chunker is None:  # block mode: exactly the captured block
            frame = AudioFrame(self._in_block.copy(), sr, self._position / sr)
            self._position += self.block
            self._dry[:] = self._in_block
        else:
            self.chunker.feed(self._in_block)
            window = self.chunker.next_window()
            if window is None:  # still waiting for the first lookahead
                return True
            frame = AudioFrame(window.copy(), sr, self.chunker.window_start / sr)
            # A private copy of the dry segment: process may modify its input in place.
            self._dry[:] = window[self._seg_start : self._seg_start + self._seg_size]
        was_degraded = self.degraded
        seg = None if was_degraded else self._run(frame)
        if seg is None:
            seg = self._dry if self.config.degrade_policy == "dry" else self._silence
            self._bypassed += 1
        self.jitter.block_index = self._blocks
        self.output_ring.write(self.jitter.adapt(seg if self.joiner is None else self.joiner.join(seg)))
        self._blocks += 1
        if was_degraded:
            self._maybe_probe(frame)
        return True

    def _call(self, frame: AudioFrame) -> tuple[FloatArray | None, float, str | None]:
        """Run process once; returns (segment or None, compute seconds, error text or None)."""
        t0 = self._clock()
        try:
            out = self.process(frame)
            seg = self._segment(out)
        except Exception as exc:  # a converter bug must not stop the stream: degrade and report
            return None, self._clock() - t0, f"{type(exc).__name__}: {exc}"
        return seg, self._clock() - t0, None

    def _segment(self, out: AudioFrame) -> FloatArray:
        """The kept ``block + overlap + search`` samples (block mode: ``block``) of process's output,
        aligned to the end."""
        samples = out.samples
        if out.sample_rate != self.config.sample_rate:
            samples = resample(samples, out.sample_rate, self.config.sample_rate)
        end = len(samples) - self.lookahead
        start = end - self._seg_size
        if start < 0:
            raise ValueError(
                f"process returned {len(samples)} samples at {self.config.sample_rate} Hz; it must return "
                f"at least the newest {self._seg_size + self.lookahead} of the {self.window_size}-sample window"
            )
        seg = samples[start:end]
        if not np.isfinite(seg).all():  # NaN/inf would reach the speakers as full-scale noise
            raise ValueError("process returned NaN or infinite samples")
        return seg

    def _run(self, frame: AudioFrame) -> FloatArray | None:
        seg, dt, err = self._call(frame)
        self.guard.note_compute(dt)
        if err is not None:
            self._emit(self.guard.failed(err, self._blocks))
            return None
        self._emit(self.guard.after_block(dt, self._blocks))  # a slow block is computed: still play it
        return seg

    def _maybe_probe(self, frame: AudioFrame) -> None:
        """While degraded, retry the real process (side thread when started) and recover if it keeps up."""
        if self._probe is not None:
            if not self._probe.done():
                return
            ok, dt, err = self._probe.result()
            self._probe = None
            self._emit(self.guard.after_probe(ok, dt, self._blocks, err))
            return
        if not self.guard.probe_due(self._blocks):
            return
        if self._prober is not None:
            self._probe = self._prober.submit(self._probe_call, frame)
        else:
            ok, dt, err = self._probe_call(frame)
            self._emit(self.guard.after_probe(ok, dt, self._blocks, err))

    def _probe_call(self, frame: AudioFrame) -> tuple[bool, float, str | None]:
        seg, dt, err = self._call(frame)
        return seg is not None, dt, err

    def _emit(self, event: dict[str, Any] | None) -> None:
        if event is None:
            return
        log.info("live runner %s", event)
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # a broken listener must not stop the stream; say so in the log
            log.exception("on_event listener raised for %s", event.get("event"))

    # -- lifecycle ----------------------------------------------------------------------------
    def warmup(self, blocks: int = 3) -> float:
        """Call process on ``blocks`` silent windows before the stream starts; returns seconds taken.

        First calls pay for JIT compilation (numba), allocator growth or CUDA initialisation; done
        live, that stall overflows the input ring. Silence is what the chunker assumes before the
        stream anyway. An exception here propagates: a converter that cannot run at all should stop
        ``anchorvoice live`` with its message rather than start in bypass.
        """
        t0 = time.perf_counter()
        silent = np.zeros(self.window_size, dtype=np.float32)
        for _ in range(blocks):
            self._segment(self.process(AudioFrame(silent.copy(), self.config.sample_rate, 0.0)))
        return time.perf_counter() - t0

    def start(self) -> None:
        """Start the worker thread (and the probe thread), collecting and freezing the GC first when
        ``freeze_gc`` is set; idempotent."""
        if self._thread is not None:
            return
        self._stop.clear()
        if self.config.freeze_gc:
            gc.collect()
            gc.freeze()
            self._froze_gc = True
        self.threads.arm()
        self._prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anchorvoice-probe")
        self._thread = threading.Thread(target=self._loop, name="anchorvoice-runner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        poll = self.config.poll_ms / 1000.0
        cfg = self.config
        self.threads.raise_worker(cfg.worker_rt_priority(), cfg.worker_priority)
        try:
            while not self._stop.is_set():
                if not self.step():
                    event = self.threads.settle(time.monotonic())
                    if event is not None:
                        self._emit(event)
                    time.sleep(poll)
        except BaseException as exc:  # a runner bug: keep it for stats() and the caller
            self.worker_error = exc
            log.exception("live runner worker stopped")
            self._emit({"event": "worker_error", "error": f"{type(exc).__name__}: {exc}"})

    def stop(self) -> None:
        """Stop the worker and wait for it (and any probe) to finish; unfreeze the GC start froze."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._prober is not None:
            self._prober.shutdown(wait=True)
            self._prober = None
        self._probe = None
        if self._froze_gc:
            gc.unfreeze()
            self._froze_gc = False

    def reset(self) -> None:
        """Forget all stream state (call while stopped)."""
        self.input_ring.discard()
        self.output_ring.discard()
        if self.chunker is not None and self.joiner is not None:
            self.chunker.reset()
            self.joiner.reset()
        self._position = 0
        self._primed = False
        self._reset_state()

    def __enter__(self) -> LiveRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> RunnerStats:
        """A snapshot of levels, latency, compute time and counters."""
        block_s = self.block / self.config.sample_rate
        return RunnerStats(
            input_level_db=self._level_db,
            algorithmic_latency_ms=self.latency.algorithmic_ms,
            total_latency_ms=self.latency.total_ms,
            compute_ms=self.guard.compute_ms,
            compute_ms_avg=self.guard.compute_avg,
            compute_ms_max=self.guard.compute_max,
            rtf=self.guard.compute_avg / 1000.0 / block_s,
            underruns=self.output_ring.underrun_events,
            overruns=self.input_ring.overrun_events + self.output_ring.overrun_events,
            dropped_samples=self.input_ring.overrun_samples + self.output_ring.overrun_samples + self.jitter.skipped,
            degraded=self.degraded,
            degraded_reason=self.degraded_reason,
            blocks_processed=self._blocks,
            blocks_bypassed=self._bypassed,
            errors=self.guard.errors,
            last_error=self.guard.last_error,
            callback_errors=self.callback_errors,
            worker_alive=self._thread is not None and self._thread.is_alive(),
            jitter_buffer_ms=self.latency.jitter_buffer_ms,
            jitter_peak_ms=self.jitter.ms(self.jitter.peak),
            jitter_grows=self.jitter.grows,
            jitter_shrinks=self.jitter.shrinks,
            audio_priority=self.threads.audio.text,
            worker_priority=self.threads.worker.text,
            priority_note=self.threads.note,
        )
