"""A live session: devices + virtual microphone + ``LiveRunner`` + a converter, started and stopped as one.

``anchorvoice live``, the PulseAudio integration test and ``bench/live_latency.py`` all use it:

    session = LiveSession(LiveConfig(input="usb", output="virtual"), process, extra_latency_ms=34.0)
    session.resolve()        # finds the devices by name (errors before anything else happens)
    session.start()          # opens devices (output first), starts the runner worker
    session.snapshot()       # LiveSnapshot for the status line
    session.stop()           # capture, then playback, then the worker; idempotent

The one configuration, :class:`~anchorvoice.streaming.live_config.LiveConfig`, fills from the ``[live]`` table
of ``configs/vc.toml`` and from command-line options; the session opens devices with it and hands it to
the runner. ``anchorvoice.engine.live.build_live`` assembles a session around a voice's converter, and
resolves the devices with :func:`resolve_devices` before it loads the voice, so a wrong name fails at once.

Any end may be an audio file (input; output and monitor also 'null'): the real runner then runs behind a
clock thread instead of a device (:mod:`anchorvoice.streaming.backends.clocked`), and :meth:`LiveSession.finished`
says when an input file has ended and its converted tail has played. With no sound device at all the session
uses :class:`~anchorvoice.streaming.backends.file_backend.FileBackend`, which needs no PortAudio.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends import get_backend
from anchorvoice.streaming.backends.base import AudioBackend, LiveStream, StreamSpec
from anchorvoice.streaming.backends.clocked import file_device, is_file_device
from anchorvoice.streaming.backends.devices import OUR_SINK, OUR_SOURCE, DeviceInfo
from anchorvoice.streaming.backends.file_backend import FileBackend
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.priority import Priority, promote_helper_threads
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
    jitter_buffer_ms: float = 0.0
    """Current adaptive jitter buffer (part of ``total_latency_ms``)."""
    jitter_peak_ms: float = 0.0
    """Largest jitter buffer since the start."""
    audio_priority: str = "normal"
    """Scheduling of the audio callback thread ('SCHED_FIFO 20', 'normal', ...)."""
    worker_priority: str = "normal"
    """Scheduling of the worker thread ('SCHED_RR 10', 'nice -10', 'normal')."""
    priority_note: str | None = None
    """Why a live thread stayed at normal priority and what to do, or None."""
    helper_priority: str | None = None
    """Scheduling of the sound stack's own threads in this process that carry the samples (libpulse's), or
    None when there are none."""

    def line(self) -> str:
        level = "-inf" if self.input_level_db == -math.inf else f"{self.input_level_db:5.1f}"
        state = " DEGRADED(bypass)" if self.degraded else ""
        return (f"in {level} dBFS | latency {self.algorithmic_latency_ms:.0f} ms alg, "
                f"{self.total_latency_ms:.0f} ms total | compute {self.compute_ms:.2f} ms/block | "
                f"RTF {self.rtf:.2f} | underruns {self.underruns} overruns {self.overruns}{state}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LiveDevices:
    """The resolved ends of one live session."""

    input: DeviceInfo
    """Microphone or input audio file."""
    output: DeviceInfo
    """Playback device (the virtual microphone's, for 'virtual'), output file or 'null'."""
    monitor: DeviceInfo | None = None
    """Second playback device, file or 'null', if any."""

    @property
    def all_files(self) -> bool:
        """No sound device at all: every end is a file or 'null'."""
        return all(is_file_device(d) for d in (self.input, self.output, self.monitor) if d is not None)


def device_backend(config: LiveConfig) -> AudioBackend:
    """The backend that opens ``config``'s ends: the file backend when none is a sound device."""
    outputs = [n for n in (config.output, config.monitor) if n is not None]
    if file_device(config.input, "input") is not None and all(file_device(n, "output") for n in outputs):
        return FileBackend()
    return get_backend(config.backend)


def refuse_feedback(inp: DeviceInfo, out: DeviceInfo) -> None:
    """DeviceError when the input records what the output plays (our virtual microphone, or the other
    side of the virtual cable the output plays into): the converted voice would be converted again."""
    if is_file_device(inp):
        return
    ours = inp.pulse_name in (OUR_SOURCE, f"{OUR_SINK}.monitor") or inp.virtual == "anchorvoice"
    cable = inp.virtual is not None and not is_file_device(out) and inp.virtual == out.virtual
    if ours or cable:
        what = "the anchorvoice virtual microphone" if ours else f"the {inp.virtual} virtual cable live plays into"
        raise DeviceError(
            f"input {inp.name!r} is {what}: converting it would feed the converted voice back into itself "
            "(a feedback loop); pick the real microphone with --input (`anchorvoice devices` lists them)"
        )


def resolve_devices(config: LiveConfig, backend: AudioBackend, virtual_mic: VirtualMic | None = None) -> LiveDevices:
    """Find ``config``'s input, output and monitor (files included) and refuse a feedback loop; DeviceError
    names the device that is wrong. Opens nothing (but 'virtual' creates a missing virtual microphone)."""
    inp = backend.resolve(config.input, "input")
    if config.output.lower() != "virtual":
        out = backend.resolve(config.output, "output")
    else:
        out = backend.resolve((virtual_mic or VirtualMic()).play_device(), "output")
    refuse_feedback(inp, out)
    monitor = backend.resolve(config.monitor, "output") if config.monitor else None
    return LiveDevices(inp, out, monitor)


class LiveSession:
    """Owns the backend stream and the runner of one live run."""

    def __init__(self, config: LiveConfig, process: ProcessFn, *, extra_latency_ms: float = 0.0,
                 on_event: Any = None, backend: AudioBackend | None = None,
                 virtual_mic: VirtualMic | None = None, devices: LiveDevices | None = None) -> None:
        config.validate()
        self.config = config
        self.process = process
        self.extra_latency_ms = extra_latency_ms
        self.on_event = on_event
        self.backend = backend or device_backend(config)
        self.virtual_mic = virtual_mic
        self.devices = devices
        """Resolved ends (``resolve()``; ``start()`` resolves them when not given)."""
        self.runner: LiveRunner | None = None
        self.stream: LiveStream | None = None
        self.input_device: DeviceInfo | None = None
        self.output_device: DeviceInfo | None = None
        self.helper_priority: Priority | None = None
        """The sound stack's client threads after ``start()`` raised them (``config.realtime``), if any."""

    def resolve(self) -> LiveDevices:
        """The session's devices (see :func:`resolve_devices`), found once."""
        if self.devices is None:
            self.devices = resolve_devices(self.config, self.backend, self.virtual_mic)
        return self.devices

    def start(self) -> None:
        cfg = self.config
        devices = self.resolve()
        self.input_device, self.output_device, monitor = devices.input, devices.output, devices.monitor
        block = max(1, round(cfg.device_buffer_ms * cfg.sample_rate / 1000.0))
        spec = StreamSpec(sample_rate=cfg.sample_rate, block_size=block, input=self.input_device,
                          output=self.output_device, monitor=monitor, latency=cfg.suggested_latency())
        holder: dict[str, LiveRunner] = {}

        def callback(indata: Any, outdata: Any) -> None:
            holder["r"].callback(indata, outdata)

        backend = FileBackend() if devices.all_files else self.backend
        stream = backend.open_stream(spec, callback)
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
        if cfg.realtime:  # libpulse's threads exist once the streams run; they carry every sample
            self.helper_priority = promote_helper_threads(cfg.rt_priority)

    def snapshot(self) -> LiveSnapshot:
        if self.runner is None or self.stream is None:
            raise DeviceError("the live session has not started")
        s = self.runner.stats()
        c = self.stream.counters
        h = self.helper_priority
        return LiveSnapshot(
            input_level_db=s.input_level_db,
            algorithmic_latency_ms=s.algorithmic_latency_ms + self.extra_latency_ms,
            total_latency_ms=s.total_latency_ms + self.extra_latency_ms,
            compute_ms=s.compute_ms_avg, rtf=s.rtf,
            underruns=s.underruns + c.output_underflows, overruns=s.overruns + c.input_overflows,
            degraded=s.degraded, blocks=s.blocks_processed, errors=s.errors,
            jitter_buffer_ms=s.jitter_buffer_ms, jitter_peak_ms=s.jitter_peak_ms,
            audio_priority=s.audio_priority, worker_priority=s.worker_priority,
            priority_note="; ".join(n for n in (s.priority_note, h.note if h else None) if n) or None,
            helper_priority=h.text if h else None,
        )

    def finished(self) -> bool:
        """True once an input file has ended and the audio converted from it has played out (the total
        latency after its end); a microphone never finishes."""
        ended = self.stream.input_ended_at if self.stream is not None else None
        if ended is None:
            return False
        return time.perf_counter() - ended >= self.snapshot().total_latency_ms / 1000.0 + self.config.block_ms / 1000.0

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.close()
        if self.runner is not None:
            self.runner.stop()
