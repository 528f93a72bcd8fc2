"""A live session: devices + virtual microphone + ``LiveRunner`` + a converter, started and stopped as one.

``anchorvoice live``, the PulseAudio integration test and ``bench/live_latency.py`` all use it:

    session = LiveSession(LiveConfig(input="usb", output="virtual"), process, extra_latency_ms=34.0)
    session.start()          # opens devices (output first), starts the runner worker
    session.snapshot()       # LiveSnapshot for the status line
    session.stop()           # capture, then playback, then the worker; idempotent

The one configuration, :class:`~anchorvoice.streaming.live_config.LiveConfig`, fills from the ``[live]`` table
of ``configs/vc.toml`` and from command-line options; the session opens devices with it and hands it to
the runner. ``anchorvoice.engine.live.build_live`` assembles a session around a voice's converter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends import get_backend
from anchorvoice.streaming.backends.base import AudioBackend, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.runner import LiveRunner, ProcessFn
from anchorvoice.streaming.virtual_mic import VirtualMic


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
        self.input_device: DeviceInfo | None = None
        self.output_device: DeviceInfo | None = None

    def _resolve_output(self) -> DeviceInfo:
        if self.config.output.lower() != "virtual":
            return self.backend.resolve(self.config.output, "output")
        vm = self.virtual_mic or VirtualMic()
        return self.backend.resolve(vm.play_device(), "output")

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
        self.runner = LiveRunner(self.process, cfg, on_event=self.on_event,
                                 device_latency_ms=stream.device_latency_ms())
        holder["r"] = self.runner
        self.stream = stream
        self.runner.start()  # freezes the GC (config.freeze_gc) until runner.stop()
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
