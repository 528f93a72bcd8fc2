"""The control API end to end through a private PulseAudio server: `speak` and `live.start` requests
come out of the anchorvoice virtual microphone.

Marked ``pulse`` and ``slow``; skipped only when the pulseaudio programs are missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from anchorvoice.audio_io import read_audio, write_audio
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.output_sinks import OutputConfig, output_sink
from anchorvoice.engine.server.app import ControlServer, ServerConfig
from anchorvoice.engine.server.events import EventBus
from anchorvoice.engine.server.live_adapter import engine_live_factory
from anchorvoice.engine.server.methods import Controller, ControllerConfig
from anchorvoice.streaming.backends.sounddevice_backend import SoundDeviceBackend
from anchorvoice.streaming.virtual_mic import VirtualMic
from tests.conftest import asterisk_clip
from tests.integration.pulse import PulseDaemon, private_pulse_with_mic
from tests.server.harness import TOKEN, call, hello, next_event

pytestmark = [pytest.mark.pulse, pytest.mark.slow]

RATE = 48000
MIC_SINK, MIC = "srv_mic_sink", "srv_mic"


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    yield from private_pulse_with_mic(tmp_path_factory.mktemp("pulse"), MIC_SINK, MIC, RATE)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def test_speak_and_live_reach_the_virtual_mic(pulse: PulseDaemon, engine: Engine, tmp_path: Path) -> None:
    engine.add_voice("anna", [asterisk_clip("demo-congrats")])
    speech = read_audio(asterisk_clip("demo-enterkeywords"), RATE)
    write_audio(tmp_path / "speech.wav", speech)
    backend = SoundDeviceBackend()
    backend.refresh()  # PortAudio probed ALSA before the daemon existed
    vm = VirtualMic(env=pulse.env)
    bus = EventBus()
    # the registered virtual_mic sink, as `serve --speech-output virtual` builds it (PULSE_SERVER points at
    # the private daemon; the refreshed PortAudio sees its devices)
    sink = output_sink(engine.plugins, OutputConfig(output="virtual", queue_ms=300))
    factory = engine_live_factory(engine, bus, live_overrides={"input": MIC, "jitter_ms": 80.0,
                                                                "input_queue_ms": 300.0},
                                  session_kwargs={"backend": backend, "virtual_mic": vm})
    recordings: dict[str, np.ndarray] = {}

    async def go() -> None:
        ctl = Controller(engine, sink, ControllerConfig(pace=False), live_factory=factory, bus=bus)
        server = ControlServer(ctl, ServerConfig(port=0), token=TOKEN)
        await server.start()
        loop = asyncio.get_running_loop()
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/?token={TOKEN}") as ws:
                await hello(ws)
                await call(ws, "voice.set", {"voice": "anna"})
                await call(ws, "subscribe", {"events": ["speaking.started", "speaking.stopped", "error"]}, id=2)
                vm.up()
                rec = pulse.record("anchorvoice_mic", tmp_path / "tts.wav")
                await asyncio.sleep(0.3)
                await call(ws, "speak", {"text": "Welcome to the stream, everyone."}, id=3)
                await next_event(ws, "speaking.started", timeout=60)
                await next_event(ws, "speaking.stopped", timeout=60)
                await asyncio.sleep(0.6)  # the device queue drains
                recordings["tts"] = PulseDaemon.stop_recording(rec, tmp_path / "tts.wav")

                live = await call(ws, "live.start", id=4)
                assert live["result"] == {"started": True}, live
                await asyncio.sleep(0.5)
                rec = pulse.record("anchorvoice_mic", tmp_path / "live.wav")
                await asyncio.sleep(0.3)
                await loop.run_in_executor(None, pulse.play, MIC_SINK, tmp_path / "speech.wav")
                await asyncio.sleep(0.5)
                recordings["live"] = PulseDaemon.stop_recording(rec, tmp_path / "live.wav")
                status = (await call(ws, "status", id=5))["result"]
                recordings["latency"] = np.array([status["latency_ms"]])
                assert status["live"] is True and status["live_stats"]["errors"] == 0
                assert (await call(ws, "live.stop", id=6))["result"] == {"stopped": True}
        finally:
            await server.close()
            vm.down()

    t0 = time.perf_counter()
    asyncio.run(asyncio.wait_for(go(), 240))
    assert time.perf_counter() - t0 < 240
    tts, live = recordings["tts"], recordings["live"]
    voiced_tts = np.count_nonzero(np.abs(tts) > 0.02) / RATE
    assert _rms(tts) > 0.005 and voiced_tts > 0.5, (_rms(tts), voiced_tts)  # about 2 s of speech
    # live: the converted speech is there for about as long as the dry speech is active (4.05 s vs 4.21 s
    # measured on a 2-core CI machine)
    active_live = np.count_nonzero(np.abs(live) > 0.02)
    active_dry = np.count_nonzero(np.abs(speech.samples) > 0.02)
    assert _rms(live) > 0.005 and active_live > 0.7 * active_dry, (active_live, active_dry)
    assert 0 < recordings["latency"][0] < 1000
