"""The embedded base voice reads each script in its language, drops emoji, refuses what it cannot read."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.errors import TextInputError, UnsupportedLanguageError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.base_voice import EspeakConfig, EspeakVoice, FliteVoice
from anchorvoice.plugins.text_common.scripts import drop_pictographs, script_runs


@pytest.mark.parametrize("text,language,runs", [
    ("谢谢你的关注！", "en", [("zh", "谢谢你的关注！")]),
    ("谢谢你的关注！", "auto", [("zh", "谢谢你的关注！")]),
    ("谢谢", "cmn", [("cmn", "谢谢")]),
    ("ありがとう、日本語", "en", [("ja", "ありがとう、日本語")]),
    ("日本語", "ja", [("ja", "日本語")]),
    ("Thanks 谢谢 everyone!", "en", [("en", "Thanks "), ("zh", "谢谢 "), ("en", "everyone!")]),
    ("Bonjour à tous", "fr", [("fr", "Bonjour à tous")]),
    ("Привет, chat", "en", [("ru", "Привет, "), ("en", "chat")]),
    ("Привет", "uk", [("uk", "Привет")]),
    ("안녕하세요", "auto", [("ko", "안녕하세요")]),
    ("12, 13!", "auto", [("en", "12, 13!")]),
    ("OK 好", "zh", [("en", "OK "), ("zh", "好")]),
])
def test_script_runs(text: str, language: str, runs: list[tuple[str, str]]) -> None:
    assert script_runs(text, language) == runs


def test_pictographs_are_dropped_but_useful_symbols_kept() -> None:
    assert drop_pictographs("party 🎉🎉🎉 time 👍🏽") == "party time"
    assert drop_pictographs("❤️ love it") == "love it"
    assert drop_pictographs("30° and 50%") == "30° and 50%"
    assert drop_pictographs("🎉") == ""


def _espeak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
        return sf.read(str(wav), dtype="float32")[0]


def test_chinese_text_is_read_in_mandarin_not_spelled_in_english() -> None:
    out = EspeakVoice().synthesize(TextFrame("谢谢你的关注！", "en")).samples
    mandarin, english = _espeak("cmn", "谢谢你的关注！"), _espeak("en", "谢谢你的关注！")
    assert len(out) == len(mandarin)
    assert len(english) > 1.5 * len(mandarin)  # "Chinese letter" six times is what a user heard before


def test_japanese_text_is_read_in_japanese() -> None:
    out = EspeakVoice().synthesize(TextFrame("ありがとうございます", "en")).samples
    assert len(out) == len(_espeak("ja", "ありがとうございます"))


def test_emoji_are_not_read_aloud() -> None:
    plain = EspeakVoice().synthesize(TextFrame("party time", "en")).samples
    emoji = EspeakVoice().synthesize(TextFrame("party 🎉🎉🎉 time", "en")).samples
    assert len(emoji) == len(plain)
    with pytest.raises(TextInputError, match="only emoji"):
        EspeakVoice().synthesize(TextFrame("🎉🎉", "en"))


def test_zh_and_auto_are_accepted_and_unknown_languages_refused_with_the_list() -> None:
    voice = EspeakVoice()
    voice.check_language("zh")
    voice.check_language("auto")
    with pytest.raises(UnsupportedLanguageError, match="it speaks: .*cmn.*en"):
        voice.check_language("tlh")


def test_a_script_espeak_lacks_is_refused_before_speaking(monkeypatch: pytest.MonkeyPatch) -> None:
    voice = EspeakVoice()
    monkeypatch.setattr(voice, "available_languages", lambda: ["en"])
    with pytest.raises(UnsupportedLanguageError, match="cannot speak language 'zh'; it speaks: en"):
        voice.synthesize(TextFrame("hello 谢谢", "en"))


def test_a_fixed_voice_reads_everything_in_it() -> None:
    voice = EspeakVoice(EspeakConfig(voice="en-us"))
    out = voice.synthesize(TextFrame("谢谢", "en")).samples
    assert len(out) == len(_espeak("en-us", "谢谢"))


def test_flite_refuses_other_scripts_and_languages() -> None:
    with pytest.raises(UnsupportedLanguageError, match="English only.*zh"):
        FliteVoice().synthesize(TextFrame("thanks 谢谢", "en"))
    with pytest.raises(UnsupportedLanguageError, match="it speaks: en"):
        FliteVoice().check_language("fr")
