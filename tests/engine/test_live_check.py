"""The one live builder measures the converter first and refuses, with the RTF, when it cannot keep up:
for `anchorvoice live` and for the control server's live conversion alike."""

from __future__ import annotations

import argparse

import pytest

from anchorvoice.engine import live
from anchorvoice.engine.cli import live as live_cli
from anchorvoice.engine.cli.main import build_parser
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.server.events import EventBus
from anchorvoice.engine.server.live_adapter import EngineLive
from anchorvoice.errors import ConfigError, DeviceError
from tests.conftest import asterisk_clip


def test_measure_rtf_times_real_blocks(engine: Engine) -> None:
    dsp = engine.plugins.get("voice_converter", "dsp")()
    dsp.config.pitch_semitones, dsp.config.formant_ratio = 2.0, 1.0
    rtf = live.measure_rtf(dsp, block_ms=10.0, seconds=0.5)  # type: ignore[arg-type]
    assert 0.0 < rtf < 5.0


@pytest.fixture
def slow(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """An engine with voice 'anna' whose converter measures RTF 1.7."""
    engine.add_voice("anna", [asterisk_clip("demo-congrats")])
    monkeypatch.setenv("ANCHORVOICE_HOME", str(engine.voices.home))
    monkeypatch.setattr(live, "measure_rtf", lambda conv, block_ms, seconds=2.0: 1.7)
    return engine


def files() -> dict[str, str]:
    """Live overrides for ends that need no sound card (devices are resolved before the voice loads)."""
    return {"input": str(asterisk_clip("demo-congrats")), "output": "null"}


def test_live_refuses_a_converter_slower_than_real_time(slow: Engine) -> None:
    args: argparse.Namespace = build_parser().parse_args(
        ["live", "--voice", "anna", "--duration", "1", "--input", files()["input"], "--output", "null"])
    with pytest.raises(DeviceError, match=r"too slow for live .*RTF 1\.70 at 10 ms blocks"):
        live_cli.run_live(args)


def test_server_live_refuses_a_converter_slower_than_real_time(slow: Engine) -> None:
    run = EngineLive(slow, "anna", {}, EventBus(), live_overrides=files())
    with pytest.raises(DeviceError, match=r"too slow for live .*RTF 1\.70 at 10 ms blocks"):
        run.start()  # before any device is opened
    assert run.stats() == {}


def test_force_builds_the_session_anyway_with_the_preset_block(slow: Engine) -> None:
    run = live.build_live(slow, "anna", force=True, overrides={"jitter_ms": 40.0, **files()})
    assert run.rtf == 1.7 and run.config.block_ms == 10.0 and run.config.jitter_ms == 40.0
    assert run.session.config is run.config and run.process.block == 480
    assert run.session.runner is None  # built, not started: no device touched


def test_a_windowed_config_is_refused_for_a_stateful_converter(slow: Engine) -> None:
    with pytest.raises(ConfigError, match=r"\[live.crossfade_ms\] the 'dsp' converter keeps its own history"):
        live.build_live(slow, "anna", force=True, overrides={"crossfade_ms": 10.0, **files()})


def test_gain_scales_the_converted_block(slow: Engine) -> None:
    import numpy as np

    from anchorvoice.frames import AudioFrame

    run = live.build_live(slow, "anna", force=True, overrides=files())
    x = AudioFrame(np.full(480, 0.1, np.float32), 48000)
    loud = run.convert(x).samples.copy()
    run.process.reset()
    run.gain = 0.5
    np.testing.assert_allclose(run.convert(x).samples, 0.5 * loud, atol=1e-6)


def test_building_a_session_keeps_what_the_converter_knows_of_the_speaker(engine: Engine) -> None:
    """The speed measurement and the warm-up feed test signals; the pitch the dsp converter carries into the
    next stream (its ``input_memory``) is the speaker's before and after, not the test signal's."""
    engine.add_voice("anna", [asterisk_clip("demo-congrats")])
    fresh = live.build_live(engine, "anna", overrides=files())
    assert fresh.pipeline.converter.input_memory() == []  # nothing heard yet: nothing carried
    conv = fresh.pipeline.converter
    speech = asterisk_clip("vm-intro")
    from anchorvoice.audio_io import read_audio

    clip = read_audio(speech, conv.sample_rate)
    for i in range(0, len(clip.samples), 160):
        conv.process(clip.with_samples(clip.samples[i : i + 160]))
    heard = conv.input_memory()
    assert len(heard) > 0 and 150 < sorted(heard)[len(heard) // 2] < 260  # the prompts' female voice
    again = live.build_live(engine, "anna", overrides=files())
    assert again.pipeline.converter is conv and conv.input_memory() == heard
