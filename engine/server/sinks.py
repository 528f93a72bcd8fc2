"""Where the server's speech goes: a playback device (the virtual microphone by default) or nowhere.

``DeviceSink`` plays through the streaming backends (output-only ``LiveStream``): ``write`` puts
samples into a ring buffer that the device callback drains, and blocks while the ring holds more
than ``queue_ms`` of audio, so the speech queue is paced by the sound card itself. The callback
only copies from the ring (STYLE.md rule 7). ``NullSink`` discards audio; the controller then paces
playback with its own clock so events keep their real timing (subtitles, avatar mouth).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from anchorvoice.engine.stages import AudioSink
from anchorvoice.errors import DeviceError
from anchorvoice.frames import FloatArray


class NullSink(AudioSink):
    """Discards audio (``serve --speech-output none``: events and subtitles only)."""

    name = "null"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.samples_written = 0

    def open(self, sample_rate: int, block_size: int) -> None:
        self.samples_written = 0

    def write(self, samples: FloatArray) -> None:
        self.samples_written += len(samples)


@dataclass
class DeviceSinkConfig:
    """Speech playback device."""

    output: str = "virtual"
    """'virtual' (the anchorvoice virtual microphone, created if missing) or part of a device name."""
    backend: str = "sounddevice"
    """Audio API: 'sounddevice' or 'pyaudio'."""
    device_buffer_ms: float = 10.0
    """Samples per device callback, in ms."""
    queue_ms: float = 200.0
    """Audio queued ahead of the device; write() waits beyond this (bounds interrupt latency too)."""


class DeviceSink(AudioSink):
    """Plays mono float32 blocks on a device through a ``anchorvoice.streaming.backends`` output stream."""

    name = "device"
    Config = DeviceSinkConfig

    def __init__(self, config: DeviceSinkConfig | None = None, backend: Any = None, virtual_mic: Any = None) -> None:
        super().__init__(config)
        self._backend = backend
        self._virtual_mic = virtual_mic
        self._stream: Any = None
        self._ring: Any = None
        self.sample_rate = 0
        self.device_name = ""

    def _resolve(self, backend: Any) -> Any:
        if self.config.output.lower() != "virtual":
            return backend.resolve(self.config.output, "output")
        from anchorvoice.streaming.virtual_mic import VirtualMic

        status = (self._virtual_mic or VirtualMic()).up()
        if status.play_device is None:
            raise DeviceError(f"virtual microphone unavailable: {status.message}")
        return backend.resolve(status.play_device, "output")

    def open(self, sample_rate: int, block_size: int) -> None:
        from anchorvoice.streaming.backends import get_backend
        from anchorvoice.streaming.backends.base import StreamSpec
        from anchorvoice.streaming.ring import RingBuffer

        backend = self._backend or get_backend(self.config.backend)
        device = self._resolve(backend)
        self.device_name = device.name
        self.sample_rate = sample_rate
        cap = max(block_size, int(sample_rate * self.config.queue_ms / 1000))
        ring = RingBuffer(cap + block_size, overflow="drop_newest")
        self._ring = ring

        def callback(indata: FloatArray | None, outdata: FloatArray | None) -> None:
            if outdata is not None:
                ring.read_into(outdata, pad=True)

        block = max(1, round(self.config.device_buffer_ms * sample_rate / 1000))
        self._stream = backend.open_stream(StreamSpec(sample_rate=sample_rate, block_size=block, output=device),
                                           callback)
        self._stream.start()

    def write(self, samples: FloatArray) -> None:
        ring = self._ring
        if ring is None:
            raise DeviceError("the speech output is not open")
        cap = int(self.sample_rate * self.config.queue_ms / 1000)
        # Wait for the device to drain (paces speech to real time); 5 ms polls cost nothing.
        deadline = time.monotonic() + 5.0 + len(samples) / self.sample_rate
        while ring.available() > 0 and ring.available() + len(samples) > cap:
            if time.monotonic() > deadline:
                raise DeviceError(f"the speech output device {self.device_name!r} stopped playing")
            time.sleep(0.005)
        ring.write(samples)

    def drain_seconds(self) -> float:
        """Audio still queued for the device."""
        return 0.0 if self._ring is None else self._ring.available() / self.sample_rate

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._ring = None
