"""Styles: tagged references picked by name or tag, falling back to the default; the prosody tagger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.voices import VoiceLibrary
from anchorvoice.errors import VoiceError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp.prosody_tags import prosody_tags


def _clip(path: Path, f0: float = 180.0) -> Path:
    sf.write(str(path), speech_like_signal(22050, 2.0, f0=f0).samples, 22050)
    return path


def test_styles_are_versions_picked_by_name_or_tag(tmp_path: Path) -> None:
    lib = VoiceLibrary(tmp_path / "home")
    lib.add("mira", [_clip(tmp_path / "a.wav")], ref_text="hello")
    with pytest.raises(VoiceError, match="give its reference clip"):
        lib.set_style("mira", "excited")
    v = lib.set_style("mira", "excited", clip=_clip(tmp_path / "b.wav", 260.0), text="wow!", tags=["pace:fast"])
    assert v.version == 2 and v.change == "style 'excited' added"
    assert v.style("excited") is v.styles["excited"] and v.style("fast") is v.styles["excited"]
    assert v.style("sad") is None and v.style(None) is None  # the default reference
    assert v.styles["excited"].reference.is_file() and v.styles["excited"].text == "wow!"
    retagged = lib.set_style("mira", "excited", tags=["excited", "energy:high"])
    assert retagged.styles["excited"].text == "wow!" and retagged.style("high") is not None
    again = lib.add("mira", [_clip(tmp_path / "c.wav", 200.0)], ref_text="hi", overwrite=True)
    assert "excited" in again.styles  # a new default reference keeps the styles
    assert lib.get("mira@1").styles == {}
    with pytest.raises(VoiceError, match="invalid style name"):
        lib.set_style("mira", "../x", clip=tmp_path / "a.wav")


def test_the_prosody_tagger_measures_pitch_range_energy_and_pace() -> None:
    sr = 16000
    t = np.arange(2 * sr) / sr
    sweep = 0.9 * np.sin(2 * np.pi * np.cumsum(120 + 180 * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))) / sr)
    lively = prosody_tags(AudioFrame(sweep.astype(np.float32), sr), "it is a wonderful and amazing celebration today")
    assert {"pitch:wide", "energy:high", "pace:fast"} <= set(lively)
    flat = 0.01 * np.sin(2 * np.pi * 150 * t)
    calm = prosody_tags(AudioFrame(flat.astype(np.float32), sr), "so")
    assert {"pitch:narrow", "energy:low", "pace:slow"} <= set(calm)
    assert prosody_tags(AudioFrame(np.zeros(sr, np.float32), sr), "x") == []


def test_the_tag_hook_collects_every_plugins_tags(builtin_plugins: PluginManager) -> None:
    sr = 16000
    t = np.arange(2 * sr) / sr
    clip = AudioFrame((0.01 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), sr)
    assert "energy:low" in builtin_plugins.tag_reference(clip, "so", "en")
