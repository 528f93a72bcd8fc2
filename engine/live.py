"""Build a live session around a voice's converter: the one builder ``anchorvoice live`` and the server use.

``build_live(engine, voice, preset="vc", overrides={...})`` goes from the preset's ``[live]`` table plus
overrides to a :class:`~anchorvoice.streaming.live_config.LiveConfig` (refusing out-of-range values), resolves
the input, output and monitor devices or files (a wrong name or a feedback loop fails here, before any model
loads), binds the voice's pipeline, measures
the converter and refuses one too slow for real time (``MAX_LIVE_RTF``; ``force`` starts anyway), wraps it
in a :class:`~anchorvoice.streaming.converter_stream.ConverterProcess` for the runner's block mode, warms it
up, chains the preset's effects and an output gain, and returns a :class:`LiveRun` whose ``session`` is
ready to ``start()``. What the converter carries from stream to stream about the speaker survives the
speed measurement and the warm-up (their test signals are not the speaker), and, through
:mod:`anchorvoice.engine.live_memory`, the end of the process: ``LiveRun.remember`` stores it at stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine import live_memory
from anchorvoice.engine.config import from_dict
from anchorvoice.engine.pipeline import Pipeline
from anchorvoice.errors import ConfigError, DeviceError
from anchorvoice.frames import AudioFrame
from anchorvoice.streaming.converter_stream import ConverterProcess, StreamConverter
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.live_session import LiveSession, device_backend, resolve_devices
from anchorvoice.streaming.runner import EventFn

NEURAL_BLOCK_MS = 250.0
"""Block for neural converters unless the caller's overrides name one: RVC's realtime default (DESIGN.md);
the preset's 10 ms suits only the DSP converter."""
MAX_LIVE_RTF = 0.8
"""Above this compute/audio ratio a live stream degrades within seconds, leaving no headroom."""

WINDOW_FIELDS = ("context_ms", "lookahead_ms", "crossfade_ms", "sola_search_ms")
"""LiveConfig fields that put the runner in windowed mode, which a stateful converter cannot use."""


def live_config(preset_live: Mapping[str, Any], overrides: Mapping[str, Any], *, source: str,
                neural: bool = False) -> LiveConfig:
    """Defaults < the preset's ``[live]`` table < ``NEURAL_BLOCK_MS`` for a neural voice < ``overrides``
    (None values ignored). Errors name ``source`` for the table and ``live.<field>`` for every value."""
    from_dict(LiveConfig, preset_live, source=source, prefix="live")  # the table's own errors name the file
    given = {k: v for k, v in overrides.items() if v is not None}
    data = dict(preset_live)
    if neural and "block_ms" not in given:
        data["block_ms"] = NEURAL_BLOCK_MS
    data.update(given)
    cfg = from_dict(LiveConfig, data, source=f"{source} + live overrides" if given else source, prefix="live")
    cfg.validate()
    return cfg


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """ConfigError (with the allowed range) when an override is out of range on its own, e.g. a command
    line's ``--block-ms 100000``: callers check before they load anything."""
    live_config({}, overrides, source="the live options")


def measure_rtf(converter: StreamConverter, block_ms: float, seconds: float = 2.0) -> float:
    """Compute seconds per audio second of ``converter.process`` on speech-like blocks of ``block_ms``."""
    rate = converter.sample_rate
    sig = speech_like_signal(rate, seconds)
    n = max(1, int(rate * block_ms / 1000))
    converter.reset()
    t0 = time.perf_counter()
    for i in range(0, len(sig.samples) - n + 1, n):
        converter.process(sig.with_samples(sig.samples[i : i + n]))
    rtf = (time.perf_counter() - t0) / seconds
    converter.reset()
    return rtf


@dataclass
class LiveRun:
    """A built live session and what its owner may adjust while it runs."""

    pipeline: Pipeline
    """The voice's pipeline (its converter and effects take live parameter changes)."""
    config: LiveConfig
    """The settings the session runs with."""
    process: ConverterProcess
    """The converter in the runner's block mode."""
    effects: Callable[[AudioFrame], AudioFrame]
    """The preset's effect chain, after the converter."""
    rtf: float
    """The converter's measured real-time factor at ``config.block_ms``."""
    session: LiveSession = field(init=False)
    """Ready to ``start()``; ``stop()`` ends it."""
    gain: float = 1.0
    """Linear output gain after the effects (0 mutes); read every block, so it changes live."""
    home: Path | None = None
    """Where :meth:`remember` keeps what the converter learned of the speaker (:mod:`.live_memory`)."""

    def remember(self) -> None:
        """Store what the converter carries into the next stream for the next live run (after ``stop``)."""
        if self.home is not None:
            live_memory.save(self.pipeline.converter, self.home)

    def convert(self, frame: AudioFrame) -> AudioFrame:
        """The session's process: converter, effects, gain."""
        out = self.effects(self.process(frame))
        g = self.gain
        return out if g == 1.0 else out.with_samples(out.samples * g)


def build_live(engine: Any, voice: str | None, *, preset: str = "vc", overrides: Mapping[str, Any] | None = None,
               force: bool = False, on_event: EventFn | None = None,
               progress: Callable[[str], None] | None = None,
               session_kwargs: Mapping[str, Any] | None = None) -> LiveRun:
    """A live session converting into ``voice`` with ``preset``'s converter (see the module docstring).

    ``session_kwargs`` go to :class:`LiveSession` (``backend``, ``virtual_mic``). ConfigError for an
    out-of-range setting and DeviceError for a device that is not there, both before the voice loads;
    DeviceError when the converter measures slower than ``MAX_LIVE_RTF`` and ``force`` is False.
    """
    say = progress or (lambda _msg: None)
    table = dict(engine.load_preset(preset).live)
    source = str(engine.preset_path(preset))
    given = dict(overrides or {})
    kwargs = dict(session_kwargs or {})
    first = live_config(table, given, source=source)  # devices and ranges, before the voice loads
    kwargs["backend"] = kwargs.get("backend") or device_backend(first)
    kwargs["devices"] = resolve_devices(first, kwargs["backend"], kwargs.get("virtual_mic"))
    say(f"loading voice {voice!r}")
    pipe: Pipeline = engine.pipeline(preset, voice)
    cfg = live_config(table, given, source=source, neural=pipe.neural)
    windowed = [name for name in WINDOW_FIELDS if getattr(cfg, name)]
    if windowed:
        raise ConfigError(
            f"the {pipe.converter.name!r} converter keeps its own history and takes exactly one block per call; "
            f"set {', '.join(WINDOW_FIELDS)} to 0 (in the [live] table or the overrides)",
            key=f"live.{windowed[0]}",
        )
    converter = pipe.converter
    memory = converter.input_memory()  # the test signals below are not the speaker: put it back after them
    try:
        say(f"measuring the converter at {cfg.block_ms:.0f} ms blocks")
        converter.process(speech_like_signal(converter.sample_rate, 0.1))  # first-call compile/load
        rtf = measure_rtf(converter, cfg.block_ms)
        if rtf > MAX_LIVE_RTF and not force:
            raise DeviceError(
                f"voice {voice!r} is too slow for live conversion on this machine: {converter.name!r} measured RTF "
                f"{rtf:.2f} at {cfg.block_ms:.0f} ms blocks (needs <= {MAX_LIVE_RTF}); try a larger block "
                f"(--block-ms / [live] block_ms), fewer --threads competitors, a GPU, or --force to start anyway"
            )
        say(f"converter RTF {rtf:.2f} at {cfg.block_ms:.0f} ms blocks")
        process = ConverterProcess(converter, cfg.sample_rate, cfg.samples(cfg.block_ms))
        say("warming up the converter")
        process.warm_up()  # JIT and first-call allocations before the device starts, not in its first blocks
    finally:
        converter.restore_input_memory(memory)
    home = Path(engine.config.home)
    if live_memory.restore(converter, home):
        say("starting from what the converter heard of the speaker in the last live run")
    effects, fx_latency_ms = pipe.live_effects(cfg.sample_rate)
    run = LiveRun(pipeline=pipe, config=cfg, process=process, effects=effects, rtf=rtf, home=home)
    run.session = LiveSession(cfg, run.convert, extra_latency_ms=process.latency_ms + fx_latency_ms,
                              on_event=on_event, **kwargs)
    return run
