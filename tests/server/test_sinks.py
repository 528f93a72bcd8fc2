"""Speech sinks: DeviceSink paced by a (simulated, real-time) output device; NullSink."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from anchorvoice.engine.server.sinks import DeviceSink, DeviceSinkConfig, NullSink
from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.base import AudioBackend, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo


class ClockStream(LiveStream):
    """An output device played by a thread at real-time pace; keeps what it played."""

    def __init__(self, spec: StreamSpec, callback: Any) -> None:
        super().__init__(spec, callback)
        self.played: list[np.ndarray] = []
        self._stop_flag = threading.Event()
        self._thread: threading.Thread | None = None

    def _open(self, direction: Any, device: DeviceInfo, role: str) -> Any:
        return role

    def _latency(self, handle: Any, direction: Any) -> float:
        return 0.0

    def _run(self) -> None:
        bs, sr = self.spec.block_size, self.spec.sample_rate
        t0, n = time.perf_counter(), 0
        while not self._stop_flag.is_set():
            out = np.zeros(bs, np.float32)
            self._on_output(out, False)
            self.played.append(out)
            n += 1
            time.sleep(max(0.0, t0 + n * bs / sr - time.perf_counter()))

    def _start(self, handle: Any) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _stop(self, handle: Any) -> None:
        self._stop_flag.set()
        if self._thread is not None:
            self._thread.join()

    def _close(self, handle: Any) -> None:
        self._stop(handle)


class ClockBackend(AudioBackend):
    name = "clock"

    def __init__(self) -> None:
        self.streams: list[ClockStream] = []

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("Speakers", "test", 0, 2, 48000.0, index=0)]

    def open_stream(self, spec: StreamSpec, callback: Any) -> LiveStream:
        s = ClockStream(spec, callback)
        self.streams.append(s)
        return s


def test_device_sink_plays_everything_in_order_at_device_pace() -> None:
    backend = ClockBackend()
    sink = DeviceSink(DeviceSinkConfig(output="Speakers", queue_ms=100), backend=backend)
    sr, block = 8000, 400  # 50 ms blocks
    sink.open(sr, block)
    ramp = (np.arange(sr, dtype=np.float32) / sr) * 0.9 + 0.05  # 1 s, never zero
    t0 = time.perf_counter()
    for i in range(0, sr, block):
        sink.write(ramp[i : i + block])
    written = time.perf_counter() - t0
    while sink.drain_seconds() > 0:
        time.sleep(0.01)
    time.sleep(0.05)
    sink.close()
    played = np.concatenate(backend.streams[0].played)
    start = int(np.argmax(played > 0))
    assert np.array_equal(played[start : start + sr], ramp)  # nothing lost, nothing reordered
    # the device paced the writer: 1 s of audio with a 100 ms queue takes about 0.9 s to hand over
    assert written > 0.7


def test_device_sink_errors() -> None:
    sink = DeviceSink(DeviceSinkConfig(output="Speakers"), backend=ClockBackend())
    with pytest.raises(DeviceError, match="not open"):
        sink.write(np.zeros(10, np.float32))
    with pytest.raises(DeviceError):
        DeviceSink(DeviceSinkConfig(output="no such device"), backend=ClockBackend()).open(8000, 400)


def test_null_sink_counts() -> None:
    s = NullSink()
    s.open(16000, 800)
    s.write(np.zeros(800, np.float32))
    assert s.samples_written == 800
