"""The GPT-SoVITS TTS path end to end on the fixture weights: streamed, timed, with bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.engine import Engine
from engine.errors import TextInputError, UnsupportedLanguageError
from tests.conformance.conftest import reference_dir
from tests.gsv_voice import add_neural_voice


@pytest.fixture(scope="module")
def neural(tmp_path_factory: pytest.TempPathFactory, builtin_plugins) -> tuple[Engine, str]:
    gsv = reference_dir()
    if gsv is None:
        pytest.skip("GPT-SoVITS reference fixtures not found (set ANCHORVOICE_GSV_REFERENCE)")
    from engine.engine import EngineConfig

    tmp = tmp_path_factory.mktemp("neural")
    eng = Engine(EngineConfig(home=tmp / "home", third_party_plugins=False), plugins=builtin_plugins)
    voice = add_neural_voice(eng, gsv, tmp)
    yield eng, voice.name
    eng.close()


def test_speak_streams_chunks_before_the_sentence_is_done(neural: tuple[Engine, str]) -> None:
    eng, name = neural
    pipe = eng.pipeline("tts", name)
    chunks = list(pipe.speak_iter("Thanks for the follow, see you tomorrow!", "en"))
    assert len(chunks) >= 2, "the neural path must stream (several chunks per sentence)"
    assert all(c.sample_rate == 48000 and np.all(np.isfinite(c.samples)) for c in chunks)
    total = sum(c.duration for c in chunks)
    assert total > 0.3
    assert pipe.first_audio_s is not None
    stages = set(pipe.timings)
    assert {"prosody:gsv-t2s", "decoder:gsv-sovits", "vocoder:gsv-hifigan", "frontend:en"} <= stages
    # the prompt (reference -> HuBERT -> RVQ tokens) was computed once and reused
    assert pipe.timings["feature_extractor:hubert"].calls == 1
    pipe.speak("Second time.", "en")
    assert pipe.timings["feature_extractor:hubert"].calls == 1


def test_reference_free_voice_speaks(neural: tuple[Engine, str], tmp_path: Path) -> None:
    eng, _ = neural
    gsv = reference_dir()
    assert gsv is not None
    add_neural_voice(eng, gsv, tmp_path, name="nofree", ref_text="")
    audio = eng.speak("No prompt text here.", "nofree", "en")
    assert audio.duration > 0.1


def test_bad_text_input(neural: tuple[Engine, str]) -> None:
    eng, name = neural
    with pytest.raises(TextInputError):
        eng.speak("   ", name)
    with pytest.raises(TextInputError):
        eng.speak("?!... 🙂🙂", name, "en")
    with pytest.raises(UnsupportedLanguageError, match="installed languages"):
        eng.speak("bonjour", name, "tlh")


@pytest.mark.slow
def test_long_paragraph_is_split_and_streamed(neural: tuple[Engine, str]) -> None:
    eng, name = neural
    sentence = "This sentence is part of a very long paragraph that a chat bot pasted. "
    text = (sentence * 80)[:5000]
    pipe = eng.pipeline("tts", name)
    n = 0
    for chunk in pipe.speak_iter(text, "en"):
        n += 1
        assert np.all(np.isfinite(chunk.samples))
    assert n >= 20
