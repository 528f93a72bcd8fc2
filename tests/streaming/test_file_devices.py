"""Audio files and 'null' as live devices: the real session and runner behind a real-time clock thread."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.audio_io import read_audio
from anchorvoice.errors import ConfigError, DeviceError
from anchorvoice.streaming.backends.base import AudioBackend, DuplexCallback, LiveStream, StreamSpec
from anchorvoice.streaming.backends.clocked import file_device
from anchorvoice.streaming.backends.devices import DeviceInfo
from anchorvoice.streaming.backends.file_backend import FileBackend
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.live_session import LiveSession, device_backend, resolve_devices
from anchorvoice.streaming.virtual_mic import VirtualMic

RATE = 48000


def _tone(path: Path, seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(str(path), x, rate)
    return x


def _run_to_end(session: LiveSession, limit_s: float = 10.0) -> float:
    session.start()
    t0 = time.perf_counter()
    try:
        while not session.finished():
            assert time.perf_counter() - t0 < limit_s, "the input file never finished"
            time.sleep(0.02)
    finally:
        session.stop()
    return time.perf_counter() - t0


def test_file_in_file_out_plays_in_real_time_through_the_runner(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    _tone(src, 0.6)  # 16 kHz: resampled to the live rate
    cfg = LiveConfig(input=str(src), output=str(dst), block_ms=20.0)
    session = LiveSession(cfg, lambda f: f.with_samples(f.samples * 0.5))
    assert isinstance(session.backend, FileBackend)  # no PortAudio needed
    t_start = time.perf_counter()
    _run_to_end(session)
    assert time.perf_counter() - t_start >= 0.6  # real time, not as fast as possible
    snap = session.snapshot()
    assert snap.blocks >= 30 and snap.underruns == 0 and snap.overruns == 0
    out = read_audio(dst)
    expected = read_audio(src, RATE).samples * 0.5
    assert out.sample_rate == RATE
    # The whole file came through, after the session's latency, processed by the process function.
    assert 0.6 <= out.duration <= 0.6 + snap.total_latency_ms / 1000 + 0.2
    first = int(np.argmax(np.abs(out.samples) > 0.01))
    lag = min(range(max(0, first - 200), first + 1),
              key=lambda k: float(np.sum((out.samples[k + 1000 : k + 5000] - expected[1000:5000]) ** 2)))
    assert lag <= RATE * snap.total_latency_ms / 1000 + RATE // 50
    np.testing.assert_allclose(out.samples[lag + 100 : lag + 20000], expected[100:20000], atol=1e-3)


def test_null_output_discards_and_a_file_input_finishes(tmp_path: Path) -> None:
    src = tmp_path / "in.flac"
    _tone(src, 0.3, rate=RATE)
    session = LiveSession(LiveConfig(input=str(src), output="null"), lambda f: f)
    _run_to_end(session)
    assert session.output_device is not None and session.output_device.name == "null"
    assert session.snapshot().blocks >= 25


def test_a_missing_input_file_or_unwritable_output_is_refused_at_resolve(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="input file .*nope.wav.* not found"):
        file_device(str(tmp_path / "nope.wav"), "input")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DeviceError, match="not a writable folder"):
        file_device(str(tmp_path / "a-file" / "out.wav"), "output")
    assert file_device("usb mic", "input") is None and file_device("speakers", "output") is None


def test_a_file_input_with_a_device_output_uses_the_device_backend(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    _tone(src, 0.1)
    assert not isinstance(device_backend(LiveConfig(input=str(src), output="virtual")), FileBackend)
    assert isinstance(device_backend(LiveConfig(input=str(src), output="null", monitor="m.wav")), FileBackend)


# -- feedback loops ---------------------------------------------------------------------------------------------

PULSE = [
    DeviceInfo("alsa_input.usb-mic", "PulseAudio", 1, 0, RATE, pulse_name="alsa_input.usb-mic",
               description="USB Microphone"),
    DeviceInfo("anchorvoice_mic", "PulseAudio", 1, 0, RATE, pulse_name="anchorvoice_mic",
               description="anchorvoice Virtual Mic"),
    DeviceInfo("anchorvoice_sink.monitor", "PulseAudio", 1, 0, RATE, pulse_name="anchorvoice_sink.monitor",
               description="Monitor of anchorvoice sink"),
    DeviceInfo("anchorvoice_sink", "PulseAudio", 0, 2, RATE, pulse_name="anchorvoice_sink"),
    DeviceInfo("CABLE Input (VB-Audio Virtual Cable)", "MME", 0, 2, RATE, index=7),
    DeviceInfo("CABLE Output (VB-Audio Virtual Cable)", "MME", 2, 0, RATE, index=8),
    DeviceInfo("speakers", "PulseAudio", 0, 2, RATE, pulse_name="speakers"),
]


class ListBackend(AudioBackend):
    name = "list"

    def __init__(self, devices: list[DeviceInfo]) -> None:
        self._devices = devices

    def devices(self) -> list[DeviceInfo]:
        return self._devices

    def open_stream(self, spec: StreamSpec, callback: DuplexCallback) -> LiveStream:
        raise AssertionError("resolving must not open anything")


class OurMic(VirtualMic):
    def __init__(self, play: str) -> None:
        super().__init__(platform="linux", list_devices=lambda: [])
        self.play = play

    def play_device(self) -> str:
        return self.play


@pytest.mark.parametrize("name", ["anchorvoice_mic", "anchorvoice_sink.monitor", "Virtual Mic"])
def test_recording_our_own_virtual_mic_is_refused_as_a_feedback_loop(name: str) -> None:
    cfg = LiveConfig(input=name, output="virtual")
    with pytest.raises(DeviceError, match=r"feedback loop.*pick the real microphone with --input"):
        resolve_devices(cfg, ListBackend(PULSE), OurMic("anchorvoice_sink"))


def test_a_default_microphone_that_is_our_virtual_mic_is_refused_too() -> None:
    devices = [DeviceInfo(d.name, d.host_api, d.max_input_channels, d.max_output_channels, RATE,
                          pulse_name=d.pulse_name, is_default_input=d.name == "anchorvoice_mic") for d in PULSE]
    with pytest.raises(DeviceError, match="feedback loop"):
        resolve_devices(LiveConfig(output="speakers"), ListBackend(devices))


def test_recording_the_cable_live_plays_into_is_refused_but_the_real_mic_is_fine() -> None:
    with pytest.raises(DeviceError, match="VB-CABLE virtual cable live plays into.*feedback loop"):
        resolve_devices(LiveConfig(input="CABLE Output", output="virtual"), ListBackend(PULSE), OurMic("CABLE Input"))
    got = resolve_devices(LiveConfig(input="usb", output="virtual"), ListBackend(PULSE), OurMic("anchorvoice_sink"))
    assert got.input.name == "alsa_input.usb-mic" and got.output.name == "anchorvoice_sink"


# -- ranges -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, allowed", [
    ("block_ms", 100000.0, "between 1 and 1000 ms"), ("block_ms", 0.01, "between 1 and 1000 ms"),
    ("sample_rate", 1000, "between 8000 and 192000 Hz"), ("jitter_ms", 1e6, "at most 2000 ms"),
])
def test_out_of_range_live_numbers_are_refused_with_the_allowed_range(field: str, value: float, allowed: str) -> None:
    with pytest.raises(ConfigError, match=rf"live\.{field}.*{allowed}"):
        LiveConfig(**{field: value}).validate()  # type: ignore[arg-type]
