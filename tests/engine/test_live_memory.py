"""The speaker's pitch that the dsp converter carries into the next stream survives the end of a live run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from anchorvoice.audio_io import read_audio
from anchorvoice.engine import live, live_memory
from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.engine.plugins import PluginManager
from tests.conftest import asterisk_clip


def _files() -> dict[str, str]:
    return {"input": str(asterisk_clip("demo-congrats")), "output": "null"}


def _hear(run: live.LiveRun, prompt: str) -> list[float]:
    """Stream a prompt through the run's converter (as the session would) and return its memory."""
    conv = run.pipeline.converter
    clip = read_audio(asterisk_clip(prompt), conv.sample_rate)
    for i in range(0, len(clip.samples), 160):
        conv.process(clip.with_samples(clip.samples[i : i + 160]))
    return list(conv.input_memory())


def _engine(home: Path, plugins: PluginManager) -> Engine:
    return Engine(EngineConfig(home=home, third_party_plugins=False), plugins=plugins)


def test_the_next_process_starts_from_the_last_runs_speaker(tmp_path: Path, builtin_plugins: PluginManager) -> None:
    home = tmp_path / "home"
    first = _engine(home, builtin_plugins)
    try:
        first.add_voice("anna", [asterisk_clip("demo-congrats")])
        run = live.build_live(first, "anna", overrides=_files())
        heard = _hear(run, "vm-intro")
        run.remember()
    finally:
        first.close()
    stored = json.loads(live_memory.memory_path(home).read_text(encoding="utf-8"))
    assert stored["version"] == live_memory.VERSION and stored["dsp"] == heard
    second = _engine(home, builtin_plugins)  # a new process: the converter has heard nothing itself
    try:
        again = live.build_live(second, "anna", overrides=_files())
        assert again.pipeline.converter.input_memory() == heard
    finally:
        second.close()


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 99, "dsp": [200.0]}),
                                     json.dumps({"version": 1, "dsp": [9000.0]})])
def test_a_bad_memory_file_is_reported_and_set_aside(tmp_path: Path, builtin_plugins: PluginManager, content: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"
    home.mkdir()
    live_memory.memory_path(home).write_text(content, encoding="utf-8")
    eng = _engine(home, builtin_plugins)
    try:
        eng.add_voice("anna", [asterisk_clip("demo-congrats")])
        with caplog.at_level(logging.WARNING, logger="anchorvoice.engine.live_memory"):
            run = live.build_live(eng, "anna", overrides=_files())
        assert run.pipeline.converter.input_memory() == []  # starts from nothing, as a first run
        assert any("live_input_memory.json" in r.getMessage() for r in caplog.records)
        heard = _hear(run, "vm-intro")
        run.remember()  # and the next stop writes a good file over it
        assert json.loads(live_memory.memory_path(home).read_text(encoding="utf-8"))["dsp"] == heard
    finally:
        eng.close()
