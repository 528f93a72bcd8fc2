"""Speech queue: text requests streamed one after another to an AudioSink.

Each request is spoken through a *speech stream* (``Pipeline.speak_iter`` behind the controller): audio
chunks arrive as the engine makes them, each tagged with the sentence it belongs to, and every chunk is
played as soon as it comes, so the first words of a request are heard as early as in ``anchorvoice speak``.
The next chunk is synthesised while the current one plays. Sentences get their own
speaking.started/stopped events (live subtitles show the current one); the text frontend of the language
decides where sentences end. Synthesis (on one dedicated thread: stages are not thread-safe) and
``sink.write`` run off the event loop so it keeps answering clients. Playback goes out in blocks of
``block_ms`` (50 ms -> 20 level events per second, the rate the control API promises); between blocks the
player checks for an interrupt, so ``interrupt``/``clear`` stop the voice within one block. A sink that
does not block (the null sink) is paced to real time with ``asyncio.sleep`` when ``pace`` is on, so
"speaking" events last as long as the audio does.

The queue is bounded (``max_pending``); a full queue refuses the new request with an error rather
than dropping text someone asked to be spoken (chat bots must back off).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorvoice.audio_io import resample
from anchorvoice.engine.server.events import EventBus
from anchorvoice.engine.stages import AudioSink
from anchorvoice.frames import AudioFrame, FloatArray


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
    style: str | None = None
    """The voice's style or tag asked for (None: its default reference)."""


@dataclass
class SpeechChunk:
    """One piece of streamed speech and the sentence it belongs to."""

    audio: AudioFrame
    """The samples, in the order they are to be played."""
    part: int
    """Index of the sentence in the request (0-based)."""
    parts: int
    """Sentences in the request."""
    sentence: str
    """The sentence's text (what subtitles show)."""
    style: str = "default"
    """The voice's style it is spoken with (``default``: the voice's first reference)."""


SpeechStream = Callable[..., Iterator[SpeechChunk]]
"""(text, voice, language[, style=...]) -> speech chunks as the engine makes them; runs on the synthesis
thread (``style`` is passed only when a request asks for one)."""


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
        stream: SpeechStream,
        sink: AudioSink,
        bus: EventBus,
        gain: Callable[[], float],
        *,
        max_pending: int = 32,
        block_ms: int = 50,
        pace: bool = True,
    ) -> None:
        self._stream = stream
        self._sink = sink
        self._bus = bus
        self._gain = gain
        self.max_pending = max_pending
        self.block_ms = block_ms
        self.pace = pace
        self._pending: deque[SpeechItem] = deque()
        # One synthesis thread: stages are not thread-safe and must stay on one worker thread (stages.py).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anchorvoice-synth")
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
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._sink.close()

    def enqueue(self, text: str, voice: str | None, language: str, interrupt: bool = False,
                style: str | None = None) -> SpeechItem:
        if interrupt:
            self.clear()
        if len(self._pending) >= self.max_pending:
            raise OverflowError(
                f"speech queue is full ({self.max_pending} pending); wait for speaking.stopped events "
                "or call speech.clear"
            )
        item = SpeechItem(next(self._ids), text, voice, language, time.perf_counter(), style)
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
    def _next(self, chunks: Iterator[SpeechChunk]) -> asyncio.Future[tuple[SpeechChunk | None, float]]:
        """Make the next chunk on the synthesis thread; resolves to (chunk or None at the end, seconds taken)."""

        def job() -> tuple[SpeechChunk | None, float]:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            return chunk, time.perf_counter() - t0

        return asyncio.get_running_loop().run_in_executor(self._executor, job)

    def _chunks(self, item: SpeechItem) -> Generator[SpeechChunk, None, None]:
        """The request's stream, started lazily: loading the voice happens on the synthesis thread too."""
        if item.style is None:
            yield from self._stream(item.text, item.voice, item.language)
        else:
            yield from self._stream(item.text, item.voice, item.language, style=item.style)

    async def _run(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            item = self._pending.popleft()
            self.current = item
            self._interrupt = False
            try:
                await self._speak(item)
            finally:
                self.current = None

    async def _speak(self, item: SpeechItem) -> None:
        """Play each chunk as it comes while the next one is made; events per sentence."""
        chunks = self._chunks(item)
        upcoming: asyncio.Future[tuple[SpeechChunk | None, float]] | None = self._next(chunks)
        speaking: dict[str, Any] | None = None  # the sentence being played (its speaking.started info)
        interrupted, failed = False, False
        took = audio_s = 0.0
        while upcoming is not None:
            try:
                chunk, seconds = await upcoming
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad request must not stop the queue
                failed = True
                self._bus.publish("error", {"source": "speak", "id": item.id,
                                            "text": speaking["text"] if speaking else item.text,
                                            "message": f"{type(exc).__name__}: {exc}"})
                break
            upcoming = None
            if chunk is None:
                break
            took, audio_s = took + seconds, audio_s + chunk.audio.duration
            if self._interrupt:
                interrupted = True
                break
            upcoming = self._next(chunks)
            if speaking is None:
                self.stats["first_audio_ms"] = round((time.perf_counter() - item.queued_at) * 1000, 1)
            try:
                await self._open(chunk.audio.sample_rate)
                if speaking is None or speaking["part"] != chunk.part:
                    if speaking is not None:
                        self._bus.publish("speaking.stopped", {**speaking, "interrupted": False})
                    speaking = {"id": item.id, "text": chunk.sentence, "part": chunk.part, "parts": chunk.parts}
                    self._bus.publish("speaking.started", {**speaking, "voice": item.voice,
                                                           "language": item.language, "style": chunk.style})
                interrupted = await self._play(chunk.audio)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the output failed (device gone): report, keep serving
                failed = True
                self._bus.publish("error", {"source": "speech output", "id": item.id,
                                            "message": f"{type(exc).__name__}: {exc}"})
                break
            if interrupted:
                break
        self.last_levels = (-120.0, -120.0)
        if speaking is not None:
            self._bus.publish("speaking.stopped", {**speaking, "interrupted": interrupted or failed})
        if upcoming is not None:  # a chunk still being made that nobody will hear
            upcoming.add_done_callback(lambda f: f.cancelled() or f.exception())
        # Close the stream on the synthesis thread, after its pending chunk (the thread runs jobs in order).
        self._executor.submit(chunks.close)
        if audio_s > 0:
            self.stats["last_rtf"] = round(took / audio_s, 4)
        self.stats["failed" if failed else "interrupted" if interrupted else "spoken"] += 1

    async def _open(self, sample_rate: int) -> None:
        """Open the sink on first use, at the rate the engine speaks (tried again next time if it fails)."""
        if self._sink_rate is None:
            block = sample_rate * self.block_ms // 1000
            await asyncio.get_running_loop().run_in_executor(None, self._sink.open, sample_rate, block)
            self._sink_rate = sample_rate

    async def _play(self, frame: AudioFrame) -> bool:
        """Play one chunk on the open sink; True if it was interrupted."""
        loop = asyncio.get_running_loop()
        rate = self._sink_rate
        assert rate is not None
        samples = resample(frame.samples, frame.sample_rate, rate)
        block = rate * self.block_ms // 1000
        start = time.perf_counter()
        for i in range(0, len(samples), block):
            if self._interrupt:
                return True
            out = np.clip(samples[i : i + block] * self._gain(), -1.0, 1.0).astype(np.float32)
            self.last_levels = level_db(out)
            self._bus.publish("levels", {"source": "tts", "rms_db": round(self.last_levels[0], 1),
                                         "peak_db": round(self.last_levels[1], 1)})
            await loop.run_in_executor(None, self._sink.write, out)
            if self.pace:
                due = start + (i + len(out)) / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
        return False
