"""Built-in audio sources and sinks (entry point ``audio-io``): files, null, devices, virtual mic.

Device stages wrap :mod:`anchorvoice.streaming.backends` behind a blocking ``read`` / ``write`` (a ring
buffer between the caller and the device callback), for pipelines that pull or push audio at their
own pace. The live path (``anchorvoice live``) drives the backends directly through
``anchorvoice.streaming.runner.LiveRunner`` instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorvoice.engine.hookspecs import hookimpl
from anchorvoice.engine.stages import AudioSink, AudioSource
from anchorvoice.errors import DeviceError
from anchorvoice.frames import FloatArray
from anchorvoice.streaming.backends import get_backend
from anchorvoice.streaming.backends.base import LiveStream, StreamSpec
from anchorvoice.streaming.backends.files import FileSink, FileSource, NullSink
from anchorvoice.streaming.ring import RingBuffer
from anchorvoice.streaming.virtual_mic import VirtualMic

DEVICE_TIMEOUT_S = 2.0
"""A device that delivers / accepts nothing for this long is reported as stalled."""


@dataclass
class FileSourceConfig:
    """Read an audio file as a stream."""

    path: str = ""
    """Audio file (WAV/FLAC/OGG/G.722)."""
    loop: bool = False
    """Start again at the end instead of ending the stream."""
    realtime: bool = False
    """Deliver blocks at real-time pace, like a microphone."""


class FileAudioSource(AudioSource):
    name = "file"
    Config = FileSourceConfig

    def open(self, sample_rate: int, block_size: int) -> None:
        if not self.config.path:
            raise DeviceError("the file source needs a path (params.path = \"speech.wav\")")
        self._src = FileSource(self.config.path, sample_rate, block_size, loop=self.config.loop,
                               realtime=self.config.realtime)

    def read(self) -> FloatArray | None:
        return self._src.read()


@dataclass
class FileSinkConfig:
    """Write the stream to an audio file."""

    path: str = "out/live.wav"
    """Output file; the extension picks the format (WAV is written as 32-bit float)."""


class FileAudioSink(AudioSink):
    name = "file"
    Config = FileSinkConfig

    def open(self, sample_rate: int, block_size: int) -> None:
        self._sink = FileSink(self.config.path, sample_rate)

    def write(self, samples: FloatArray) -> None:
        self._sink.write(samples)

    def close(self) -> None:
        if hasattr(self, "_sink"):
            self._sink.close()


class NullAudioSink(AudioSink):
    name = "null"

    def open(self, sample_rate: int, block_size: int) -> None:
        self._sink = NullSink()

    def write(self, samples: FloatArray) -> None:
        self._sink.write(samples)

    @property
    def samples_written(self) -> int:
        return self._sink.samples_written


@dataclass
class DeviceConfig:
    """A sound card / Pulse device."""

    device: str | None = None
    """Part of the device name (`anchorvoice devices`); None: the system default."""
    backend: str = "sounddevice"
    """'sounddevice' or 'pyaudio'."""
    queue_ms: float = 200.0
    """Audio buffered between the caller and the device (at least two blocks): a writer waits beyond it,
    a reader that falls behind loses the oldest audio. It bounds the latency the caller can add."""


class _DeviceStage:
    """Shared plumbing: one device stream with a ring between it and the caller."""

    config: Any
    _stream: LiveStream | None = None

    def _open_stream(self, direction: str, device_name: str | None, sample_rate: int, block_size: int) -> None:
        backend = get_backend(self.config.backend)
        dev = backend.resolve(device_name, "input" if direction == "input" else "output")
        capacity = max(2 * block_size, round(self.config.queue_ms * sample_rate / 1000))
        self._ring = RingBuffer(capacity, overflow="drop_oldest" if direction == "input"
                                else "drop_newest")
        self._block = block_size
        ring = self._ring

        def callback(indata: FloatArray | None, outdata: FloatArray | None) -> None:
            if indata is not None:
                ring.write(indata)
            if outdata is not None:
                ring.read_into(outdata, pad=True)

        spec = StreamSpec(sample_rate, block_size, input=dev if direction == "input" else None,
                          output=dev if direction == "output" else None)
        self._stream = backend.open_stream(spec, callback)
        self._stream.start()

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class DeviceAudioSource(_DeviceStage, AudioSource):
    name = "device"
    Config = DeviceConfig

    def open(self, sample_rate: int, block_size: int) -> None:
        self._open_stream("input", self.config.device, sample_rate, block_size)

    def read(self) -> FloatArray | None:
        deadline = time.perf_counter() + DEVICE_TIMEOUT_S
        while self._ring.available() < self._block:
            if time.perf_counter() > deadline:
                raise DeviceError(f"input device {self.config.device or 'default'!r} delivered no audio for "
                                  f"{DEVICE_TIMEOUT_S:.0f} s (is it muted, suspended or unplugged?)")
            time.sleep(0.002)
        return self._ring.read(self._block)

    def close(self) -> None:
        self._close_stream()


class DeviceAudioSink(_DeviceStage, AudioSink):
    name = "device"
    Config = DeviceConfig

    def _device_name(self) -> str | None:
        return self.config.device  # type: ignore[no-any-return]

    def open(self, sample_rate: int, block_size: int) -> None:
        self._open_stream("output", self._device_name(), sample_rate, block_size)

    def write(self, samples: FloatArray) -> None:
        """Blocks while the queue is full (backpressure paces the caller to the device clock)."""
        data = np.asarray(samples, dtype=np.float32)
        deadline = time.perf_counter() + DEVICE_TIMEOUT_S
        while len(data):
            n = self._ring.write(data[: self._ring.free()])  # only what fits: wait, never drop
            data = data[n:]
            if len(data):
                if time.perf_counter() > deadline:
                    raise DeviceError(f"output device {self._device_name() or 'default'!r} accepted no audio "
                                      f"for {DEVICE_TIMEOUT_S:.0f} s (is it suspended or unplugged?)")
                time.sleep(0.002)

    def drain(self, timeout: float = DEVICE_TIMEOUT_S) -> None:
        """Wait until everything written has been handed to the device."""
        deadline = time.perf_counter() + timeout
        while self._ring.available() and time.perf_counter() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        if self._stream is not None:
            self.drain()
        self._close_stream()


@dataclass
class VirtualMicSinkConfig:
    """Play into the virtual microphone (created if missing)."""

    backend: str = "sounddevice"
    """'sounddevice' or 'pyaudio'."""
    queue_ms: float = 200.0
    """Audio buffered ahead of the device; a writer waits beyond it."""


class VirtualMicSink(DeviceAudioSink):
    """Plays into the virtual microphone; without one it refuses (DeviceError says what to install or
    start) rather than playing the voice on the speakers."""

    name = "virtual_mic"
    Config = VirtualMicSinkConfig  # type: ignore[assignment]
    _device: str | None = None

    def _device_name(self) -> str | None:
        return self._device

    def open(self, sample_rate: int, block_size: int) -> None:
        self._device = VirtualMic().play_device()
        super().open(sample_rate, block_size)


@hookimpl
def register_audio_sources(register):
    register(FileAudioSource)
    register(DeviceAudioSource)


@hookimpl
def register_audio_sinks(register):
    register(FileAudioSink)
    register(NullAudioSink)
    register(DeviceAudioSink)
    register(VirtualMicSink)
