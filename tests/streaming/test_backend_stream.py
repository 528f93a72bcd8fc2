"""The backend base's stream logic with a fake device API driven by threads (no sound server)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.base import LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo, Direction

RATE, BLOCK = 48000, 480
MIC = DeviceInfo("mic", "Fake", 1, 0, RATE, index=0)
SPEAKER = DeviceInfo("speaker", "Fake", 0, 2, RATE, index=1)
HEADPHONES = DeviceInfo("headphones", "Fake", 0, 2, RATE, index=2)


class FakeHandle:
    """A device thread calling the stream's handler every 10 ms, after an optional start-up stall."""

    def __init__(self, role: str, stream: FakeStream, stall_s: float) -> None:
        self.role, self.stream, self.stall_s = role, stream, stall_s
        self.buf = np.zeros(BLOCK, np.float32)
        self.heard: list[np.ndarray] = []
        self.flag = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        time.sleep(self.stall_s)
        k = 0
        while not self._stop.is_set():
            if self.role == "input":
                self.buf[:] = k
                self.stream._on_input(self.buf, self.flag)
            elif self.role == "output":
                self.stream._on_output(self.buf, self.flag)
                self.heard.append(self.buf.copy())
            else:
                self.stream._on_monitor(self.buf, False)
                self.heard.append(self.buf.copy())
            k += 1
            time.sleep(BLOCK / RATE)


class FakeStream(LiveStream):
    def __init__(self, spec: StreamSpec, callback: Any, stall_s: float = 0.0) -> None:
        super().__init__(spec, callback)
        self.stall_s = stall_s
        self.log: list[tuple[str, str, float]] = []
        self.fakes: dict[str, FakeHandle] = {}

    def _open(self, direction: Direction, device: DeviceInfo, role: str) -> FakeHandle:
        if device.name == "broken":
            raise DeviceError("cannot open broken")
        self.fakes[role] = FakeHandle(role, self, self.stall_s if role == "output" else 0.0)
        return self.fakes[role]

    def _latency(self, handle: Any, direction: Direction) -> float:
        return 0.02

    def _start(self, handle: FakeHandle) -> None:
        self.log.append(("start", handle.role, time.perf_counter()))
        handle._thread.start()

    def _stop(self, handle: FakeHandle) -> None:
        self.log.append(("stop", handle.role, time.perf_counter()))
        handle._stop.set()
        handle._thread.join()

    def _close(self, handle: FakeHandle) -> None:
        self.log.append(("close", handle.role, time.perf_counter()))


def test_output_settles_before_capture_starts_and_the_callback_sees_both_sides() -> None:
    calls = {"in": 0, "out": 0}

    def callback(indata: np.ndarray | None, outdata: np.ndarray | None) -> None:
        assert (indata is None) != (outdata is None)  # split streams: one side per call
        if indata is not None:
            calls["in"] += 1
        else:
            calls["out"] += 1
            outdata[:] = 0.25  # type: ignore[index]

    stream = FakeStream(StreamSpec(RATE, BLOCK, input=MIC, output=SPEAKER, monitor=HEADPHONES), callback,
                        stall_s=0.3)
    stream.open()
    assert stream.device_latency_ms() == (20.0, 20.0)
    stream.start()
    time.sleep(0.2)
    stream.close()
    starts = {role: t for what, role, t in stream.log if what == "start"}
    assert starts["output"] < starts["input"] and starts["monitor"] < starts["input"]
    assert starts["input"] - starts["output"] >= 0.3  # waited out the output's start-up stall
    assert stream.counters.settle_s >= 0.3
    assert calls["in"] > 0 and calls["out"] > 0
    # Stop order: capture first, then playback.
    stops = [role for what, role, _ in stream.log if what == "stop"]
    assert stops.index("input") < stops.index("output")
    # Silence until capture ran, then what the callback wrote; the monitor heard the same.
    heard = np.concatenate(stream.fakes["output"].heard)
    assert heard[0] == 0.0 and np.count_nonzero(heard == 0.25) > BLOCK
    assert 0.25 in np.concatenate(stream.fakes["monitor"].heard)


def test_device_flags_are_counted_only_once_running() -> None:
    stream = FakeStream(StreamSpec(RATE, BLOCK, input=MIC, output=SPEAKER), lambda i, o: None)
    stream.open()
    stream.fakes["output"].flag = True  # every playback callback reports an underflow
    stream.fakes["input"].flag = True
    stream.start()
    time.sleep(0.1)
    stream.close()
    c = stream.counters
    assert 0 < c.output_underflows < c.output_blocks  # the settling callbacks are not counted
    assert c.input_overflows == c.input_blocks > 0


def test_a_device_that_cannot_open_closes_what_was_opened() -> None:
    stream = FakeStream(StreamSpec(RATE, BLOCK, input=DeviceInfo("broken", "Fake", 1, 0, RATE), output=SPEAKER),
                        lambda i, o: None)
    with pytest.raises(DeviceError, match="broken"):
        stream.start()
    assert any(what == "close" and role == "output" for what, role, _ in stream.log)


def test_stream_needs_a_device_and_a_sane_format() -> None:
    with pytest.raises(DeviceError, match="input or an output"):
        FakeStream(StreamSpec(RATE, BLOCK), lambda i, o: None)
    with pytest.raises(DeviceError, match="bad stream format"):
        FakeStream(StreamSpec(RATE, 0, output=SPEAKER), lambda i, o: None)
