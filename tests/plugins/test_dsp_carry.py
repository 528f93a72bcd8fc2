"""A new live stream starts from the previous stream's pitch estimates (``DspConfig.carry_input``)."""

from __future__ import annotations

import numpy as np
import pytest

from anchorvoice.engine.voices import Voice
from anchorvoice.errors import StageError
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp import analysis as an
from anchorvoice.plugins.dsp.converter import DspConfig, DspVoiceConverter
from anchorvoice.plugins.dsp.tracker import PRIOR_ESTIMATES
from tests.plugins.speech import asterisk_clip

SR = an.SAMPLE_RATE


def _voice(tmp_path_factory: pytest.TempPathFactory, name: str, semitones: float, formant: float) -> Voice:
    """A target made from the human prompts, shifted by ``semitones`` with formants x ``formant``."""
    conv = DspVoiceConverter(DspConfig(pitch_semitones=semitones, formant_ratio=formant))
    conv.prepare(None)
    ref = conv.convert(AudioFrame(asterisk_clip("demo-congrats")[: 10 * SR], SR))
    return Voice(name, tmp_path_factory.mktemp(name), [], analysis={"dsp": DspVoiceConverter.analyze_reference(ref)})


@pytest.fixture(scope="module")
def male_voice(tmp_path_factory: pytest.TempPathFactory) -> Voice:
    return _voice(tmp_path_factory, "male", -8.0, 0.85)


@pytest.fixture(scope="module")
def other_voice(tmp_path_factory: pytest.TempPathFactory) -> Voice:
    return _voice(tmp_path_factory, "other", -5.0, 0.9)


def _ratios(conv: DspVoiceConverter, x: np.ndarray, block: int = 160) -> np.ndarray:
    """The pitch ratio in use after each block of a stream of ``x``."""
    out = []
    for i in range(0, len(x), block):
        conv.process(AudioFrame(x[i : i + block], SR))
        out.append(conv.current["pitch_ratio"])
    return np.array(out)


def _first_voiced_block(x: np.ndarray, block: int = 160) -> int:
    f0, voiced = an.voiced_frames(x)
    return int(np.argmax(voiced)) * an.HOP // block


def test_the_second_stream_of_a_speaker_starts_at_the_long_run_ratio(male_voice: Voice) -> None:
    """Phrase-initial pitch reads high, so a cold stream's first second is shifted too far down; a stream
    after another of the same speaker starts near the speaker's long-run ratio (the one a stream of both
    ends on) from its first voiced block."""
    first, second = asterisk_clip("vm-intro", "vm-options"), asterisk_clip("agent-pass", "auth-incorrect")
    conv = DspVoiceConverter()
    conv.prepare(male_voice)
    long_run = _ratios(conv, np.concatenate([first, second]))[-1]
    conv.forget_input()
    _ratios(conv, first)
    conv.reset()
    warm = _ratios(conv, second)
    assert conv.current["carried_pitch_estimates"] == PRIOR_ESTIMATES
    conv.forget_input()
    cold = _ratios(conv, second)
    start = _first_voiced_block(second)
    early = slice(start + 5, start + 100)  # the first second of speech, after the first estimate
    warm_err = np.max(np.abs(np.log(warm[early] / long_run)))
    cold_err = np.max(np.abs(np.log(cold[early] / long_run)))
    assert warm_err < np.log(1.1), (warm[early], long_run)
    assert cold_err > 2 * warm_err  # what carrying fixes: cold 0.49-0.54 against ~0.65 here


def test_another_speaker_drops_the_carried_estimates(male_voice: Voice) -> None:
    """After a female stream, a male one (the prompts an octave down) keeps nothing of it after 0.5 s of
    speech and ends on the ratio a cold stream of him ends on."""
    female = asterisk_clip("vm-intro", "vm-options")
    down = DspVoiceConverter(DspConfig(pitch_semitones=-12.0, formant_ratio=0.8))
    down.prepare(None)
    male = down.convert(AudioFrame(asterisk_clip("agent-pass", "auth-incorrect"), SR)).samples
    conv = DspVoiceConverter()
    conv.prepare(male_voice)
    _ratios(conv, female)
    conv.reset()
    warm = _ratios(conv, male)
    assert conv.current["carried_pitch_estimates"] == 0
    conv.forget_input()
    cold = _ratios(conv, male)
    assert warm[-1] == pytest.approx(cold[-1], rel=0.02)


def test_a_voice_switch_keeps_the_input_and_an_offline_job_does_not_use_it(
    male_voice: Voice, other_voice: Voice
) -> None:
    x = asterisk_clip("vm-intro", "vm-options")
    conv = DspVoiceConverter(DspConfig(offline="stream"))
    conv.prepare(male_voice)
    _ratios(conv, x)
    conv.prepare(other_voice)  # switching voices mid-session: the microphone's speaker is the same
    assert conv.current["carried_pitch_estimates"] == PRIOR_ESTIMATES
    clip = AudioFrame(asterisk_clip("agent-pass"), SR)
    fresh = DspVoiceConverter(DspConfig(offline="stream"))
    fresh.prepare(other_voice)
    np.testing.assert_array_equal(conv.convert(clip).samples, fresh.convert(clip).samples)
    assert conv.current["carried_pitch_estimates"] == PRIOR_ESTIMATES  # still there for the next stream


def test_input_memory_round_trips_and_bad_memory_is_refused(male_voice: Voice) -> None:
    conv = DspVoiceConverter()
    conv.prepare(male_voice)
    assert conv.input_memory() == []
    _ratios(conv, asterisk_clip("vm-intro"))
    memory = conv.input_memory()
    assert len(memory) == PRIOR_ESTIMATES and memory == sorted(memory)
    other = DspVoiceConverter()
    other.prepare(male_voice)
    other.restore_input_memory(memory)
    assert other.input_memory() == memory and other.current["carried_pitch_estimates"] == PRIOR_ESTIMATES
    with pytest.raises(StageError, match="outside"):
        other.restore_input_memory([5000.0])
    assert other.input_memory() == memory  # a refused memory changes nothing
    other.restore_input_memory(None)
    assert other.input_memory() == []
