"""`anchorvoice serve` with the OBS bridge against a real OBS Studio (29.x, obs-websocket 5.x) under Xvfb.

Runs when ``obs``, ``Xvfb`` and PulseAudio are installed (``make test`` installs them as root) and
skips, saying why, when they are not or OBS cannot start. Everything runs in a temporary folder:
a private PulseAudio, a private OBS HOME, the engine's home; every process is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from anchorvoice.engine.engine import Engine
from tests.conftest import asterisk_clip
from tests.integration.pulse import PulseDaemon
from tests.obs.real_obs import ObsProbe, RealObs, free_port, missing_programs, stop_pid
from tests.server.harness import call, hello

REPO = Path(__file__).resolve().parents[2]
SCENE, OTHER = "Scene", "Other"


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not in {timeout:g} s: {what}"
        await asyncio.sleep(0.05)


def serve_toml(obs: RealObs) -> str:
    return f"""
[speech]
output = "none"

[obs]
enabled = true

[obs.connection]
url = "{obs.url}"
password = "{obs.password}"
reconnect_initial_s = 0.2
reconnect_max_s = 0.5

[obs.bridge]
subtitle_source = "anchorvoice subtitles"
create_subtitle_source = true
clear_after_s = 0.5
audio_source = "anchorvoice mic"
mic_device = "anchorvoice_mic"
create_audio_source = true
speaking_item = "talking"
"""


@pytest.mark.slow
def test_serve_drives_a_real_obs(engine: Engine, tmp_path: Path) -> None:
    missing = missing_programs()
    if missing or not PulseDaemon.available():
        pytest.skip(f"real OBS test needs obs, Xvfb and PulseAudio (missing: {missing or 'pulseaudio'}); "
                    "`make test` installs them as root")
    pulse = PulseDaemon(tmp_path / "pulse")
    obs = RealObs(tmp_path, {})
    serve: subprocess.Popen[str] | None = None
    try:
        try:
            pulse.start()
            obs.base_env = pulse.env
            obs.start_xvfb()
            obs.start_obs()
        except RuntimeError as exc:
            pytest.skip(f"OBS cannot start here: {exc}")
        asyncio.run(asyncio.wait_for(prepare_scenes(obs), 20))
        (tmp_path / "server.toml").write_text(serve_toml(obs))
        engine.add_voice("anna", [asterisk_clip("demo-congrats")])
        home = engine.config.home
        serve = subprocess.Popen(
            [sys.executable, "-m", "anchorvoice.engine.cli.main", "--home", str(home), "serve", "--config",
             str(tmp_path / "server.toml"), "--port", str(free_port()), "--voice", "anna"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=dict(pulse.env, ANCHORVOICE_PLUGINS=""),
        )
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert line.startswith("anchorvoice control API on ws://"), line + serve.stderr.read()  # type: ignore[union-attr]
        url = line.split(" on ")[1].strip()
        token = (home / "control-token").read_text().strip()
        asyncio.run(asyncio.wait_for(drive(obs, f"{url}/?token={token}"), 50))
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(15) == 0
        time.sleep(0.3)
        closes = [ln for ln in obs.log_tail(20000).splitlines() if "has disconnected with code" in ln]
        assert closes and "code `1000`" in closes[-1], closes  # a close frame, not 1006 "End of File"
    finally:
        stop_pid(serve)
        obs.stop()
        pulse.stop()


async def prepare_scenes(obs: RealObs) -> None:
    """Scene: the speaking item "talking" (id 1). Other: a "webcam" (id 1) and "talking" (id 2)."""
    async with ObsProbe(obs.url, obs.password) as p:
        await p.call("CreateInput", {"sceneName": SCENE, "inputName": "talking", "inputKind": "color_source_v3"})
        await p.call("CreateScene", {"sceneName": OTHER})
        await p.call("CreateInput", {"sceneName": OTHER, "inputName": "webcam", "inputKind": "color_source_v3"})
        await p.call("CreateSceneItem", {"sceneName": OTHER, "sourceName": "talking"})


async def drive(obs: RealObs, url: str) -> None:
    async with connect(url) as ws, ObsProbe(obs.url, obs.password) as p:
        await hello(ws)

        async def status() -> dict[str, Any]:
            return dict((await call(ws, "status", id=100))["result"]["obs"])

        async def text() -> str | None:
            data = await p.try_call("GetInputSettings", {"inputName": "anchorvoice subtitles"})
            return None if data is None else str(data["inputSettings"].get("text", ""))

        async def enabled(scene: str, name: str) -> bool:
            item = (await p.call("GetSceneItemId", {"sceneName": scene, "sourceName": name}))["sceneItemId"]
            return bool((await p.call("GetSceneItemEnabled", {"sceneName": scene, "sceneItemId": item}))
                        ["sceneItemEnabled"])

        async def muted() -> bool:
            return bool((await p.call("GetInputMute", {"inputName": "anchorvoice mic"}))["inputMuted"])

        st = await until(lambda: _ready(status), what="the bridge connected and set up")
        assert st["obs_version"].startswith(("29.", "30.", "31.")) and st["websocket_version"].startswith("5.")
        assert st["problems"] == {}, st
        mic = await p.call("GetInputSettings", {"inputName": "anchorvoice mic"})
        assert mic["inputKind"] == "pulse_input_capture" and mic["inputSettings"]["device_id"] == "anchorvoice_mic"
        subs = await p.call("GetInputSettings", {"inputName": "anchorvoice subtitles"})
        assert subs["inputSettings"]["word_wrap"] is True and subs["inputSettings"]["font"]["size"] < 256

        # speech: subtitle and speaking item follow it
        await call(ws, "subscribe", {"events": ["error", "speaking.started"]}, id=6)
        spoken = await call(ws, "speak", {"text": "First sentence for the stream."}, id=2)
        assert "result" in spoken, spoken
        first = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert first["event"] == "speaking.started", first
        await until(lambda: _eq(text, "First sentence for the stream."), what="subtitle shown")
        await until(lambda: enabled(SCENE, "talking"), what="speaking item shown")  # right after the subtitle
        await until(lambda: _eq(text, ""), what="subtitle cleared")
        await until(lambda: _not(enabled(SCENE, "talking")), what="speaking item hidden")

        # mute follows the engine
        assert await muted() is False
        await call(ws, "mute", {"muted": True}, id=3)
        await until(muted, what="OBS source muted")
        await call(ws, "mute", {"muted": False}, id=4)
        await until(lambda: _not(muted()), what="OBS source unmuted")

        # defect 1: after a scene switch the other scene's item with the same id (the webcam) is left alone
        await p.call("SetCurrentProgramScene", {"sceneName": OTHER})
        await until(lambda: _scene_is(status, OTHER), what="bridge saw the scene switch")
        assert "result" in await call(ws, "speak", {"text": "Second sentence."}, id=5)
        await until(lambda: enabled(OTHER, "talking"), what="speaking item shown in the other scene")
        assert await enabled(OTHER, "webcam")
        await until(lambda: _not(enabled(OTHER, "talking")), what="speaking item hidden in the other scene")
        assert await enabled(OTHER, "webcam")

    # OBS crashes and comes back: the bridge reconnects and sets everything up again
    obs.kill_obs()
    async with connect(url) as ws:
        await hello(ws)
        st = await until(lambda: _down(ws), what="bridge noticed OBS is gone")
        assert "connection" in st["problems"]
        obs.start_obs()
        st = await until(lambda: _ready(lambda: _status(ws)), timeout=15, what="bridge reconnected")
        async with ObsProbe(obs.url, obs.password) as p:
            assert await p.try_call("GetInputSettings", {"inputName": "anchorvoice subtitles"}) is not None


async def _status(ws: Any) -> dict[str, Any]:
    return dict((await call(ws, "status", id=101))["result"]["obs"])


async def _down(ws: Any) -> dict[str, Any] | None:
    st = await _status(ws)
    return None if st["connected"] else st


async def _ready(status: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | None:
    st = await status()
    ready = st["connected"] and st["obs_version"] and {"anchorvoice subtitles", "anchorvoice mic"} <= set(st["sources"])
    return st if ready else None


async def _eq(get: Callable[[], Awaitable[Any]], want: Any) -> bool:
    return bool(await get() == want)


async def _not(value: Awaitable[Any]) -> bool:
    return not await value


async def _scene_is(status: Callable[[], Awaitable[dict[str, Any]]], scene: str) -> bool:
    return bool((await status())["scene"] == scene)

