"""The bridge against OBS 29 / obs-websocket 5.1 semantics (as a real OBS showed them), through the fake.

Each test is one defect the real OBS showed: scene items numbered per scene, mute not synced at
connect, setup problems invisible to late clients, repeated degraded events, mute on a non-audio
source, shutdown without a close frame, unreadable created subtitles.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from anchorvoice.engine.server.methods import m_status
from anchorvoice.obs_bridge.bridge import BridgeConfig, ObsBridge
from anchorvoice.obs_bridge.obs import ObsClient, ObsConfig
from anchorvoice.obs_bridge.subtitles import SubtitleStyle
from tests.obs.fake_obs import FakeObs
from tests.obs.test_bridge import bridged, run, until
from tests.server.harness import call, hello, next_event, running_server


def test_speaking_item_is_found_by_name_in_the_current_scene() -> None:
    async def go() -> None:
        obs = FakeObs(program_scene="Main", scenes={"Main": []})
        obs.add_input("talking", "image_source", scene="Main")  # Main: talking = 1
        obs.add_input("webcam", "v4l2_input", scene="Other")  # Other: webcam = 1, talking = 2
        obs.add_item("Other", "talking")
        main, webcam, other = obs.item("Main", "talking"), obs.item("Other", "webcam"), obs.item("Other", "talking")
        assert main["sceneItemId"] == webcam["sceneItemId"] == 1  # numbered per scene, as real OBS does
        cfg = BridgeConfig(subtitle_source=None, speaking_item="talking", clear_after_s=0.05)
        async with bridged(obs, cfg) as (_, bus):
            bus.publish("speaking.started", {"text": "one"})
            await until(lambda: main["enabled"] is True)
            bus.publish("speaking.stopped", {"text": "one"})
            await until(lambda: main["enabled"] is False)
            await obs.switch_scene("Other")
            await until(lambda: other["enabled"] is False)  # the new scene's item follows the state at once
            bus.publish("speaking.started", {"text": "two"})
            await until(lambda: other["enabled"] is True)
            await obs.switch_scene("Main")  # switching while speaking: shown here, hidden there
            await until(lambda: main["enabled"] is True and other["enabled"] is False)
            bus.publish("speaking.stopped", {"text": "two"})
            await until(lambda: main["enabled"] is False)
            assert webcam["enabled"] is True  # never touched

    run(go())


def test_engine_mute_state_is_pushed_at_connect_and_reconnect() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("mic", "pulse_input_capture")
        obs.inputs["mic"]["muted"] = True  # saved muted in OBS; the engine starts unmuted
        cfg = BridgeConfig(subtitle_source=None, audio_source="mic")
        async with bridged(obs, cfg) as (bridge, bus):
            await until(lambda: obs.inputs["mic"]["muted"] is False)
            bus.publish("mute.changed", {"muted": True})
            await until(lambda: obs.inputs["mic"]["muted"] is True)
            await obs.stop()
            obs.inputs["mic"]["muted"] = False  # changed while the bridge was away
            await until(lambda: not bridge.client.connected.is_set())
            await obs.start()
            await until(lambda: obs.inputs["mic"]["muted"] is True)

    run(go())


def test_status_has_the_obs_part_and_late_subscribers_get_the_current_state() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("mic", "pulse_input_capture")
        cfg = BridgeConfig(subtitle_source="subs", audio_source="mic")
        async with bridged(obs, cfg) as (bridge, bus):
            ctl = SimpleNamespace(status=lambda: {"voice": None}, bus=bus)
            status = (await m_status(ctl, {}))["obs"]  # type: ignore[arg-type]
            assert status["connected"] is True and status["url"] == obs.url
            assert (status["obs_version"], status["websocket_version"]) == ("29.0.2", "5.1.0")
            assert status["scene"] == "Scene" and status["sources"] == {"mic": "found"}
            assert list(status["problems"]) == ["subtitles"] and "no text source" in status["problems"]["subtitles"]
            assert "no text source" in status["last_error"]
            late = bus.subscribe(["degraded", "obs.state"])  # subscribed after setup reported it
            first, second = late.get(), late.get()
            names = {(await first).name: 0, (await second).name: 0}
            assert set(names) == {"degraded", "obs.state"}
            bus.unsubscribe(late)
            only = bus.subscribe(["degraded"])
            ev = await asyncio.wait_for(only.get(), 1)
            assert ev.data == {"source": "obs", "feature": "subtitles", "message": ev.data["message"]}
            assert only.pending() == 0

    run(go())


def test_one_degraded_event_per_feature_state_change() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("subs", "text_ft2_source_v2")
        obs.add_input("mic", "pulse_input_capture")
        cfg = BridgeConfig(subtitle_source="subs", audio_source="mic", speaking_item="missing", clear_after_s=0.01)
        async with bridged(obs, cfg) as (bridge, bus):
            degraded = bus.subscribe(["degraded"])
            while degraded.pending():  # the replayed setup problem (the missing item)
                await degraded.get()
            for i in range(3):  # a permanently missing item: no new event per sentence
                bus.publish("speaking.started", {"text": f"s{i}"})
                bus.publish("speaking.stopped", {"text": f"s{i}"})
                await asyncio.sleep(0.05)
            assert degraded.pending() == 0 and "missing" in bridge.problems["speaking item"]
            del obs.inputs["mic"]  # mute fails now ...
            bus.publish("mute.changed", {"muted": True})
            ev = await asyncio.wait_for(degraded.get(), 2)
            assert ev.data["feature"] == "mute"
            del obs.inputs["subs"]  # ... and that does not hide a subtitle failure
            bus.publish("speaking.started", {"text": "again"})
            ev = await asyncio.wait_for(degraded.get(), 2)
            assert ev.data["feature"] == "subtitles"
            assert set(bridge.problems) == {"speaking item", "mute", "subtitles"}
            obs.add_input("mic", "pulse_input_capture")  # fixed: the feature's problem goes away
            bus.publish("mute.changed", {"muted": False})
            await until(lambda: "mute" not in bridge.problems)

    run(go())


def test_mute_is_never_sent_to_a_source_without_audio() -> None:
    async def go() -> None:
        obs = FakeObs()
        obs.add_input("mic", "text_ft2_source_v2")
        async with bridged(obs, BridgeConfig(subtitle_source=None, audio_source="mic")) as (bridge, bus):
            bus.publish("mute.changed", {"muted": True})
            await asyncio.sleep(0.1)
            assert obs.requests("SetInputMute") == []
            problem = bridge.problems["audio source"]
            assert "not an audio input capture" in problem and "Audio Input Capture" in problem
            assert "mute" not in bridge.problems

    run(go())


def test_stopping_the_client_sends_a_normal_close_frame() -> None:
    async def go() -> None:
        obs = FakeObs()
        await obs.start()
        client = ObsClient(ObsConfig(url=obs.url))
        task = asyncio.create_task(client.run())
        await asyncio.wait_for(client.connected.wait(), 5)
        task.cancel()  # what `serve` does when it stops
        await asyncio.gather(task, return_exceptions=True)
        await until(lambda: obs.client_closes != [], 2)
        assert obs.client_closes == [1000]
        await obs.stop()

    run(go())


def test_created_subtitle_source_fits_the_canvas() -> None:
    async def go() -> None:
        obs = FakeObs(video=(640, 360))
        async with bridged(obs, BridgeConfig(subtitle_source="subs", create_subtitle_source=True)) as (bridge, _):
            settings = obs.requests("CreateInput")[0]["inputSettings"]
            assert settings["font"]["size"] == 30 and settings["word_wrap"] is True
            assert settings["custom_width"] == 576
            item = obs.item("Scene", "subs")["sceneItemId"]
            assert obs.transforms[("Scene", item)] == {"alignment": 8, "positionX": 320.0, "positionY": 342.0}
            assert bridge.sources == {"subs": "created"}
        obs = FakeObs(platform="win32")
        style = SubtitleStyle(font="Arial", font_size=64, width=0.5)
        cfg = BridgeConfig(subtitle_source="subs", create_subtitle_source=True, platform="win32", subtitle_style=style)
        async with bridged(obs, cfg):
            settings = obs.requests("CreateInput")[0]["inputSettings"]
            assert settings["font"] == {"face": "Arial", "size": 64}
            assert settings["extents"] and settings["extents_wrap"] and settings["extents_cx"] == 960

    run(go())


def test_a_client_sees_obs_state_in_status_and_replayed_on_subscribe() -> None:
    async def go() -> None:
        obs = FakeObs()
        await obs.start()
        async with running_server() as h:
            bus = h.server.controller.bus
            client = ObsClient(ObsConfig(url=obs.url, reconnect_initial_s=0.05))
            bridge = ObsBridge(client, bus, BridgeConfig(subtitle_source="subs"))
            tasks = [asyncio.create_task(client.run()), asyncio.create_task(bridge.run())]
            await until(lambda: "subtitles" in bridge.problems)
            async with h.client() as ws:
                await hello(ws)
                part = (await call(ws, "status"))["result"]["obs"]
                assert part["connected"] is True and "no text source" in part["problems"]["subtitles"]
                await call(ws, "subscribe", {"events": ["levels"]}, id=2)
                await call(ws, "subscribe", {"events": ["degraded"]}, id=3)  # added later: replayed too
                ev = await next_event(ws, "degraded")
                assert ev["feature"] == "subtitles" and "create_subtitle_source" in ev["message"]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await obs.stop()

    run(go())
