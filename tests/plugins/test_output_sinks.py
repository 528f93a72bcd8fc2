"""Speech outputs: names -> the registered sink stages, device pacing, and a virtual mic that never falls
back to the speakers."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from anchorvoice.engine.output_sinks import OutputConfig, output_sink
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import DeviceError
from anchorvoice.plugins import audio_io
from anchorvoice.streaming.backends.base import AudioBackend, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo
from anchorvoice.streaming.virtual_mic import VirtualMic, VirtualMicStatus


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
        return [DeviceInfo("Speakers", "test", 0, 2, 48000.0, index=0),
                DeviceInfo("anchorvoice_sink", "test", 0, 1, 48000.0, index=1)]

    def open_stream(self, spec: StreamSpec, callback: Any) -> LiveStream:
        s = ClockStream(spec, callback)
        self.streams.append(s)
        return s


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> ClockBackend:
    b = ClockBackend()
    monkeypatch.setattr(audio_io, "get_backend", lambda name: b)
    return b


def fake_mic(monkeypatch: pytest.MonkeyPatch, play_device: str | None) -> None:
    class FakeMic(VirtualMic):
        def up(self) -> VirtualMicStatus:
            return VirtualMicStatus(platform=self.platform, present=play_device is not None, play_device=play_device,
                                    message="virtual mic is down (run `anchorvoice virtual-mic up`)")

    monkeypatch.setattr(audio_io, "VirtualMic", FakeMic)


@pytest.mark.parametrize(("output", "stage", "device"), [
    ("virtual", "virtual_mic", None), ("none", "null", None), ("default", "device", None),
    ("Speakers", "device", "Speakers"),
])
def test_output_names_map_onto_registered_sinks(builtin_plugins: PluginManager, output: str, stage: str,
                                                device: str | None) -> None:
    sink = output_sink(builtin_plugins, OutputConfig(output=output, queue_ms=120))
    assert sink.name == stage and type(sink) is builtin_plugins.get("audio_sink", stage)
    assert OutputConfig(output=output).plays is (output != "none")
    if stage == "device":
        assert sink.config.device == device and sink.config.queue_ms == 120


def test_device_output_plays_everything_in_order_at_device_pace(builtin_plugins: PluginManager,
                                                                backend: ClockBackend) -> None:
    sink = output_sink(builtin_plugins, OutputConfig(output="Speakers", queue_ms=100))
    sr, block = 8000, 400  # 50 ms blocks
    sink.open(sr, block)
    ramp = (np.arange(sr, dtype=np.float32) / sr) * 0.9 + 0.05  # 1 s, never zero
    t0 = time.perf_counter()
    for i in range(0, sr, block):
        sink.write(ramp[i : i + block])
    written = time.perf_counter() - t0
    sink.close()  # drains
    time.sleep(0.05)
    played = np.concatenate(backend.streams[0].played)
    start = int(np.argmax(played > 0))
    assert np.array_equal(played[start : start + sr], ramp)  # nothing lost, nothing reordered
    # the device paced the writer: 1 s of audio with a 100 ms queue takes about 0.9 s to hand over
    assert written > 0.7


def test_unknown_device_is_refused(builtin_plugins: PluginManager, backend: ClockBackend) -> None:
    with pytest.raises(DeviceError):
        output_sink(builtin_plugins, OutputConfig(output="no such device")).open(8000, 400)


def test_virtual_output_plays_into_the_virtual_mic(builtin_plugins: PluginManager, backend: ClockBackend,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mic(monkeypatch, "anchorvoice_sink")
    sink = output_sink(builtin_plugins, OutputConfig(output="virtual"))
    sink.open(8000, 400)
    sink.close()
    assert backend.streams[0].spec.output is not None and backend.streams[0].spec.output.name == "anchorvoice_sink"


def test_missing_virtual_mic_is_refused_not_played_on_the_speakers(
    builtin_plugins: PluginManager, backend: ClockBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_mic(monkeypatch, None)
    sink = output_sink(builtin_plugins, OutputConfig(output="virtual"))
    with pytest.raises(DeviceError, match="virtual microphone unavailable.*(pulseaudio --start|VB-CABLE|BlackHole)"):
        sink.open(8000, 400)
    assert backend.streams == []  # nothing opened on the default speakers


def test_null_output_counts() -> None:
    s = audio_io.NullAudioSink()
    s.open(16000, 800)
    s.write(np.zeros(800, np.float32))
    assert s.samples_written == 800
