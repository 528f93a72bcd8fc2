"""The Controller (engine state the control API drives) and the method table.

The Controller owns the engine object, the speech queue, the current voice, live parameters,
mute state and the event bus. Live conversion goes through an injectable ``live_factory`` so the
server does not depend on how the live runner is built (tests pass a fake session).

Every method is ``async def handler(ctl, params) -> JSON result``; it validates ``params`` with
:func:`anchorvoice.engine.server.protocol.param` and raises ``ProtocolError`` (bad input) or an
``AnchorVoiceError`` (the engine refused; sent as ENGINE_ERROR with the engine's message).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from anchorvoice.engine.server.events import EventBus
from anchorvoice.engine.server.protocol import INVALID_PARAMS, NOT_AVAILABLE, param, reject_unknown
from anchorvoice.engine.server.speech import SpeechChunk, SpeechQueue
from anchorvoice.engine.stages import AudioSink
from anchorvoice.errors import ProtocolError, TextInputError
from anchorvoice.frames import AudioFrame

MAX_TEXT_CHARS = 2000
"""One request's text; longer chat messages should be split by the caller (about 2 min of speech)."""


class SpeakingPipeline(Protocol):
    """What the controller needs of ``anchorvoice.engine.pipeline.Pipeline``: streamed speech, and which
    sentence each chunk belongs to."""

    sentences: list[str]
    sentence_index: int

    def speak_iter(self, text: str, language: str | None = None, style: str | None = None) -> Iterator[AudioFrame]: ...

    def check_speakable(self, text: str, language: str | None = None) -> None:
        """Raise what ``speak_iter`` would refuse before its first audio (empty text, unsupported language)."""
        ...


class EngineLike(Protocol):
    """What the controller needs of ``anchorvoice.engine.engine.Engine``."""

    voices: Any  # VoiceLibrary: list() -> list[Voice], get(name) -> Voice (VoiceNotFoundError)
    plugins: Any  # PluginManager: .plugins {name: PluginInfo}, .failures [PluginFailure]

    def pipeline(self, preset: str, voice: Any) -> SpeakingPipeline: ...

    def lease(self, preset: str, voice: Any) -> AbstractContextManager[SpeakingPipeline]:
        """The pipeline, kept loaded (not closed by the memory budget) while the block runs."""
        ...


class LiveSession(Protocol):
    """A running live conversion (mic -> voice -> virtual mic), as made by ``live_factory``."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        """JSON-able numbers, e.g. latency_ms, rtf, underruns, overruns, rms_db, peak_db."""
        ...

    def set_params(self, params: dict[str, Any]) -> None: ...

    def set_voice(self, voice: str | None) -> None: ...


LiveFactory = Callable[[str | None, dict[str, Any]], LiveSession]
"""(voice name, params) -> a session not yet started. A factory that also has ``check(voice, params) -> params``
(``anchorvoice.engine.server.live_adapter.EngineLiveFactory``) validates every ``params.set`` up front; it
raises ConfigError for what a session would refuse and returns the values normalised."""


@dataclass
class LiveParams:
    """Parameters a client may change while audio runs."""

    pitch: float = 0.0
    """Pitch shift in semitones (-24..24); 0: the converter's automatic choice (DSP: toward the voice)."""
    formant: float = 0.0
    """Formant (spectral envelope) shift in semitones (-12..12); 0: automatic."""
    gain_db: float = 0.0
    """Output gain in dB (-60..24), applied to speech and live output."""
    bypass: bool = False
    """Live conversion passes the microphone through unchanged."""
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Effect name -> the fields a client changed (the preset's values apply to the rest)."""


@dataclass
class ControllerConfig:
    """Controller settings (``[controller]`` in configs/server.toml)."""

    language: str = "en"
    """Default language of ``speak`` requests."""
    preset: str = "tts"
    """TTS preset ``speak`` uses (a name in the configs folder or a .toml path)."""
    voice: str | None = None
    """Voice selected at start (None: none until a client calls voice.set)."""
    max_pending: int = 32
    """Speech requests waiting at most; more are refused."""
    block_ms: int = 50
    """Playback block; 50 ms gives the promised ~20 level events per second."""
    pace: bool = True
    """Pace playback to real time with the controller's clock; `serve` turns it on for a sink that does not
    pace itself (speech output 'none') and off for a device."""
    stats_interval_s: float = 1.0
    """How often live latency stats are published."""


class Controller:
    """Engine state for the control API. Create and use on the event loop thread."""

    def __init__(
        self,
        engine: EngineLike,
        sink: AudioSink,
        config: ControllerConfig | None = None,
        live_factory: LiveFactory | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or ControllerConfig()
        self.bus = bus or EventBus()
        self.live_factory = live_factory
        self.voice: str | None = self.config.voice
        self.params = LiveParams()
        self.muted = False
        self.live: LiveSession | None = None
        self._live_lock = asyncio.Lock()
        self.params_lock = asyncio.Lock()
        """Held while a ``params.set`` merges and applies (the check runs off the loop)."""
        self._ticker: asyncio.Task[None] | None = None
        self._checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anchorvoice-check")
        self.speech = SpeechQueue(
            self._speech_stream, sink, self.bus, self._gain,
            max_pending=self.config.max_pending, block_ms=self.config.block_ms, pace=self.config.pace,
        )

    def _gain(self) -> float:
        return 0.0 if self.muted else 10 ** (self.params.gain_db / 20)

    def _speech_stream(self, text: str, voice: str | None, language: str,
                       style: str | None = None) -> Iterator[SpeechChunk]:
        """The engine's streamed speech, chunk by chunk as ``anchorvoice speak`` gets it, with its sentence and
        the style it is spoken with."""
        # leased: a request for another voice may evict this one from the cache, never mid-speech
        with self.engine.lease(self.config.preset, voice) as pipe:
            chunks = pipe.speak_iter(text, language) if style is None else pipe.speak_iter(text, language, style)
            for audio in chunks:
                k = pipe.sentence_index
                used = getattr(pipe, "style_used", "default")
                yield SpeechChunk(audio, k, len(pipe.sentences), pipe.sentences[k], used)

    async def start(self) -> None:
        if self.voice is not None:  # VoiceNotFoundError names the voices there are
            await asyncio.get_running_loop().run_in_executor(None, self.engine.voices.get, self.voice)
        self.bus.bind(asyncio.get_running_loop())
        self.speech.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="anchorvoice-stats")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        await self.stop_live()
        await self.speech.close()
        self._checks.shutdown(wait=False, cancel_futures=True)

    async def _tick(self) -> None:
        """Publish live levels at ~20/s and latency stats every ``stats_interval_s``."""
        period = self.config.block_ms / 1000
        every = max(1, round(self.config.stats_interval_s / period))
        n = 0
        while True:
            await asyncio.sleep(period)
            session = self.live
            if session is None:
                continue
            n += 1
            try:
                stats = session.stats()
            except Exception as exc:
                self.bus.publish("degraded", {"source": "live", "message": f"stats failed: {exc}"})
                continue
            if "rms_db" in stats:
                self.bus.publish("levels", {"source": "live", "rms_db": stats["rms_db"],
                                            "peak_db": stats.get("peak_db", stats["rms_db"])})
            if n % every == 0:
                latency = {k: v for k, v in stats.items() if k not in ("rms_db", "peak_db")}
                self.bus.publish("latency", latency)

    async def check_speech(self, text: str, voice: str | None, language: str) -> None:
        """Refuse a ``speak`` now rather than as an error event later: the voice must exist, its pipeline
        build, and the pipeline accept the text and language. Runs on one checking thread, not the synthesis
        thread, so an ``interrupt`` is not held up by the sentence being made; the pipeline it builds (the
        engine caches it) is the one the request is then spoken with."""

        def check() -> None:
            if voice is not None:
                self.engine.voices.get(voice)  # VoiceNotFoundError names the voices there are
            self.engine.pipeline(self.config.preset, voice).check_speakable(text, language)

        await asyncio.get_running_loop().run_in_executor(self._checks, check)

    # -- live ----------------------------------------------------------------------------------
    def _live_params(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.params), "muted": self.muted}

    async def start_live(self) -> bool:
        """Start live conversion; False if it was already running."""
        if self.live_factory is None:
            raise ProtocolError(
                "live conversion is not available in this server (no live runner installed)", NOT_AVAILABLE
            )
        async with self._live_lock:
            if self.live is not None:
                return False
            session = self.live_factory(self.voice, self._live_params())
            await asyncio.get_running_loop().run_in_executor(None, session.start)
            self.live = session
        self.bus.publish("live.started", {"voice": self.voice})
        return True

    async def stop_live(self) -> bool:
        async with self._live_lock:
            session, self.live = self.live, None
            if session is None:
                return False
            await asyncio.get_running_loop().run_in_executor(None, session.stop)
        self.bus.publish("live.stopped", {})
        return True

    async def change_params(self, new: LiveParams) -> LiveParams:
        """Check ``new`` against the live runner (``live_factory.check``: the preset's effects, the voice's
        converter), hand it to a running session, then publish it. Raises before anything changes."""
        values = dataclasses.asdict(new)
        check = getattr(self.live_factory, "check", None)
        loop = asyncio.get_running_loop()
        if check is not None:  # reads the preset file and the voice: off the loop
            values = await loop.run_in_executor(None, check, self.voice, values)
            new = LiveParams(**values)
        if self.live is not None:
            await loop.run_in_executor(None, self.live.set_params, {**values, "muted": self.muted})
        self.params = new
        self.bus.publish("params.changed", dataclasses.asdict(new))
        return new

    def status(self) -> dict[str, Any]:
        live_stats: dict[str, Any] | None = None
        if self.live is not None:
            try:
                live_stats = self.live.stats()
            except Exception as exc:
                live_stats = {"error": str(exc)}
        cur = self.speech.current
        rms, peak = self.speech.last_levels
        if live_stats and "rms_db" in live_stats:
            rms, peak = live_stats["rms_db"], live_stats.get("peak_db", live_stats["rms_db"])
        failures = getattr(self.engine.plugins, "failures", [])
        return {
            "voice": self.voice,
            "muted": self.muted,
            "params": dataclasses.asdict(self.params),
            "speaking": None if cur is None else {"id": cur.id, "text": cur.text},
            "queue": self.speech.pending,
            "live": self.live is not None,
            "levels": {"rms_db": rms, "peak_db": peak},
            "latency_ms": (live_stats or {}).get("latency_ms"),
            "rtf": (live_stats or {}).get("rtf", self.speech.stats["last_rtf"]),
            "underruns": (live_stats or {}).get("underruns", 0),
            "speech": dict(self.speech.stats),
            "live_stats": live_stats,
            "load_errors": [_failure(f) for f in failures],
        }


def _failure(f: Any) -> dict[str, Any]:
    return {"plugin": f.name, "origin": f.origin, "hook": f.hook, "error": f.error}


# -- methods ---------------------------------------------------------------------------------------
Handler = Callable[[Controller, dict[str, Any]], Awaitable[Any]]


async def m_status(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    return {**ctl.status(), **ctl.bus.states()}  # + the bridges' parts (``obs``) registered on the bus


async def m_voices_list(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    voices = await asyncio.get_running_loop().run_in_executor(None, ctl.engine.voices.list)
    return [{"name": v.name, "language": v.ref_lang, "neural": bool(getattr(v, "is_neural", False)),
             "current": v.name == ctl.voice} for v in voices]


async def m_plugins_list(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    pm = ctl.engine.plugins
    return {
        "plugins": [{"name": p.name, "version": p.version, "origin": p.origin, "stages": list(p.stages)}
                    for p in pm.plugins.values()],
        "failures": [_failure(f) for f in pm.failures],
    }


async def m_voice_set(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, {"voice"})
    name = param(params, "voice", str)
    await asyncio.get_running_loop().run_in_executor(None, ctl.engine.voices.get, name)  # VoiceNotFoundError
    ctl.voice = name
    if ctl.live is not None:
        await asyncio.get_running_loop().run_in_executor(None, ctl.live.set_voice, name)
    ctl.bus.publish("voice.changed", {"voice": name})
    return {"voice": name}


async def m_params_get(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    return dataclasses.asdict(ctl.params)


async def m_params_set(ctl: Controller, params: dict[str, Any]) -> Any:
    """Merge ``params`` into the live parameters: each key given replaces its value, ``effects`` merge per
    effect and per field (``null`` drops a value: the preset's applies again). Checked in full before anything
    changes, live conversion running or not; a refused set changes nothing."""
    reject_unknown(params, {f.name for f in dataclasses.fields(LiveParams)})
    async with ctl.params_lock:  # two clients' sets merge one after the other; neither is lost
        new = dataclasses.replace(ctl.params, effects={k: dict(v) for k, v in ctl.params.effects.items()})
        if "pitch" in params:
            new.pitch = param(params, "pitch", float, lo=-24, hi=24)
        if "formant" in params:
            new.formant = param(params, "formant", float, lo=-12, hi=12)
        if "gain_db" in params:
            new.gain_db = param(params, "gain_db", float, lo=-60, hi=24)
        if "bypass" in params:
            new.bypass = param(params, "bypass", bool)
        if "effects" in params:
            new.effects = _merge_effects(new.effects, params["effects"])
        return dataclasses.asdict(await ctl.change_params(new))


def _merge_effects(old: dict[str, dict[str, Any]], given: Any) -> dict[str, dict[str, Any]]:
    """``old`` with ``given`` merged in per effect and field; ``null`` for all effects, one effect or one field
    drops those values."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise ProtocolError("parameter 'effects' must be an object {effect: {field: value}} or null", INVALID_PARAMS)
    merged = {k: dict(v) for k, v in old.items()}
    for name, conf in given.items():
        if conf is None:
            merged.pop(name, None)
            continue
        if not isinstance(conf, dict):
            raise ProtocolError(f"effects.{name} must be an object of parameters or null", INVALID_PARAMS)
        fields = merged.setdefault(name, {})
        for key, value in conf.items():
            if value is None:
                fields.pop(key, None)
            else:
                fields[key] = value
    return merged


async def m_speak(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, {"text", "language", "voice", "interrupt", "style"})
    text = param(params, "text", str).strip()
    if not text:
        raise ProtocolError("parameter 'text' is empty; send something to say", INVALID_PARAMS)
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(f"text is longer than {MAX_TEXT_CHARS} characters; split it", INVALID_PARAMS)
    language = param(params, "language", str, default=ctl.config.language)
    voice = param(params, "voice", str, default=ctl.voice)
    interrupt = param(params, "interrupt", bool, default=False)
    style = param(params, "style", str, default=None)
    try:  # what the engine would refuse is the caller's error now, not a failed sentence later
        await ctl.check_speech(text, voice, language)
    except TextInputError as exc:  # empty or unspeakable text, a language the voice does not speak
        raise ProtocolError(str(exc), INVALID_PARAMS) from None
    try:
        item = ctl.speech.enqueue(text, voice, language, interrupt=interrupt, style=style)
    except OverflowError as exc:
        raise ProtocolError(str(exc), NOT_AVAILABLE) from None
    return {"id": item.id, "position": ctl.speech.pending}


async def m_speech_clear(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    dropped, interrupted = ctl.speech.clear()
    return {"dropped": dropped, "interrupted": interrupted}


async def m_live_start(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    return {"started": await ctl.start_live()}


async def m_live_stop(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    return {"stopped": await ctl.stop_live()}


async def m_mute(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, {"muted"})
    ctl.muted = param(params, "muted", bool)
    if ctl.live is not None:
        ctl.live.set_params(ctl._live_params())
    ctl.bus.publish("mute.changed", {"muted": ctl.muted})
    return {"muted": ctl.muted}


async def m_ping(ctl: Controller, params: dict[str, Any]) -> Any:
    reject_unknown(params, set())
    return "pong"


METHODS: dict[str, Handler] = {
    "ping": m_ping,
    "status": m_status,
    "voices.list": m_voices_list,
    "anchorvoice.plugins.list": m_plugins_list,
    "voice.set": m_voice_set,
    "params.get": m_params_get,
    "params.set": m_params_set,
    "speak": m_speak,
    "speech.clear": m_speech_clear,
    "live.start": m_live_start,
    "live.stop": m_live_stop,
    "mute": m_mute,
}
"""Method name -> handler. ``auth``, ``subscribe`` and ``unsubscribe`` are per connection (app.py)."""
