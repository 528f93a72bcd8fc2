"""`anchorvoice live` refuses what cannot work before it loads a model: wrong device names, a feedback loop
through our own virtual microphone, out-of-range numbers."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from anchorvoice.engine.cli import live as live_cli
from anchorvoice.engine.cli.main import build_parser
from anchorvoice.engine.engine import Engine
from anchorvoice.errors import ConfigError, DeviceError
from anchorvoice.streaming import live_session
from anchorvoice.streaming.backends.base import AudioBackend, DuplexCallback, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo
from tests.conftest import asterisk_clip

DEVICES = [
    DeviceInfo("alsa_input.usb-mic", "PulseAudio", 1, 0, 48000, pulse_name="alsa_input.usb-mic",
               description="USB Microphone", is_default_input=True),
    DeviceInfo("anchorvoice_mic", "PulseAudio", 1, 0, 48000, pulse_name="anchorvoice_mic",
               description="anchorvoice Virtual Mic"),
    DeviceInfo("anchorvoice_sink.monitor", "PulseAudio", 1, 0, 48000, pulse_name="anchorvoice_sink.monitor"),
    DeviceInfo("speakers", "PulseAudio", 0, 2, 48000, pulse_name="speakers", is_default_output=True),
]


class Devices(AudioBackend):
    name = "fake"

    def devices(self) -> list[DeviceInfo]:
        return DEVICES

    def open_stream(self, spec: StreamSpec, callback: DuplexCallback) -> LiveStream:
        raise AssertionError("nothing may be opened")


@pytest.fixture
def no_models(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A home with voice 'anna', the fake devices above, and a record of every voice load (there must be none)."""
    engine.add_voice("anna", [asterisk_clip("demo-congrats")])
    monkeypatch.setenv("ANCHORVOICE_HOME", str(engine.voices.home))
    monkeypatch.setattr(live_session, "get_backend", lambda name="sounddevice": Devices())
    loads: list[str] = []

    def pipeline(self: Engine, preset: str, voice: str | None, *a: Any, **k: Any) -> Any:
        loads.append(str(voice))
        raise AssertionError("the voice was loaded before the devices were checked")

    monkeypatch.setattr(Engine, "pipeline", pipeline)
    return loads


def _live(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["live", "--voice", "anna", *extra])


@pytest.mark.parametrize("flag, name, message", [
    ("--input", "nosuchmic", r"no input device matches 'nosuchmic'"),
    ("--output", "headfones", r"no output device matches 'headfones'"),
    ("--monitor", "headfones", r"no output device matches 'headfones'"),
    ("--input", "missing.wav", r"input file 'missing.wav' not found"),
])
def test_a_wrong_device_name_is_refused_before_the_voice_loads(no_models: list[str], flag: str, name: str,
                                                                message: str) -> None:
    extra = [flag, name] if flag != "--monitor" else [flag, name, "--output", "speakers"]
    with pytest.raises(DeviceError, match=message):
        live_cli.run_live(_live(*extra, "--duration", "1"))
    assert no_models == []


@pytest.mark.parametrize("name", ["anchorvoice_mic", "anchorvoice_sink.monitor"])
def test_our_virtual_mic_as_input_is_refused_as_a_feedback_loop(no_models: list[str], name: str) -> None:
    with pytest.raises(DeviceError, match=r"feedback loop.*pick the real microphone with --input"):
        live_cli.run_live(_live("--input", name, "--output", "speakers"))
    assert no_models == []


@pytest.mark.parametrize("extra, message", [
    (["--block-ms", "100000"], r"block_ms\] must be between 1 and 1000 ms, got 100000"),
    (["--block-ms", "0"], r"block_ms\] must be between 1 and 1000 ms"),
    (["--duration", "-1"], r"--duration must be a number of seconds above 0"),
    (["--duration", "nan"], r"--duration must be a number of seconds above 0"),
])
def test_out_of_range_numbers_are_refused_with_the_range_before_anything_loads(
        monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str) -> None:
    def no_engine(args: argparse.Namespace) -> Engine:
        raise AssertionError("the engine was built before the options were checked")

    monkeypatch.setattr(live_cli, "make_engine", no_engine)
    with pytest.raises(ConfigError, match=message):
        live_cli.run_live(_live(*extra))
