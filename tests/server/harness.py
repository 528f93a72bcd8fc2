"""Shared parts for control-server tests: a small fake engine, a capture sink, a live server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from anchorvoice.engine.plugins import PluginFailure, PluginInfo
from anchorvoice.engine.server.app import ControlServer, ServerConfig
from anchorvoice.engine.server.methods import Controller, ControllerConfig
from anchorvoice.engine.stages import AudioSink
from anchorvoice.errors import TextInputError, UnsupportedLanguageError, VoiceNotFoundError
from anchorvoice.frames import AudioFrame

TOKEN = "test-token-0123456789abcdef"
SR = 16000


@dataclass
class FakeVoice:
    name: str
    ref_lang: str = "en"
    is_neural: bool = False
    path: Path = Path("/nonexistent")


class FakeVoices:
    def __init__(self, names: list[str]) -> None:
        self._v = {n: FakeVoice(n) for n in names}

    def list(self) -> list[FakeVoice]:
        return [self._v[n] for n in sorted(self._v)]

    def get(self, name: str) -> FakeVoice:
        if name not in self._v:
            raise VoiceNotFoundError(f"Unable to find voice {name!r} (run `anchorvoice voices list`)")
        return self._v[name]


@dataclass
class FakePlugins:
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)


class FakePipeline:
    """Streams 0.1 s of tone per word (amplitude 0.5), sentence by sentence like ``Pipeline.speak_iter``;
    'fail' in the text raises; with ``gate`` set, a text with 'slow' waits for it after its first word."""

    def __init__(self, engine: FakeEngine, voice: str | None) -> None:
        self.engine, self.voice = engine, voice
        self.sentences: list[str] = []
        self.sentence_index = 0

    def check_speakable(self, text: str, language: str | None = None) -> None:
        if language not in (None, "en", "de", "auto"):
            raise UnsupportedLanguageError(f"the fake voice speaks en, de, not {language!r}")

    def speak_iter(self, text: str, language: str | None = None, style: str | None = None) -> Iterator[AudioFrame]:
        self.engine.calls.append((text, self.voice, language or "en"))
        self.style_used = style if style in ("excited", "calm") else "default"  # the fake voices' styles
        if "fail" in text:
            raise TextInputError("nothing speakable in the text")
        self.sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
        t = np.arange(int(0.1 * SR)) / SR
        word = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        for k, sentence in enumerate(self.sentences):
            self.sentence_index = k
            for n, _ in enumerate(sentence.split()):
                yield AudioFrame(word.copy(), SR)
                self.engine.chunks_made += 1
                if n == 0 and "slow" in text and self.engine.gate is not None:
                    self.engine.gate.wait(10)


class FakeEngine:
    """Voices 'alice' and 'bob'; ``pipeline()`` gives a :class:`FakePipeline`."""

    def __init__(self) -> None:
        self.voices = FakeVoices(["alice", "bob"])
        self.plugins = FakePlugins(
            {"espeak": PluginInfo("espeak", "0.1", "builtin", ["register_base_voices"], ["base_voice:espeak"])},
            [PluginFailure("broken", "thirdparty 1.0", "import of 'broken' failed: ImportError: x")],
        )
        self.calls: list[tuple[str, str | None, str]] = []
        self.presets: list[str] = []
        self.gate: threading.Event | None = None
        self.chunks_made = 0

    def pipeline(self, preset: str, voice: str | None) -> FakePipeline:
        self.presets.append(preset)
        return FakePipeline(self, voice)

    @contextlib.contextmanager
    def lease(self, preset: str, voice: str | None) -> Iterator[FakePipeline]:
        yield self.pipeline(preset, voice)


class CaptureSink(AudioSink):
    name = "capture"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.blocks: list[np.ndarray] = []
        self.opened: tuple[int, int] | None = None

    def open(self, sample_rate: int, block_size: int) -> None:
        self.opened = (sample_rate, block_size)

    def write(self, samples: np.ndarray) -> None:
        self.blocks.append(np.array(samples))

    def audio(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)


class FakeLive:
    """A live session recording what the controller told it; start() can be slow."""

    def __init__(self, voice: str | None, params: dict[str, Any], start_delay: float = 0.0) -> None:
        self.voice, self.params, self.start_delay = voice, dict(params), start_delay
        self.running = False
        self.history: list[dict[str, Any]] = []

    def start(self) -> None:
        time.sleep(self.start_delay)
        self.running = True

    def stop(self) -> None:
        self.running = False

    def stats(self) -> dict[str, Any]:
        return {"latency_ms": 180.0, "rtf": 0.4, "underruns": 2, "rms_db": -20.0, "peak_db": -6.0}

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = dict(params)
        self.history.append(dict(params))

    def set_voice(self, voice: str | None) -> None:
        self.voice = voice


@dataclass
class Harness:
    server: ControlServer
    engine: FakeEngine
    sink: CaptureSink
    lives: list[FakeLive]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/"

    def client(self, token: str | None = TOKEN, **kw: Any) -> Any:
        url = self.url + (f"?token={token}" if token else "")
        return connect(url, compression=None, **kw)


@asynccontextmanager
async def running_server(
    config: ServerConfig | None = None, live_delay: float = 0.0, pace: bool = False
) -> AsyncIterator[Harness]:
    engine, sink, lives = FakeEngine(), CaptureSink(), []

    def factory(voice: str | None, params: dict[str, Any]) -> FakeLive:
        live = FakeLive(voice, params, live_delay)
        lives.append(live)
        return live

    ctl = Controller(engine, sink, ControllerConfig(pace=pace, stats_interval_s=0.1), live_factory=factory)
    server = ControlServer(ctl, config or ServerConfig(port=0), token=TOKEN)
    await server.start()
    try:
        yield Harness(server, engine, sink, lives)
    finally:
        await server.close()


async def hello(ws: ClientConnection) -> dict[str, Any]:
    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert msg["hello"]["api"] == "anchorvoice"
    return msg


async def call(ws: ClientConnection, method: str, params: dict[str, Any] | None = None, id: Any = 1) -> Any:
    """Send one request and return its reply, skipping any events in between."""
    req: dict[str, Any] = {"id": id, "method": method}
    if params is not None:
        req["params"] = params
    await ws.send(json.dumps(req))
    return await reply_to(ws, id)


_EVENTS: dict[int, list[dict[str, Any]]] = {}
"""Events that arrived while a test waited for a reply, kept per connection for next_event."""


async def reply_to(ws: ClientConnection, id: Any) -> Any:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "event" in msg:
            _EVENTS.setdefault(id_of(ws), []).append(msg)
            continue
        assert msg["id"] == id, msg
        return msg


def id_of(ws: ClientConnection) -> int:
    return id(ws)


async def next_event(ws: ClientConnection, name: str, timeout: float = 5) -> dict[str, Any]:
    """The next event called ``name``; earlier events of other names are skipped."""
    buffered = _EVENTS.setdefault(id_of(ws), [])
    while buffered:
        msg = buffered.pop(0)
        if msg["event"] == name:
            return msg["data"]
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if msg.get("event") == name:
            return msg["data"]


async def events(ws: ClientConnection, n: int, timeout: float = 5) -> list[dict[str, Any]]:
    """The next ``n`` events of any name, in arrival order (buffered ones first)."""
    buffered = _EVENTS.setdefault(id_of(ws), [])
    out = [buffered.pop(0) for _ in range(min(n, len(buffered)))]
    while len(out) < n:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if "event" in msg:
            out.append(msg)
    return out
