"""espeak-ng and flite base voices, run for real."""

from __future__ import annotations

import numpy as np
import pytest

from anchorvoice.audio_io import resample
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.testing import check_stage
from anchorvoice.errors import ConfigError, PluginError, TextInputError, UnsupportedLanguageError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.base_voice import EspeakConfig, EspeakVoice, FliteConfig, FliteVoice
from anchorvoice.plugins.dsp.analysis import SAMPLE_RATE, voiced_frames

pytestmark = pytest.mark.timeout(120)


def _pitch(frame) -> tuple[np.ndarray, np.ndarray]:
    return voiced_frames(resample(frame.samples, frame.sample_rate, SAMPLE_RATE))


def _median_f0(frame) -> float:
    f0, voiced = _pitch(frame)
    return float(np.median(f0[voiced]))


def test_entry_point_registers_both(builtin_plugins: PluginManager) -> None:
    assert builtin_plugins.get("base_voice", "espeak") is EspeakVoice
    assert builtin_plugins.get("base_voice", "flite") is FliteVoice


def test_contracts() -> None:
    check_stage(EspeakVoice)
    check_stage(FliteVoice)


def test_espeak_speaks_english_as_real_speech() -> None:
    voice = EspeakVoice()
    out = voice.synthesize(TextFrame("The quick brown fox jumps over the lazy dog.", "en", timestamp=2.5))
    assert out.sample_rate == 22050
    assert 1.5 < out.duration < 5.0
    assert out.timestamp == 2.5
    f0, voiced = _pitch(out)
    assert voiced.mean() > 0.25  # mostly voiced speech, not noise or silence
    assert 70.0 < np.median(f0[voiced]) < 180.0  # espeak-ng's default male voice


def test_espeak_languages_come_from_the_program() -> None:
    langs = EspeakVoice().available_languages()
    assert len(langs) > 100  # espeak-ng 1.51 ships 131 languages
    for code in ("en", "en-us", "fr-fr", "de", "cmn", "ja", "ru"):
        assert code in langs


@pytest.mark.parametrize("language", ["fr", "de", "zh", "ru"])
def test_espeak_other_languages(language: str) -> None:
    text = {"fr": "Bonjour tout le monde.", "de": "Guten Morgen.", "zh": "你好世界", "ru": "Привет, мир."}
    out = EspeakVoice().synthesize(TextFrame(text[language], language))
    assert out.duration > 0.5


def test_espeak_pitch_and_variant_change_the_voice() -> None:
    text = TextFrame("Hello there, how are you today?", "en")
    low = _median_f0(EspeakVoice(EspeakConfig(pitch=20)).synthesize(text))
    high = _median_f0(EspeakVoice(EspeakConfig(pitch=80)).synthesize(text))
    female = _median_f0(EspeakVoice(EspeakConfig(variant="f3")).synthesize(text))
    assert high > low * 1.3
    assert female > _median_f0(EspeakVoice().synthesize(text)) * 1.3


def test_espeak_rate_changes_duration() -> None:
    text = TextFrame("One two three four five six seven eight nine ten.", "en")
    slow = EspeakVoice(EspeakConfig(rate=100)).synthesize(text).duration
    fast = EspeakVoice(EspeakConfig(rate=300)).synthesize(text).duration
    assert slow > 2.0 * fast


def test_text_starting_with_a_dash_is_spoken_not_parsed() -> None:
    out = EspeakVoice().synthesize(TextFrame("-v is not an option here", "en"))
    assert out.duration > 1.0


def test_unsupported_language_lists_installed_ones() -> None:
    with pytest.raises(UnsupportedLanguageError, match="it speaks: .*en-us"):
        EspeakVoice().synthesize(TextFrame("hello", "xx"))
    with pytest.raises(UnsupportedLanguageError, match="it speaks: en"):
        FliteVoice().synthesize(TextFrame("bonjour", "fr"))


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(TextInputError, match="empty"):
        EspeakVoice().synthesize(TextFrame(text, "en"))
    with pytest.raises(TextInputError, match="empty"):
        FliteVoice().synthesize(TextFrame(text, "en"))


def test_punctuation_only_is_nothing_speakable() -> None:
    with pytest.raises(TextInputError, match="nothing speakable"):
        EspeakVoice().synthesize(TextFrame("...", "en"))


def test_missing_program_names_the_debian_package() -> None:
    with pytest.raises(PluginError, match="apt-get install espeak-ng"):
        EspeakVoice(EspeakConfig(executable="espeak-ng-not-installed"))
    with pytest.raises(PluginError, match="apt-get install flite"):
        FliteVoice(FliteConfig(executable="flite-not-installed"))


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="pitch"):
        EspeakVoice(EspeakConfig(pitch=150)).synthesize(TextFrame("hi", "en"))
    with pytest.raises(ConfigError, match="choose one of .*slt"):
        FliteVoice(FliteConfig(voice="nobody")).synthesize(TextFrame("hi", "en"))


def test_flite_voices_differ() -> None:
    flite = FliteVoice()
    installed = flite.installed_voices()
    assert {"slt", "rms", "awb"} <= set(installed)
    text = TextFrame("This is a test of the flite voices.", "en")
    slt = FliteVoice(FliteConfig(voice="slt")).synthesize(text)
    rms = FliteVoice(FliteConfig(voice="rms")).synthesize(text)
    assert slt.sample_rate == rms.sample_rate == 16000
    assert _median_f0(slt) > 1.3 * _median_f0(rms)  # slt is a female voice, rms a male one
