"""Speech queue: text requests synthesised one after another and played to an AudioSink.

A request is split into sentences; sentence k+1 is synthesised while sentence k plays, so the
first words are heard after one sentence's synthesis, not the whole message's, and each
sentence gets its own speaking.started/stopped events (live subtitles show the current one).
Synthesis (``anchorvoice.engine.speak``, on one dedicated thread) and ``sink.write`` run off the event loop so
it keeps answering clients. Playback goes out in blocks of ``block_ms`` (50 ms -> 20 level events per
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
import re
import time
from collections import deque
from collections.abc import Callable
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


_SENTENCE_END = re.compile(r"(?<=[.!?;…。！？；])\s+|(?<=[。！？；])|\n+")
MIN_SENTENCE_CHARS = 12
"""Shorter pieces ("Hi!", "OK.") are joined to the next one: a synthesis call per word costs more
than it saves in first-audio time."""


def split_sentences(text: str) -> list[str]:
    """Text -> sentences in speaking order (punctuation kept; Latin and CJK end marks)."""
    pieces = [p.strip() for p in _SENTENCE_END.split(text) if p and p.strip()]
    out: list[str] = []
    carry = ""
    for piece in pieces:
        carry = f"{carry} {piece}".strip() if carry and not _is_cjk(carry[-1]) else carry + piece
        if len(carry) >= MIN_SENTENCE_CHARS:
            out.append(carry)
            carry = ""
    if carry:
        if out and len(carry) < MIN_SENTENCE_CHARS // 2:
            out[-1] = f"{out[-1]} {carry}" if not _is_cjk(out[-1][-1]) else out[-1] + carry
        else:
            out.append(carry)
    return out or [text.strip()]


def _is_cjk(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"


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
    def _synth(self, item: SpeechItem, sentence: str) -> asyncio.Future[tuple[AudioFrame, float]]:
        """Start synthesising one sentence on the synthesis thread; resolves to (audio, seconds taken)."""

        def job() -> tuple[AudioFrame, float]:
            t0 = time.perf_counter()
            frame = self._synthesize(sentence, item.voice, item.language)
            return frame, time.perf_counter() - t0

        return asyncio.get_running_loop().run_in_executor(self._executor, job)

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
        """Sentence k+1 is synthesised while sentence k plays, so the first one is heard early."""
        sentences = split_sentences(item.text)
        upcoming: asyncio.Future[tuple[AudioFrame, float]] | None = self._synth(item, sentences[0])
        interrupted = False
        for k, sentence in enumerate(sentences):
            assert upcoming is not None
            try:
                frame, took = await upcoming
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad request must not stop the queue
                self.stats["failed"] += 1
                self._bus.publish("error", {"source": "speak", "id": item.id, "text": sentence,
                                            "message": f"{type(exc).__name__}: {exc}"})
                return
            upcoming = None
            if self._interrupt:
                interrupted = True
                break
            if k + 1 < len(sentences):
                upcoming = self._synth(item, sentences[k + 1])
            if frame.duration > 0:
                self.stats["last_rtf"] = round(took / frame.duration, 4)
            if k == 0:
                self.stats["first_audio_ms"] = round((time.perf_counter() - item.queued_at) * 1000, 1)
            try:
                interrupted = await self._play(item, sentence, k, len(sentences), frame)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the output failed (device gone): report, keep serving
                self.stats["failed"] += 1
                self._bus.publish("error", {"source": "speech output", "id": item.id,
                                            "message": f"{type(exc).__name__}: {exc}"})
                interrupted = True
            if interrupted:
                break
        if upcoming is not None:  # a synthesis still running for a sentence nobody will hear
            upcoming.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.stats["interrupted" if interrupted else "spoken"] += 1

    async def _play(self, item: SpeechItem, sentence: str, part: int, parts: int, frame: AudioFrame) -> bool:
        """Play one sentence; True if it was interrupted."""
        loop = asyncio.get_running_loop()
        if self._sink_rate is None:  # opened on first use, at the rate the engine speaks (retried if it fails)
            block = frame.sample_rate * self.block_ms // 1000
            await loop.run_in_executor(None, self._sink.open, frame.sample_rate, block)
            self._sink_rate = frame.sample_rate
        samples = resample(frame.samples, frame.sample_rate, self._sink_rate)
        block = self._sink_rate * self.block_ms // 1000
        info = {"id": item.id, "text": sentence, "part": part, "parts": parts}
        self._bus.publish("speaking.started", {**info, "voice": item.voice, "language": item.language,
                                               "duration": frame.duration})
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
        self._bus.publish("speaking.stopped", {**info, "interrupted": interrupted})
        return interrupted
