"""VTube Studio mouth control against the fake endpoint: approval once, token kept, injection rate."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from anchorvoice.engine.server.events import EventBus
from anchorvoice.errors import BridgeAuthError
from anchorvoice.obs_bridge.vtube import VTubeConfig, VTubeStudio, mouth_open
from tests.obs.fake_vtube import FakeVTube


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def test_mouth_mapping() -> None:
    assert mouth_open(-80, -50, -10) == 0.0
    assert mouth_open(-30, -50, -10) == pytest.approx(0.5)
    assert mouth_open(0, -50, -10) == 1.0
    with pytest.raises(ValueError):
        mouth_open(-30, -10, -50)


def _vts(fake: FakeVTube, tmp_path, bus: EventBus, **kw) -> VTubeStudio:
    return VTubeStudio(VTubeConfig(url=fake.url, token_file=tmp_path / "vts-token", reconnect_initial_s=0.05,
                                   reconnect_max_s=0.1, **kw), bus)


def test_token_approved_once_stored_and_reused(tmp_path) -> None:
    async def go() -> None:
        fake = FakeVTube()
        await fake.start()
        bus = EventBus()
        for _round in range(2):
            vts = _vts(fake, tmp_path, bus)
            task = asyncio.create_task(vts.run())
            await asyncio.wait_for(vts.authenticated.wait(), 5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert fake.token_requests == 1 and fake.auth_requests == [True, True]
        assert vts.load_token() in fake.tokens
        if os.name == "posix":
            assert stat.S_IMODE((tmp_path / "vts-token").stat().st_mode) == 0o600
        fake.tokens.clear()  # the user revoked anchorvoice in VTube Studio
        vts = _vts(fake, tmp_path, bus)
        task = asyncio.create_task(vts.run())
        await asyncio.wait_for(vts.authenticated.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert fake.token_requests == 2 and fake.auth_requests[-2:] == [False, True]
        assert vts.load_token() in fake.tokens
        await fake.stop()

    run(go())


def test_denied_approval_stops_with_a_clear_error(tmp_path) -> None:
    async def go() -> None:
        fake = FakeVTube(approve=False)
        await fake.start()
        bus = EventBus()
        degraded = bus.subscribe(["degraded"])
        with pytest.raises(BridgeAuthError, match="allow anchorvoice"):
            await _vts(fake, tmp_path, bus).run()
        assert fake.token_requests == 1 and fake.errors == [50]
        assert (await degraded.get()).data["source"] == "vtube_studio"
        await fake.stop()

    run(go())


def test_mouth_follows_levels_and_is_resent_at_least_once_a_second(tmp_path) -> None:
    async def go() -> None:
        fake = FakeVTube()
        await fake.start()
        bus = EventBus()
        vts = _vts(fake, tmp_path, bus, send_interval_s=0.1, stale_s=0.3)
        task = asyncio.create_task(vts.run())
        await asyncio.wait_for(vts.authenticated.wait(), 5)
        for _ in range(10):  # 0.5 s of loud speech at the 20/s level rate
            bus.publish("levels", {"source": "tts", "rms_db": -12.0, "peak_db": -3.0})
            await asyncio.sleep(0.05)
        loud = [v for _, _, v in fake.injections[-3:]]
        bus.publish("speaking.stopped", {"text": "x"})
        await asyncio.sleep(1.5)  # silence, no level events at all: values must keep coming
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert all(v == pytest.approx(1.0) for v in loud)
        times = [t for t, pid, _ in fake.injections if pid == "MouthOpen"]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(times) >= 10 and max(gaps) < 0.9  # VTube Studio drops values after ~1 s
        assert fake.injections[-1][2] == 0.0 and fake.errors == []
        await fake.stop()

    run(go())


def test_reconnects_when_vtube_studio_restarts(tmp_path) -> None:
    async def go() -> None:
        fake = FakeVTube()
        await fake.start()
        vts = _vts(fake, tmp_path, EventBus())
        task = asyncio.create_task(vts.run())
        await asyncio.wait_for(vts.authenticated.wait(), 5)
        await fake.stop()
        await asyncio.sleep(0.3)
        assert not vts.authenticated.is_set() and vts.last_error
        before = len(fake.injections)
        await fake.start()
        await asyncio.wait_for(vts.authenticated.wait(), 5)
        await asyncio.sleep(0.3)
        assert len(fake.injections) > before and fake.token_requests == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()

    run(go())
