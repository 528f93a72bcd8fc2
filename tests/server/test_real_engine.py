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
from anchorvoice.engine.server.live_adapter import EngineLive, engine_live_factory
from anchorvoice.engine.server.methods import Controller, ControllerConfig
from anchorvoice.engine.server.protocol import ENGINE_ERROR, INVALID_PARAMS
from tests.conftest import REPO, asterisk_clip
from tests.server.harness import TOKEN, CaptureSink, FakeLive, call, hello, next_event


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


class _CheckedFakeLive:
    """The real factory's parameter check in front of fake sessions (no sound device needed)."""

    def __init__(self, engine: Engine, bus: EventBus) -> None:
        self.check = engine_live_factory(engine, bus).check
        self.lives: list[FakeLive] = []

    def __call__(self, voice: str | None, params: dict) -> FakeLive:
        self.lives.append(FakeLive(voice, params))
        return self.lives[-1]


@pytest.mark.parametrize("live_on", [False, True])
def test_bad_effects_are_refused_on_set_and_change_nothing(engine: Engine, live_on: bool) -> None:
    async def go() -> None:
        bus = EventBus()
        factory = _CheckedFakeLive(engine, bus)
        ctl = Controller(engine, CaptureSink(), ControllerConfig(pace=False), live_factory=factory, bus=bus)
        server = ControlServer(ctl, ServerConfig(port=0), token=TOKEN)
        await server.start()
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/?token={TOKEN}") as ws:
                await hello(ws)
                ok = await call(ws, "params.set", {"effects": {"limiter": {"ceiling_db": -3}}})
                assert ok["result"]["effects"] == {"limiter": {"ceiling_db": -3.0}}  # coerced to the field's type
                if live_on:
                    assert (await call(ws, "live.start", id=2))["result"] == {"started": True}
                before = (await call(ws, "params.get", id=3))["result"]
                for i, (effects, says) in enumerate([
                    ({"reverb": {}}, "no effect 'reverb' in the 'vc' preset (effects: limiter)"),
                    ({"limiter": {"nope": 1}}, "unknown parameter 'nope'"),
                    ({"limiter": {"ceiling_db": "loud"}}, "expected a number"),
                    ({"limiter": {"ceiling_db": 3}}, "ceiling_db must be <= 0 dBFS"),  # checked by the effect
                ]):
                    bad = await call(ws, "params.set", {"pitch": 2, "effects": effects}, id=10 + i)
                    assert bad["error"]["code"] == INVALID_PARAMS and says in bad["error"]["message"], bad
                    assert (await call(ws, "params.get", id=20 + i))["result"] == before
                if live_on:
                    assert factory.lives[0].history == []  # the running session was never touched
                else:  # live starts with the parameters that were accepted
                    assert (await call(ws, "live.start", id=30))["result"] == {"started": True}
                    assert factory.lives[0].params["effects"] == {"limiter": {"ceiling_db": -3.0}}
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_live_effects_fall_back_to_the_preset_when_a_value_is_dropped(engine: Engine) -> None:
    pipe = engine.pipeline("vc", None)  # the engine caches it: one live run's values must not leak into the next
    live = EngineLive(engine, None, {}, EventBus())
    live._pipe = pipe
    live.set_params({"effects": {"limiter": {"ceiling_db": -6.0}}})
    assert pipe.effects[0].config.ceiling_db == -6.0
    live.set_params({"effects": {}})
    assert pipe.effects[0].config.ceiling_db == -1.0  # the preset's (LimiterConfig default)


def test_speak_in_a_language_the_voice_cannot_speak_is_refused(engine: Engine) -> None:
    async def go() -> None:
        ctl = Controller(engine, CaptureSink(), ControllerConfig(pace=False))
        server = ControlServer(ctl, ServerConfig(port=0), token=TOKEN)
        await server.start()
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/?token={TOKEN}") as ws:
                await hello(ws)
                await call(ws, "subscribe", {"events": ["error"]})
                bad = await call(ws, "speak", {"text": "hi", "language": "tlh"}, id=2)
                assert bad["error"]["code"] == INVALID_PARAMS, bad
                assert "cannot speak language 'tlh'" in bad["error"]["message"]
                assert ctl.speech.pending == 0 and ctl.speech.stats["failed"] == 0
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(go(), 60))


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
