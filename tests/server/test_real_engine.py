"""The control API driving the real Engine (espeak-ng + DSP voice from real human speech)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from anchorvoice.engine.engine import Engine
from anchorvoice.engine.server.app import ControlServer, ServerConfig
from anchorvoice.engine.server.events import EventBus
from anchorvoice.engine.server.live_adapter import engine_live_factory
from anchorvoice.engine.server.methods import Controller, ControllerConfig
from anchorvoice.engine.server.protocol import ENGINE_ERROR
from tests.conftest import REPO, asterisk_clip
from tests.server.harness import TOKEN, CaptureSink, call, hello, next_event


@pytest.fixture
def voiced_engine(engine: Engine) -> Engine:
    engine.add_voice("anna", [asterisk_clip("demo-congrats")])
    return engine


def test_speak_through_the_api_plays_the_engine_voice(voiced_engine: Engine) -> None:
    sink = CaptureSink()

    async def go() -> None:
        bus = EventBus()
        ctl = Controller(voiced_engine, sink, ControllerConfig(pace=False),
                         live_factory=engine_live_factory(voiced_engine, bus), bus=bus)
        server = ControlServer(ctl, ServerConfig(port=0), token=TOKEN)
        await server.start()
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/?token={TOKEN}") as ws:
                await hello(ws)
                assert [v["name"] for v in (await call(ws, "voices.list"))["result"]] == ["anna"]
                plugins = (await call(ws, "anchorvoice.plugins.list", id=2))["result"]
                assert {"espeak", "dsp"} <= {p["name"] for p in plugins["plugins"]}
                assert (await call(ws, "voice.set", {"voice": "anna"}, id=3))["result"] == {"voice": "anna"}
                await call(ws, "subscribe", {"events": ["speaking.started", "speaking.stopped", "error"]}, id=4)
                await call(ws, "speak", {"text": "Thanks for the follow!"}, id=5)
                started = await next_event(ws, "speaking.started", timeout=60)
                assert started["text"] == "Thanks for the follow!" and started["voice"] == "anna"
                assert (await next_event(ws, "speaking.stopped", timeout=60))["interrupted"] is False
                status = (await call(ws, "status", id=6))["result"]
                assert status["speech"]["spoken"] == 1 and status["rtf"] is not None
                live = await call(ws, "live.start", id=7)
                if "error" in live:  # no sound card / virtual mic here: an engine error saying why
                    assert live["error"]["code"] == ENGINE_ERROR, live
                    assert len(live["error"]["message"]) > 20, live  # says what to fix (wording depends on the OS)
                else:
                    assert live["result"] == {"started": True}
                    assert (await call(ws, "live.stop", id=8))["result"] == {"stopped": True}
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(go(), 120))
    audio = sink.audio()
    assert sink.opened is not None and sink.opened[0] == 48000
    assert len(audio) / 48000 > 0.5 and float(np.sqrt(np.mean(audio**2))) > 0.01


@pytest.mark.slow
def test_serve_command_end_to_end(voiced_engine: Engine, tmp_path: Path) -> None:
    home = voiced_engine.config.home
    serve = "anchorvoice.engine.cli.serve"
    code = ("import sys; from anchorvoice.engine.cli import main as m\n"
            f"if {serve!r} not in m.COMMAND_MODULES: m.COMMAND_MODULES.append({serve!r})\n"
            "sys.exit(m.main(sys.argv[1:]))")
    env = dict(os.environ, ANCHORVOICE_PLUGINS="")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--home", str(home), "serve", "--port", "0", "--speech-output", "none",
         "--voice", "anna", "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("anchorvoice control API on ws://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" on ")[1].strip()
        token = (home / "control-token").read_text().strip()

        async def go() -> None:
            async with connect(f"{url}/?token={token}") as ws:
                await hello(ws)
                await call(ws, "subscribe", {"events": ["speaking.stopped"]})
                assert (await call(ws, "status", id=9))["result"]["voice"] == "anna"  # from --voice
                await call(ws, "speak", {"text": "Hello chat."}, id=2)
                assert (await next_event(ws, "speaking.stopped", timeout=60))["text"] == "Hello chat."
            async with connect(url) as ws:  # without the token
                assert json.loads(await ws.recv())["hello"]["auth"] is True
                assert (await call(ws, "status"))["error"]["code"] == -32001

        asyncio.run(asyncio.wait_for(go(), 90))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
