"""Frame-wise timbre matching: the reference's envelope codebook and what it does to each frame."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.audio_io import resample, write_audio
from anchorvoice.engine.engine import Engine
from anchorvoice.frames import AudioFrame, TextFrame
from anchorvoice.plugins.base_voice import FliteConfig, FliteVoice
from anchorvoice.plugins.dsp import analysis as an
from anchorvoice.plugins.dsp.converter import DspConfig, DspVoiceConverter, _clip_statistics
from anchorvoice.plugins.dsp.timbre import FrameMatcher, build_codebook
from tests.plugins.speech import asterisk_clip

SR = 16000


@pytest.fixture(scope="module")
def allison() -> np.ndarray:
    return asterisk_clip("vm-intro", "agent-pass", "auth-incorrect")


@pytest.fixture(scope="module")
def rms() -> np.ndarray:
    y = FliteVoice(FliteConfig(voice="rms")).synthesize(TextFrame("Please enter your password, then the pound key."))
    return resample(y.samples, y.sample_rate, SR)


def _high_band_distance(env_a: np.ndarray, env_b: np.ndarray) -> float:
    """RMS dB difference of two natural-log envelopes between 1.5 and 7 kHz, levels removed."""
    freqs = np.fft.rfftfreq(an.N_FFT, 1 / SR)
    band = (freqs > 1500) & (freqs < 7000)
    d = (env_a[..., band] - env_a[..., band].mean(-1, keepdims=True)) - (
        env_b[..., band] - env_b[..., band].mean(-1, keepdims=True))
    return float(np.sqrt(np.mean(d**2)) * an.TO_DB)


def test_voices_add_stores_the_envelope_codebook(engine: Engine, tmp_path: Path, allison: np.ndarray) -> None:
    write_audio(tmp_path / "a.wav", AudioFrame(allison, SR))
    engine.add_voice("allison", [tmp_path / "a.wav"])
    book = np.asarray(engine.voices.get("allison").analysis["dsp"]["envelope_codebook"])  # read back from TOML
    assert book.shape == (128, an.LIFTER + 1)
    assert np.all(book[:, 0] == 0.0)  # shape only, no level


def test_matcher_off_is_identity_and_on_moves_a_frame_to_its_neighbours(allison: np.ndarray, rms: np.ndarray) -> None:
    _, _, ref_envs = _clip_statistics(allison)
    book = build_codebook(ref_envs)
    _, _, in_envs = _clip_statistics(rms)
    frame = in_envs[len(in_envs) // 2]
    assert np.array_equal(FrameMatcher(book, 0.0)(frame), frame)
    out = FrameMatcher(book, 1.0)(frame)
    nearest = lambda e: min(_high_band_distance(e, an.envelope_of(c[None])[0]) for c in book)  # noqa: E731
    assert nearest(out) < 0.5 * nearest(frame)
    # Below the crossover the input's own envelope (its vowel) stays.
    low = np.fft.rfftfreq(an.N_FFT, 1 / SR) < 600
    assert np.max(np.abs(out[low] - frame[low])) * an.TO_DB < 1.0


def test_conversion_with_frame_matching_brings_each_frame_nearer_the_reference(
    allison: np.ndarray, rms: np.ndarray
) -> None:
    stats = DspVoiceConverter.analyze_reference(AudioFrame(allison, SR))
    book = np.asarray(stats["envelope_codebook"])
    voice = types.SimpleNamespace(name="allison", analysis={"dsp": stats}, references=[])

    def mean_nearest(frames: float) -> float:
        conv = DspVoiceConverter(DspConfig(timbre_frames=frames))
        conv.prepare(voice)
        _, _, envs = _clip_statistics(conv.convert(AudioFrame(rms, SR)).samples)
        cands = an.envelope_of(book)
        return float(np.mean([min(_high_band_distance(e, c) for c in cands) for e in envs[::4]]))

    assert mean_nearest(1.0) < 0.8 * mean_nearest(0.0)
