"""The ``speaker-encoder`` plugin: a packaged encoder's d-vector for voices without a SoVITS model, and
what `voices similar` / `voices cluster` say when its weights are not installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.audio_io import resample, speech_like_signal
from anchorvoice.engine.cli.main import main
from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.store.families import cluster, collect, similar
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.speaker_encoder import plugin as encoder_plugin
from tests.plugins.speech import asterisk_clip

HAVE_RESEMBLYZER = importlib.util.find_spec("resemblyzer") is not None


@pytest.fixture
def plugins(builtin_plugins: PluginManager) -> PluginManager:
    """The built-ins with the speaker encoder registered (an older install's entry points may lack it)."""
    pm = PluginManager()
    pm.load_entry_points(third_party=False)
    if "speaker-encoder" not in pm.plugins:
        pm.register(encoder_plugin, "speaker-encoder")
    return pm


def _wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    sf.write(str(path), samples, rate)
    return path


def _flite(voice: str, text: str) -> tuple[np.ndarray, int]:
    from anchorvoice.plugins.base_voice import FliteConfig, FliteVoice

    y = FliteVoice(FliteConfig(voice=voice)).synthesize(TextFrame(text))
    return y.samples, y.sample_rate


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_RESEMBLYZER, reason="resemblyzer (its bundled weights) is not installed")
def test_one_real_speaker_is_nearer_itself_than_another(plugins: PluginManager, tmp_path: Path) -> None:
    """Two voices made from different prompts of one human speaker (Asterisk's) embed nearer each other
    than either does to a voice of flite's awb; the space used is the encoder's, the vector is cached."""
    engine = Engine(EngineConfig(home=tmp_path / "home", third_party_plugins=False), plugins=plugins)
    a = asterisk_clip("agent-pass", "auth-incorrect")
    b = asterisk_clip("agent-loggedoff", "agent-alreadyon")
    engine.add_voice("allison1", [_wav(tmp_path / "a.wav", a, 16000)])
    engine.add_voice("allison2", [_wav(tmp_path / "b.wav", b, 16000)])
    y, rate = _flite("awb", "Please enter your password, then press the pound key to continue.")
    engine.add_voice("awb", [_wav(tmp_path / "c.wav", y, rate)])
    emb = collect(engine.voices, plugins.speaker_embeddings)
    assert emb.space == "ge2e" and len(emb.vectors["allison1"]) == 256 and not emb.no_model
    ranked = similar(emb, "allison1", 2)
    assert [n for n, _ in ranked] == ["allison2", "awb"] and ranked[0][1] > ranked[1][1] + 0.1
    assert sorted(sorted(f.members) for f in cluster(engine.voices, emb, 2)) == [["allison1", "allison2"], ["awb"]]
    # computed once: a second look reads the voice's feature cache, never the encoder
    cached = list((engine.voices.get("awb").path / "cache").glob("*.npz"))
    assert cached
    import anchorvoice.plugins.speaker_encoder.ge2e as ge2e

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("embedded again")

    orig = ge2e.SpeakerEncoder
    ge2e.SpeakerEncoder = boom  # type: ignore[assignment,misc]
    try:
        again = plugins.speaker_embeddings(engine.voices.get("awb"))["ge2e"]
    finally:
        ge2e.SpeakerEncoder = orig  # type: ignore[misc]
    assert np.allclose(again, emb.vectors["awb"])
    engine.close()


@pytest.mark.skipif(not HAVE_RESEMBLYZER, reason="resemblyzer (its bundled weights) is not installed")
def test_weights_load_as_tensors_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder reads resemblyzer's file with torch.load(weights_only=True) and never imports the package."""
    import sys

    import torch

    from anchorvoice.plugins.speaker_encoder.ge2e import SpeakerEncoder, weights_path

    calls = []
    real = torch.load

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "load", spy)
    enc = SpeakerEncoder(weights_path())
    assert calls == [True] and "resemblyzer" not in sys.modules
    x = speech_like_signal(16000, 2.0, f0=140.0).samples
    v = enc.embed(x)
    assert v.shape == (256,) and abs(np.linalg.norm(v) - 1.0) < 1e-6
    assert np.allclose(enc.embed(resample(x, 16000, 16000)), v)


def test_without_resemblyzer_similar_and_cluster_say_what_is_missing(
    plugins: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import anchorvoice.plugins.speaker_encoder.ge2e as ge2e

    monkeypatch.setattr(ge2e.importlib.util, "find_spec",
                        lambda name, *a: None if name == "resemblyzer" else importlib.util.find_spec(name, *a))
    assert not encoder_plugin.available()
    home = tmp_path / "home"
    engine = Engine(EngineConfig(home=home, third_party_plugins=False), plugins=plugins)
    for name, f0 in (("low", 100.0), ("low2", 105.0), ("high", 240.0)):
        engine.add_voice(name, [_wav(tmp_path / f"{name}.wav", speech_like_signal(16000, 2.0, f0=f0).samples, 16000)])
    v = engine.voices.get("low")
    assert encoder_plugin.speaker_embedding(v) is None
    emb = collect(engine.voices, plugins.speaker_embeddings)
    assert emb.space == "dsp-envelope" and emb.no_model == ["high", "low", "low2"]
    engine.close()
    assert main(["--home", str(home), "voices", "cluster", "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "no speaker-encoder embedding for 3 voice(s): high, low, low2" in out
    assert "pip install resemblyzer" in out
    assert "share: no stored base model" in out
    assert main(["--home", str(home), "--json", "voices", "similar", "low"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["no_embedding"] == ["high", "low", "low2"] and "resemblyzer" in data["install"]
    assert data["similar"][0]["name"] == "low2"
