"""Voice names in any script, safe folders derived from them, case twins refused, notes about clips."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.voice_names import folder_name
from anchorvoice.engine.voices import VoiceLibrary
from anchorvoice.errors import VoiceError, VoiceExistsError, VoiceNotFoundError


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "ref.wav"
    sf.write(str(path), speech_like_signal(16000, 2.0).samples, 16000)
    return path


@pytest.mark.parametrize("name", ["安娜", "Zoë", "Ms Mira", "ミラ・2", "Анна"])
def test_names_in_any_script(tmp_path: Path, clip: Path, name: str) -> None:
    lib = VoiceLibrary(tmp_path)
    voice = lib.add(name, [clip])
    assert voice.name == name and lib.names() == [name]
    assert lib.get(name).references[0].is_file()
    folder = voice.path.name
    assert folder.isascii() and "/" not in folder and not folder.startswith(".")
    lib.remove(name)
    assert lib.names() == []


def test_plain_names_keep_their_own_folder(tmp_path: Path, clip: Path) -> None:
    assert VoiceLibrary(tmp_path).add("anna_2", [clip]).path.name == "anna_2"


def test_decomposed_and_composed_spellings_are_one_voice(tmp_path: Path, clip: Path) -> None:
    lib = VoiceLibrary(tmp_path)
    lib.add("Zo\u00eb", [clip])
    assert lib.get("Zoe\u0308").name == "Zo\u00eb"


def test_case_twins_are_refused(tmp_path: Path, clip: Path) -> None:
    lib = VoiceLibrary(tmp_path)
    lib.add("Anna", [clip])
    with pytest.raises(VoiceExistsError, match="only in case"):
        lib.add("anna", [clip])
    with pytest.raises(VoiceExistsError, match="only in case"):
        lib.add("ANNA", [clip], overwrite=True)
    assert lib.names() == ["Anna"]


def test_derived_folders() -> None:
    # Case twins would share a folder on a case-insensitive file system: hence they are refused.
    assert folder_name("Zoë").casefold() == folder_name("zoë").casefold()
    assert folder_name("安娜") != folder_name("安妮")
    assert folder_name("Zoë").startswith("Zoe-") and folder_name("安娜").startswith("voice-")


@pytest.mark.parametrize("name,message", [
    ("", "needs a name"), ("a/b", "no slashes"), ("..", "leading '.'"), ("a\x00b", "control"), ("x" * 65, "at most 64"),
])
def test_bad_names_say_what_a_name_may_hold(tmp_path: Path, clip: Path, name: str, message: str) -> None:
    with pytest.raises(VoiceError, match=message):
        VoiceLibrary(tmp_path).add(name, [clip])
    assert not (tmp_path / "voices").exists() or not any((tmp_path / "voices").iterdir())


def test_unknown_and_hostile_names_are_not_found(tmp_path: Path, clip: Path) -> None:
    lib = VoiceLibrary(tmp_path)
    lib.add("anna", [clip])
    for name in ("../anna", "nobody", "", "Anna"):
        with pytest.raises(VoiceNotFoundError, match="voices: anna"):
            lib.get(name)


def test_stereo_and_unusual_rate_are_noted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sig = speech_like_signal(11025, 2.0).samples
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([sig, sig], axis=1), 11025)
    with caplog.at_level(logging.WARNING, logger="anchorvoice.engine.references"):
        VoiceLibrary(tmp_path / "home").add("s", [path])
    text = caplog.text
    assert "2 channels averaged to mono" in text and "unusual sample rate 11025 Hz" in text


def test_engine_adds_a_voice_named_in_chinese(engine: Engine, clip: Path) -> None:
    voice = engine.add_voice("安娜", [clip])
    out = engine.convert(speech_like_signal(16000, 0.5), "安娜")
    assert voice.name in engine.voices.names() and len(out.samples) > 0


def test_a_reference_longer_than_the_converter_uses_is_cut_with_a_note(
        engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from anchorvoice.plugins.dsp.converter import DspVoiceConverter

    cap = DspVoiceConverter.max_reference_s
    assert cap is not None
    long_clip = tmp_path / "long.wav"
    sig = np.concatenate([speech_like_signal(16000, cap / 2, f0=120.0).samples,
                          speech_like_signal(16000, cap / 2 + 5.0, f0=240.0).samples])
    sf.write(str(long_clip), sig, 16000)
    with caplog.at_level(logging.WARNING, logger="anchorvoice.engine.engine"):
        voice = engine.add_voice("long", [long_clip])
    assert f"the 'dsp' converter analyses their first {cap:.0f} s" in caplog.text
    first = DspVoiceConverter.analyze_reference(
        speech_like_signal(16000, 1.0).with_samples(sig[: int(cap * 16000)]))
    assert voice.analysis["dsp"]["median_f0_hz"] == pytest.approx(first["median_f0_hz"])
