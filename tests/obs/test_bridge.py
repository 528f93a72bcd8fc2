"""OBS bridge on the wire: engine events -> requests the fake OBS logs and applies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anchorvoice.engine.server.events import EventBus
from anchorvoice.obs_bridge.bridge import BridgeConfig, ObsBridge
from anchorvoice.obs_bridge.obs import ObsClient, ObsConfig
from anchorvoice.obs_bridge.subtitles import fit_line
from tests.obs.fake_obs import FakeObs


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


@asynccontextmanager
async def bridged(
    obs: FakeObs, config: BridgeConfig, encoding: str = "json"
) -> AsyncIterator[tuple[ObsBridge, EventBus]]:
    await obs.start()
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    client = ObsClient(ObsConfig(url=obs.url, password=obs.password, encoding=encoding,  # type: ignore[arg-type]
                                 reconnect_initial_s=0.05, reconnect_max_s=0.1))
    bridge = ObsBridge(client, bus, config)
    tasks = [asyncio.create_task(client.run()), asyncio.create_task(bridge.run())]
    await asyncio.wait_for(client.connected.wait(), 5)
    await asyncio.sleep(0.1)  # setup requests after connect
    try:
        yield bridge, bus
    finally:
        for t in tasks:
            t.cancel()
        await client.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await obs.stop()


def texts(obs: FakeObs, source: str) -> list[str]:
    return [d["inputSettings"]["text"] for d in obs.requests("SetInputSettings") if d["inputName"] == source]


async def until(cond: Any, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_subtitles_follow_speech_in_order_and_clear_after() -> None:
    async def go() -> None:
        obs = FakeObs(password="pw")
        obs.add_input("subs", "text_ft2_source_v2", {"text": "old", "font": {"size": 48}})
        async with bridged(obs, BridgeConfig(subtitle_source="subs", clear_after_s=0.15), "msgpack") as (_, bus):
            assert texts(obs, "subs") == [""]  # cleared on connect
            sentences = ["First sentence.", "Second one!", "And the third?"]
            for s in sentences:
                bus.publish("speaking.started", {"id": 1, "text": s})
                await asyncio.sleep(0.03)
                bus.publish("speaking.stopped", {"id": 1, "text": s, "interrupted": False})
            await until(lambda: texts(obs, "subs")[-1:] == [""] and len(texts(obs, "subs")) == 5)
            assert texts(obs, "subs") == ["", *sentences, ""]  # no clear between back-to-back sentences
            assert obs.shown_settings("subs") == {"text": "", "font": {"size": 48}}  # overlay kept the font

    run(go())


def test_missing_text_source_is_reported_or_created() -> None:
    async def go() -> None:
        obs = FakeObs()
        async with bridged(obs, BridgeConfig(subtitle_source="subs")) as (bridge, bus):
            assert "no text source named 'subs'" in bridge.problems["subtitles"]
            assert "create_subtitle_source = true" in bridge.problems["subtitles"]  # the real key
            assert not obs.requests("CreateInput")
        obs = FakeObs(platform="win32")
        obs.scenes["Live"] = []
        obs.program_scene = "Live"
        cfg = BridgeConfig(subtitle_source="subs", create_subtitle_source=True, platform="win32")
        async with bridged(obs, cfg) as (bridge, bus):
            assert bridge.problems == {}
            created = obs.requests("CreateInput")[0]
            assert created["sceneName"] == "Live" and created["inputKind"] == "text_gdiplus_v3"
            bus.publish("speaking.started", {"text": "hello"})
            await until(lambda: obs.inputs["subs"]["settings"].get("text") == "hello")
        obs = FakeObs()
        obs.add_input("subs", "image_source")
        async with bridged(obs, BridgeConfig(subtitle_source="subs")) as (bridge, _):
            assert "not a text source" in bridge.problems["subtitles"]

    run(go())


def test_audio_source_created_fixed_and_muted() -> None:
    async def go() -> None:
        obs = FakeObs()
        cfg = BridgeConfig(subtitle_source=None, audio_source="anchorvoice mic", mic_device="anchorvoice_mic",
                           create_audio_source=True, platform="linux")
        async with bridged(obs, cfg) as (_, bus):
            created = obs.requests("CreateInput")[0]
            assert created["inputKind"] == "pulse_input_capture"
            assert created["inputSettings"] == {"device_id": "anchorvoice_mic"}
            bus.publish("mute.changed", {"muted": True})
            await until(lambda: obs.inputs["anchorvoice mic"]["muted"] is True)
            bus.publish("mute.changed", {"muted": False})
            await until(lambda: obs.inputs["anchorvoice mic"]["muted"] is False)
        obs = FakeObs(platform="win32")
        obs.add_input("anchorvoice mic", "wasapi_input_capture", {"device_id": "default"})
        cfg = BridgeConfig(subtitle_source=None, audio_source="anchorvoice mic", mic_device="CABLE Output")
        async with bridged(obs, cfg):
            assert obs.inputs["anchorvoice mic"]["settings"]["device_id"] == "CABLE Output"
            assert not obs.requests("CreateInput")
        obs = FakeObs()
        async with bridged(obs, BridgeConfig(subtitle_source=None, audio_source="nope")) as (bridge, _):
            assert "no audio source named 'nope'" in bridge.problems["audio source"]

    run(go())


def test_speaking_item_shown_while_speaking() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("subs", "text_ft2_source_v2")
        obs.add_input("talking", "image_source")
        item = obs.scenes["Scene"][-1]
        async with bridged(obs, BridgeConfig(subtitle_source="subs", speaking_item="talking",
                                             clear_after_s=0.05)) as (_, bus):
            assert item["enabled"] is False  # hidden at setup: nothing is being said
            bus.publish("speaking.started", {"text": "hi"})
            await until(lambda: item["enabled"] is True)
            bus.publish("speaking.stopped", {"text": "hi"})
            await until(lambda: item["enabled"] is False)

    run(go())


def test_obs_restart_degrades_then_recovers_without_blocking_the_bus() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("subs", "text_ft2_source_v2")
        async with bridged(obs, BridgeConfig(subtitle_source="subs", clear_after_s=5)) as (bridge, bus):
            degraded = bus.subscribe(["degraded"])
            await obs.stop()
            await until(lambda: not bridge.client.connected.is_set())
            t0 = asyncio.get_running_loop().time()
            for i in range(500):  # publishing never waits for OBS
                bus.publish("speaking.started", {"text": f"while down {i}"})
            assert asyncio.get_running_loop().time() - t0 < 0.5
            ev = await asyncio.wait_for(degraded.get(), 5)
            assert ev.data["source"] == "obs" and ev.data["feature"] == "connection"
            assert "reconnecting" in ev.data["message"]
            await obs.start()
            await until(lambda: bridge.client.connected.is_set())
            # after reconnect the text source is checked again and shows the current sentence
            await until(lambda: obs.inputs["subs"]["settings"].get("text") == "while down 499")
            bus.publish("speaking.started", {"text": "back"})
            await until(lambda: obs.inputs["subs"]["settings"].get("text") == "back")
            assert degraded.pending() == 0  # one report per outage, not one per dropped update

    run(go())


def test_fit_line() -> None:
    assert fit_line("  a \n b  ", 10) == "a b"
    long = " ".join(f"w{i}" for i in range(100))
    out = fit_line(long, 20)
    assert len(out) == 20 and out.endswith("w99") and out.startswith("…")
