"""The GPT-SoVITS TTS path end to end on the fixture weights: streamed, timed, with bad input."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.engine.engine import Engine
from anchorvoice.engine.hookspecs import hookimpl
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import ProsodyModel
from anchorvoice.errors import TextInputError, UnsupportedLanguageError
from anchorvoice.frames import TextFrame, TokenFrame
from tests.conformance.conftest import require_reference_dir
from tests.conftest import REPO
from tests.gsv_voice import add_neural_voice


@pytest.fixture(scope="module")
def neural(tmp_path_factory: pytest.TempPathFactory, builtin_plugins) -> tuple[Engine, str]:
    gsv = require_reference_dir()
    from anchorvoice.engine.engine import EngineConfig

    tmp = tmp_path_factory.mktemp("neural")
    eng = Engine(EngineConfig(home=tmp / "home", third_party_plugins=False), plugins=builtin_plugins)
    voice = add_neural_voice(eng, gsv, tmp)
    yield eng, voice.name
    eng.close()


class _SlowTokens(ProsodyModel):
    """A prosody stage that yields 8 chunks of 12 tokens, logging when each chunk is produced."""

    name = "test-slow-tokens"
    log: list[str] = []

    def generate(self, text, prompt_text=None, prompt_tokens=None):
        rng = np.random.default_rng(0)
        for i in range(8):
            self.log.append(f"tokens{i}")
            yield TokenFrame(rng.integers(0, 1024, 12), 25.0, final=i == 7)


class _PlannedTokens(_SlowTokens):
    """A prosody stage that prepares its own prompt and plan, recording what the pipeline handed it."""

    name = "test-planned-tokens"
    seen: dict[str, object] = {}

    def prompt_reference(self, reference):
        self.seen["reference"] = reference
        return reference.with_samples(reference.samples[: reference.sample_rate])  # keep the first second

    def prompt_text(self, text, language):
        self.seen["prompt_text"] = (text, language)
        return "okay"

    def plan_sentences(self, sentences, language):
        self.seen["sentences"] = (list(sentences), language)
        return sentences[-1:]

    def generate(self, text, prompt_text=None, prompt_tokens=None):
        self.seen.setdefault("generate", []).append((text, prompt_text, prompt_tokens))
        yield from super().generate(text, prompt_text, prompt_tokens)


@hookimpl
def register_prosody_models(register):
    register(_SlowTokens)
    register(_PlannedTokens)


def _pipeline_with_prosody(eng: Engine, name: str, prosody: str, tmp_path: Path):
    """The tts preset with a stand-in prosody stage, bound to voice ``name``."""
    pm = PluginManager()
    pm.load_entry_points(third_party=False)
    pm.register(sys.modules[__name__], "test-slow-tokens")
    preset = (REPO / "configs" / "tts.toml").read_text().replace('plugin = "gsv-t2s"', f'plugin = "{prosody}"')
    preset = re.sub(r"(?m)^params = \{ precision = .*\}$", "", preset)  # the stand-in stage has no parameters
    (tmp_path / "stream.toml").write_text(preset)
    from anchorvoice.engine.pipeline import Pipeline
    from anchorvoice.engine.pipeline_config import load_pipeline

    return Pipeline(load_pipeline(tmp_path / "stream.toml", pm), pm, eng.voices.get(name))


def test_audio_starts_before_the_sentence_is_generated(neural: tuple[Engine, str], tmp_path: Path) -> None:
    eng, name = neural
    pipe = _pipeline_with_prosody(eng, name, "test-slow-tokens", tmp_path)
    _SlowTokens.log.clear()
    chunks = []
    for chunk in pipe.speak_iter("one long sentence without any pause in it", "en"):
        _SlowTokens.log.append("audio")
        chunks.append(chunk)
    log = _SlowTokens.log
    assert log.index("audio") < log.index("tokens7"), log
    assert len(chunks) >= 3
    # 96 tokens -> 192 latent frames -> 3.84 s at 32 kHz, resampled to 48 kHz: nothing lost or doubled
    total = sum(len(c.samples) for c in chunks)
    assert abs(total - 96 * 2 * 640 * 48000 // 32000) <= 48, total
    assert pipe.first_audio_s is not None


def test_pipeline_prepares_prompt_and_sentences_as_the_prosody_stage_asks(
    neural: tuple[Engine, str], tmp_path: Path
) -> None:
    eng, name = neural
    voice = eng.voices.get(name)
    pipe = _pipeline_with_prosody(eng, name, "test-planned-tokens", tmp_path)
    _PlannedTokens.seen.clear()
    list(pipe.speak_iter("First one here. Second one there.", "en"))
    seen = _PlannedTokens.seen
    ref = seen["reference"]
    assert ref.sample_rate == 16000 and abs(ref.duration - voice.load_reference().duration) < 1e-3
    assert seen["prompt_text"] == (voice.ref_text, voice.ref_lang)
    assert seen["sentences"] == (["First one here.", "Second one there."], "en")
    calls = seen["generate"]
    assert len(calls) == 1  # only the planned (last) sentence was generated
    text, prompt_text, prompt_tokens = calls[0]
    fe = pipe.frontend("en")
    assert list(text.ids) == list(fe.phonemize(TextFrame("Second one there.", "en")).ids)
    assert list(prompt_text.ids) == list(fe.phonemize(TextFrame("okay", "en")).ids)
    assert 20 <= len(prompt_tokens.tokens) <= 30  # one second of reference at 25 tokens/s


def test_speak_streams_and_times_stages(neural: tuple[Engine, str]) -> None:
    eng, name = neural
    pipe = eng.pipeline("tts", name)
    chunks = list(pipe.speak_iter("Thanks for the follow, see you tomorrow!", "en"))
    assert chunks and all(c.sample_rate == 48000 and np.all(np.isfinite(c.samples)) for c in chunks)
    assert sum(c.duration for c in chunks) > 0.3
    assert pipe.first_audio_s is not None
    stages = set(pipe.timings)
    assert {"prosody:gsv-t2s", "decoder:gsv-sovits", "vocoder:gsv-hifigan", "frontend:en"} <= stages
    # the prompt (reference -> HuBERT -> RVQ tokens) was computed once and reused
    pipe.speak("Again.", "en")
    assert pipe.timings["feature_extractor:hubert"].calls == 1


def test_reference_free_voice_speaks(neural: tuple[Engine, str], tmp_path: Path) -> None:
    eng, _ = neural
    gsv = require_reference_dir()
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


def test_each_chunk_names_its_sentence(neural: tuple[Engine, str]) -> None:
    """Subtitles follow the audio: after each chunk, ``sentences[sentence_index]`` is the sentence it belongs to,
    as the language's text frontend split the text."""
    eng, name = neural
    pipe = eng.pipeline("tts", name)
    text = "Hi. Thanks for the follow, see you tomorrow!"
    indices = [pipe.sentence_index for _ in pipe.speak_iter(text, "en")]
    assert pipe.sentences == pipe.frontend("en").split_sentences(text)
    assert pipe.sentences[0] == "Hi." and len(pipe.sentences) >= 2  # shown without the stop the GPT gets in front
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] == len(pipe.sentences) - 1
