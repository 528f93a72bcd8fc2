"""A live session: devices + virtual microphone + ``LiveRunner`` + a converter, started and stopped as one.

``anchorvoice live``, the PulseAudio integration test and ``bench/live_latency.py`` all use it:

    session = LiveSession(LiveConfig(input="usb", output="virtual"), process, extra_latency_ms=34.0)
    session.start()          # opens devices (output first), starts the runner worker
    session.snapshot()       # LiveSnapshot for the status line
    session.stop()           # capture, then playback, then the worker; idempotent

``LiveConfig`` fills from the ``[live]`` table of ``configs/vc.toml`` and from command-line options.
"""

from __future__ import annotations

import gc
import math
from dataclasses import asdict, dataclass
from typing import Any

from anchorvoice.engine.runner import LiveRunner, ProcessFn, RunnerConfig
from anchorvoice.errors import ConfigError, DeviceError
from anchorvoice.streaming.backends import get_backend
from anchorvoice.streaming.backends.base import AudioBackend, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo
from anchorvoice.streaming.virtual_mic import VirtualMic


@dataclass
class LiveConfig:
    """Live path settings (the ``[live]`` table); times in milliseconds."""

    backend: str = "sounddevice"
    """Audio API: 'sounddevice' (default) or 'pyaudio'."""
    input: str | None = None
    """Capture device name substring; None: the system default microphone."""
    output: str = "virtual"
    """'virtual' (the virtual microphone, created if missing) or a playback device name substring."""
    monitor: str | None = None
    """Optional second playback device (headphones) that hears the converted voice."""
    sample_rate: int = 48000
    """Device rate in Hz; 48 kHz is native to Pulse, Discord's Opus and OBS."""
    block_ms: float = 10.0
    """New audio per converter call. 10 ms + the DSP converter's 32 ms + ~2 ms resampling keeps the
    algorithmic latency under 50 ms (the brief's target); neural converters need 150-250 ms (RVC)."""
    context_ms: float = 0.0
    """Past audio re-sent with each block; stateful converters (all VoiceConverters) keep their own
    history, so 0 unless a windowed process needs it."""
    crossfade_ms: float = 0.0
    """SOLA crossfade; a stateful converter's blocks are exact continuations, so 0 costs nothing."""
    sola_search_ms: float = 0.0
    """SOLA search window (0 with crossfade 0)."""
    jitter_ms: float = 20.0
    """Output queued before playback starts (rounded up to whole blocks): absorbs worker hiccups."""
    input_queue_ms: float = 80.0
    """Input queued for a late worker before the oldest audio is dropped (rounded up to blocks)."""
    device_buffer_ms: float = 10.0
    """PortAudio buffer per callback."""
    device_latency: str = "low"
    """PortAudio suggested latency: 'low', 'high' or seconds as text (e.g. '0.05')."""

    def validate(self) -> None:
        """ConfigError naming the field when a value cannot work."""
        if self.backend not in ("sounddevice", "pyaudio"):
            raise ConfigError(f"backend {self.backend!r} is unknown; choose sounddevice or pyaudio", key="live.backend")
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive, got {self.sample_rate}", key="live.sample_rate")
        if self.device_buffer_ms <= 0:
            raise ConfigError(f"device_buffer_ms must be positive, got {self.device_buffer_ms}",
                              key="live.device_buffer_ms")
        if self.jitter_ms < 0:
            raise ConfigError(f"jitter_ms must be >= 0, got {self.jitter_ms}", key="live.jitter_ms")
        if self.input_queue_ms <= 0:
            raise ConfigError(f"input_queue_ms must be positive, got {self.input_queue_ms}", key="live.input_queue_ms")
        self.suggested_latency()
        try:
            self.runner_config().validate()
        except ValueError as exc:
            raise ConfigError(str(exc), key="live") from None

    def suggested_latency(self) -> float | str:
        if self.device_latency in ("low", "high"):
            return self.device_latency
        try:
            return float(self.device_latency)
        except ValueError:
            raise ConfigError(f"device_latency {self.device_latency!r}: use 'low', 'high' or seconds",
                              key="live.device_latency") from None

    def runner_config(self) -> RunnerConfig:
        """The runner's parameters for these settings."""
        return RunnerConfig(
            sample_rate=self.sample_rate, block_ms=self.block_ms, context_ms=self.context_ms,
            crossfade_ms=self.crossfade_ms, sola_search_ms=self.sola_search_ms,
            prefill_blocks=self._blocks(self.jitter_ms),
            input_queue_blocks=max(1, self._blocks(self.input_queue_ms)),
        )

    def _blocks(self, ms: float) -> int:
        return max(0, math.ceil(ms / self.block_ms - 1e-9)) if self.block_ms > 0 else 0


@dataclass
class LiveSnapshot:
    """What the status line shows."""

    input_level_db: float
    """RMS of the newest input block in dBFS."""
    algorithmic_latency_ms: float
    """Runner block scheme + the converter's own latency."""
    total_latency_ms: float
    """Algorithmic + jitter buffer + device latencies PortAudio reports."""
    compute_ms: float
    """Average compute time per block."""
    rtf: float
    """Compute time / block duration."""
    underruns: int
    """Output ring underruns + device output underflows (after start-up)."""
    overruns: int
    """Ring drop events + device input overflows."""
    degraded: bool
    """Bypass is playing."""
    blocks: int
    """Blocks processed."""
    errors: int
    """Converter exceptions."""

    def line(self) -> str:
        level = "-inf" if self.input_level_db == -math.inf else f"{self.input_level_db:5.1f}"
        state = " DEGRADED(bypass)" if self.degraded else ""
        return (f"in {level} dBFS | latency {self.algorithmic_latency_ms:.0f} ms alg, "
                f"{self.total_latency_ms:.0f} ms total | compute {self.compute_ms:.2f} ms/block | "
                f"RTF {self.rtf:.2f} | underruns {self.underruns} overruns {self.overruns}{state}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LiveSession:
    """Owns the backend stream and the runner of one live run."""

    def __init__(self, config: LiveConfig, process: ProcessFn, *, extra_latency_ms: float = 0.0,
                 on_event: Any = None, backend: AudioBackend | None = None,
                 virtual_mic: VirtualMic | None = None) -> None:
        config.validate()
        self.config = config
        self.process = process
        self.extra_latency_ms = extra_latency_ms
        self.on_event = on_event
        self.backend = backend or get_backend(config.backend)
        self.virtual_mic = virtual_mic
        self.runner: LiveRunner | None = None
        self.stream: LiveStream | None = None
        self._frozen = False  # gc.freeze() is in effect (start() .. stop())
        self.input_device: DeviceInfo | None = None
        self.output_device: DeviceInfo | None = None

    def _resolve_output(self) -> DeviceInfo:
        if self.config.output.lower() != "virtual":
            return self.backend.resolve(self.config.output, "output")
        vm = self.virtual_mic or VirtualMic()
        status = vm.up()
        if status.play_device is None:
            raise DeviceError(f"virtual microphone unavailable: {status.message}")
        return self.backend.resolve(status.play_device, "output")

    def start(self) -> None:
        cfg = self.config
        self.input_device = self.backend.resolve(cfg.input, "input")
        self.output_device = self._resolve_output()
        monitor = self.backend.resolve(cfg.monitor, "output") if cfg.monitor else None
        block = max(1, round(cfg.device_buffer_ms * cfg.sample_rate / 1000.0))
        spec = StreamSpec(sample_rate=cfg.sample_rate, block_size=block, input=self.input_device,
                          output=self.output_device, monitor=monitor, latency=cfg.suggested_latency())
        holder: dict[str, LiveRunner] = {}

        def callback(indata: Any, outdata: Any) -> None:
            holder["r"].callback(indata, outdata)

        stream = self.backend.open_stream(spec, callback)
        stream.open()
        self.runner = LiveRunner(self.process, cfg.runner_config(), on_event=self.on_event,
                                 device_latency_ms=stream.device_latency_ms())
        holder["r"] = self.runner
        self.stream = stream
        # A full collection walks every tracked object with the GIL held: 184 ms for the ~500k objects of
        # the test process once models are loaded, long enough to make the device callbacks late. Collect
        # once now and freeze the survivors, so later collections only walk what the stream allocates;
        # stop() unfreezes them.
        gc.collect()
        gc.freeze()
        self._frozen = True
        self.runner.start()
        try:
            stream.start()
        except Exception:
            self.stop()
            raise

    def snapshot(self) -> LiveSnapshot:
        if self.runner is None or self.stream is None:
            raise DeviceError("the live session has not started")
        s = self.runner.stats()
        c = self.stream.counters
        return LiveSnapshot(
            input_level_db=s.input_level_db,
            algorithmic_latency_ms=s.algorithmic_latency_ms + self.extra_latency_ms,
            total_latency_ms=s.total_latency_ms + self.extra_latency_ms,
            compute_ms=s.compute_ms_avg, rtf=s.rtf,
            underruns=s.underruns + c.output_underflows, overruns=s.overruns + c.input_overflows,
            degraded=s.degraded, blocks=s.blocks_processed, errors=s.errors,
        )

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.close()
        if self.runner is not None:
            self.runner.stop()
        if self._frozen:
            gc.unfreeze()  # objects that were alive at start() are collectable again
            self._frozen = False
