"""LiveSession with a fake backend: where 'virtual' plays, and the one gc.freeze (the runner's)."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.base import AudioBackend, DuplexCallback, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo, Direction
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.live_session import LiveSession
from anchorvoice.streaming.virtual_mic import VirtualMic

RATE = 48000
DEVICES = [DeviceInfo("mic", "Fake", 1, 0, RATE, index=0), DeviceInfo("speaker", "Fake", 0, 2, RATE, index=1),
           DeviceInfo("cable in", "Fake", 0, 2, RATE, index=2)]


class QuietStream(LiveStream):
    """Opens and starts nothing: the session's own logic is what is tested."""

    def _open(self, direction: Direction, device: DeviceInfo, role: str) -> Any:
        return role

    def _latency(self, handle: Any, direction: Direction) -> float:
        return 0.0

    def _start(self, handle: Any) -> None:
        pass

    def _stop(self, handle: Any) -> None:
        pass

    def _close(self, handle: Any) -> None:
        pass

    def start(self) -> None:  # no device threads, so nothing to wait for
        self.open()
        self._running = True


class FakeBackend(AudioBackend):
    name = "fake"

    def __init__(self) -> None:
        self.specs: list[StreamSpec] = []

    def devices(self) -> list[DeviceInfo]:
        return DEVICES

    def open_stream(self, spec: StreamSpec, callback: DuplexCallback) -> LiveStream:
        self.specs.append(spec)
        return QuietStream(spec, callback)


class CableMic(VirtualMic):
    """A virtual microphone whose one lookup names a fixed device (or fails with a fix)."""

    def __init__(self, device: str | None) -> None:
        super().__init__(platform="win32", list_devices=lambda: [])
        self.device = device

    def play_device(self) -> str:
        if self.device is None:
            raise DeviceError("virtual microphone unavailable: none here; install VB-CABLE")
        return self.device


def _session(cfg: LiveConfig, mic: VirtualMic | None = None) -> tuple[LiveSession, FakeBackend]:
    backend = FakeBackend()
    return LiveSession(cfg, lambda f: f, backend=backend, virtual_mic=mic or CableMic("cable in")), backend


def test_virtual_output_plays_into_what_the_virtual_mic_lookup_names() -> None:
    session, backend = _session(LiveConfig(output="virtual"))
    session.start()
    try:
        assert session.output_device is not None and session.output_device.name == "cable in"
        assert backend.specs[0].output is session.output_device
    finally:
        session.stop()


def test_no_virtual_mic_is_the_lookups_error_with_its_fix() -> None:
    session, backend = _session(LiveConfig(output="virtual"), CableMic(None))
    with pytest.raises(DeviceError, match="install VB-CABLE"):
        session.start()
    assert backend.specs == []  # nothing opened, no fallback to the speakers


def test_gc_is_frozen_exactly_once_while_running_and_unfrozen_after_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    collections: list[int] = []
    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(1) or real_collect(*a))
    session, _ = _session(LiveConfig(output="speaker"))
    session.start()
    try:
        assert gc.get_freeze_count() > 0
        assert len(collections) == 1  # one collect + freeze: the runner's start
    finally:
        session.stop()
    assert gc.get_freeze_count() == 0
    session.stop()  # idempotent
    assert gc.get_freeze_count() == 0


def test_freeze_gc_off_leaves_the_gc_alone() -> None:
    session, _ = _session(LiveConfig(output="speaker", freeze_gc=False))
    session.start()
    try:
        assert gc.get_freeze_count() == 0
    finally:
        session.stop()
