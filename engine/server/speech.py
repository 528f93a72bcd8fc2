"""Speech queue: text requests synthesised one after another and played to an AudioSink.

Synthesis (``engine.speak``) and ``sink.write`` run in a thread executor so the event loop keeps
answering clients. Playback goes out in blocks of ``block_ms`` (50 ms -> 20 level events per
second, the rate the control API promises); between blocks the player checks for an interrupt, so
``interrupt``/``clear`` stop the voice within one block. A sink that does not block (null/capture
sinks) is paced to real time with ``asyncio.sleep`` when ``pace`` is on, so "speaking" events
last as long as the audio does.

The queue is bounded (``max_pending``); a full queue refuses the new request with an error rather
than dropping text someone asked to be spoken (chat bots must back off).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.audio_io import resample
from engine.frames import AudioFrame, FloatArray
from engine.server.events import EventBus
from engine.stages import AudioSink


@dataclass
class SpeechItem:
    """One queued request."""

    id: int
    """Server-assigned number, echoed in speaking.started/stopped events."""
    text: str
    """What to say."""
    voice: str | None
    """Voice name (None: the engine's default voice)."""
    language: str
    """ISO 639-1 code or 'auto'."""
    queued_at: float
    """perf_counter() when accepted (for first-audio latency)."""


def level_db(x: FloatArray) -> tuple[float, float]:
    """(RMS, peak) of a block in dBFS, floored at -120 dB (digital silence)."""
    if len(x) == 0:
        return -120.0, -120.0
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    peak = float(np.max(np.abs(x)))
    return max(-120.0, 20 * math.log10(rms + 1e-12)), max(-120.0, 20 * math.log10(peak + 1e-12))


class SpeechQueue:
    """Owns the pending list, the player task and the sink."""

    def __init__(
        self,
        synthesize: Callable[[str, str | None, str], AudioFrame],
        sink: AudioSink,
        bus: EventBus,
        gain: Callable[[], float],
        *,
        max_pending: int = 32,
        block_ms: int = 50,
        pace: bool = True,
    ) -> None:
        self._synthesize = synthesize
        self._sink = sink
        self._bus = bus
        self._gain = gain
        self.max_pending = max_pending
        self.block_ms = block_ms
        self.pace = pace
        self._pending: deque[SpeechItem] = deque()
        self._wake = asyncio.Event()
        self._interrupt = False
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._sink_rate: int | None = None
        self.current: SpeechItem | None = None
        self.stats: dict[str, Any] = {"spoken": 0, "failed": 0, "interrupted": 0, "last_rtf": None,
                                      "first_audio_ms": None}
        self.last_levels: tuple[float, float] = (-120.0, -120.0)

    # -- control (event-loop thread) ----------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="anchorvoice-speech")

    async def close(self) -> None:
        self.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._sink.close()

    def enqueue(self, text: str, voice: str | None, language: str, interrupt: bool = False) -> SpeechItem:
        if interrupt:
            self.clear()
        if len(self._pending) >= self.max_pending:
            raise OverflowError(
                f"speech queue is full ({self.max_pending} pending); wait for speaking.stopped events "
                "or call speech.clear"
            )
        item = SpeechItem(next(self._ids), text, voice, language, time.perf_counter())
        self._pending.append(item)
        self._wake.set()
        return item

    def clear(self) -> tuple[int, bool]:
        """Drop everything pending and stop the current sentence. Returns (dropped, interrupted)."""
        dropped = len(self._pending)
        self._pending.clear()
        interrupted = self.current is not None
        if interrupted:
            self._interrupt = True
        return dropped, interrupted

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- player --------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            item = self._pending.popleft()
            self.current = item
            self._interrupt = False
            try:
                t0 = time.perf_counter()
                frame = await loop.run_in_executor(
                    None, self._synthesize, item.text, item.voice, item.language
                )
                if frame.duration > 0:
                    self.stats["last_rtf"] = round((time.perf_counter() - t0) / frame.duration, 4)
                if not self._interrupt:
                    self.stats["first_audio_ms"] = round((time.perf_counter() - item.queued_at) * 1000, 1)
                    await self._play(item, frame)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad sentence must not stop the queue
                self.stats["failed"] += 1
                self._bus.publish(
                    "error",
                    {"source": "speak", "id": item.id, "message": f"{type(exc).__name__}: {exc}"},
                )
            finally:
                self.current = None

    async def _play(self, item: SpeechItem, frame: AudioFrame) -> None:
        loop = asyncio.get_running_loop()
        if self._sink_rate is None:  # opened on first use, at the rate the engine speaks (retried if it fails)
            block = frame.sample_rate * self.block_ms // 1000
            await loop.run_in_executor(None, self._sink.open, frame.sample_rate, block)
            self._sink_rate = frame.sample_rate
        samples = resample(frame.samples, frame.sample_rate, self._sink_rate)
        block = self._sink_rate * self.block_ms // 1000
        self._bus.publish("speaking.started", {"id": item.id, "text": item.text, "voice": item.voice,
                                               "language": item.language, "duration": frame.duration})
        start = time.perf_counter()
        interrupted = False
        for n, i in enumerate(range(0, len(samples), block)):
            if self._interrupt:
                interrupted = True
                break
            out = np.clip(samples[i : i + block] * self._gain(), -1.0, 1.0).astype(np.float32)
            self.last_levels = level_db(out)
            self._bus.publish("levels", {"source": "tts", "rms_db": round(self.last_levels[0], 1),
                                         "peak_db": round(self.last_levels[1], 1)})
            await loop.run_in_executor(None, self._sink.write, out)
            if self.pace:
                due = start + (n + 1) * self.block_ms / 1000
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
        self.last_levels = (-120.0, -120.0)
        self.stats["interrupted" if interrupted else "spoken"] += 1
        self._bus.publish("speaking.stopped", {"id": item.id, "text": item.text, "interrupted": interrupted})
