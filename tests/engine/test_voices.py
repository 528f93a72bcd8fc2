"""Voice library: add/list/show/remove, reference validation, analysis stored once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.config import load_toml
from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.engine.hookspecs import hookimpl
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.voices import VoiceDraft, VoiceLibrary
from anchorvoice.errors import (
    PluginError,
    ReferenceAudioError,
    VoiceError,
    VoiceExistsError,
    VoiceNotFoundError,
)


def _clip(path: Path, seconds: float = 2.0, sr: int = 22050, stereo: bool = False, f0: float = 180.0) -> Path:
    sig = speech_like_signal(sr, seconds, f0=f0).samples
    data = np.stack([sig, sig], axis=1) if stereo else sig
    sf.write(str(path), data, sr)
    return path


def test_add_list_show_remove(engine: Engine, tmp_path: Path) -> None:
    ref = _clip(tmp_path / "ref.wav", stereo=True, sr=44100)
    voice = engine.add_voice("alice", [ref], ref_text="hello", ref_lang="en")
    assert engine.voices.names() == ["alice"]
    manifest = load_toml(voice.path / "voice.toml")
    assert manifest["ref_text"] == "hello"
    stored, sr = sf.read(str(voice.references[0]))
    assert stored.ndim == 1 and sr == 44100  # stereo folded to mono, rate kept
    # the DSP converter analysed the reference once, at add time
    assert "dsp" in voice.analysis and voice.analysis["dsp"]
    again = engine.voices.get("alice")
    assert again.analysis == voice.analysis
    engine.voices.remove("alice")
    assert engine.voices.names() == []


def test_unknown_voice_lists_the_library(engine: Engine, tmp_path: Path) -> None:
    engine.add_voice("bob", [_clip(tmp_path / "r.wav")])
    with pytest.raises(VoiceNotFoundError, match=r"Unable to find voice 'nobody'.*bob.*voices list"):
        engine.voices.get("nobody")


def test_duplicate_refused_unless_overwrite(engine: Engine, tmp_path: Path) -> None:
    ref = _clip(tmp_path / "r.wav")
    engine.add_voice("carol", [ref])
    with pytest.raises(VoiceExistsError, match="--force"):
        engine.add_voice("carol", [ref])
    engine.add_voice("carol", [ref], overwrite=True)
    assert engine.voices.names() == ["carol"]


def test_short_and_silent_references_are_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ReferenceAudioError, match="0.50 s long; give at least 1 s"):
        engine.add_voice("short", [_clip(tmp_path / "s.wav", seconds=0.5)])
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(22050 * 2, np.float32), 22050)
    with pytest.raises(ReferenceAudioError, match="silent"):
        engine.add_voice("quiet", [silent])
    assert engine.voices.names() == []  # nothing half-written


def test_missing_model_path_is_refused(tmp_path: Path) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    with pytest.raises(VoiceError, match="model not found"):
        lib.add("alice", [_clip(tmp_path / "ok.wav", seconds=4.0)], models={"sovits": tmp_path / "missing.pth"})


def test_library_knows_no_model_rule(tmp_path: Path) -> None:
    """Without plugins, model files are opaque paths: no clip-length or file-format rule of any model."""
    lib = VoiceLibrary(tmp_path / "home")
    model = tmp_path / "alice.pth"
    model.write_bytes(b"x")
    voice = lib.add("alice", [_clip(tmp_path / "long.wav", seconds=12.0)], models={"sovits": model})
    assert voice.models == {"sovits": model.resolve()}


class _PickyPlugin:
    """A plugin whose ``check_voice`` refuses voices carrying its ``picky`` model with a reference text."""

    def __init__(self) -> None:
        self.seen: list[VoiceDraft] = []

    @hookimpl
    def check_voice(self, draft: VoiceDraft) -> None:
        self.seen.append(draft)
        if "picky" in draft.models and draft.ref_text:
            raise ReferenceAudioError(f"picky voices take no reference text (voice {draft.name})")


class _BrokenPlugin:
    @hookimpl
    def check_voice(self, draft: VoiceDraft) -> None:
        raise KeyError("oops")


def test_plugins_check_voice_hook_decides(tmp_path: Path) -> None:
    pm = PluginManager()
    picky = _PickyPlugin()
    assert pm.register(picky, "picky")
    assert pm.plugins["picky"].hooks == ["check_voice"]
    eng = Engine(EngineConfig(home=tmp_path / "home", third_party_plugins=False), plugins=pm)
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    ref = _clip(tmp_path / "r.wav")
    with pytest.raises(ReferenceAudioError, match="picky voices take no reference text"):
        eng.add_voice("p", [ref], ref_text="hello", models={"picky": model})
    assert eng.voices.names() == []  # refused before anything was written
    draft = picky.seen[-1]
    assert draft.name == "p" and draft.ref_text == "hello" and draft.models == {"picky": model.resolve()}
    assert [(src, round(fr.duration, 2)) for src, fr in draft.references] == [(str(ref), 2.0)]
    eng.add_voice("p", [ref], models={"picky": model})
    assert eng.voices.names() == ["p"]
    pm.register(_BrokenPlugin(), "broken")
    with pytest.raises(PluginError, match=r"plugin 'broken' failed while checking voice 'q': KeyError"):
        eng.add_voice("q", [ref])


def test_bad_names_and_nan_reference(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="invalid voice name"):
        engine.add_voice("../evil", [_clip(tmp_path / "r.wav")])
    sig = speech_like_signal(16000, 2.0).samples.copy()
    sig[100:200] = np.nan
    nan_ref = tmp_path / "nan.wav"
    sf.write(str(nan_ref), sig, 16000, subtype="FLOAT")
    voice = engine.add_voice("nanny", [nan_ref])
    stored, _ = sf.read(str(voice.references[0]))
    assert np.all(np.isfinite(stored))
