"""Pitch that does not jump octaves, on deep (75-90 Hz), high (260-290 Hz) and real human speech.

Speech: flite's diphone ``kal`` and ARCTIC-built ``slt`` with their pitch set to a deep or high
mean (``--setf int_f0_target_mean``), espeak-ng at a low and a high pitch, and Allison, the human
speaker of the asterisk prompts. Expected medians are librosa pYIN's (64 ms frames) on the same
audio; the single-threshold YIN that came before read the deep ones 7-14 % high.
"""

from __future__ import annotations

import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.audio_io import read_audio
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp import analysis as an
from anchorvoice.plugins.dsp import pitch
from anchorvoice.plugins.dsp.converter import DspVoiceConverter
from anchorvoice.plugins.dsp.tracker import InputTracker
from tests.plugins.speech import asterisk_clip

SR = 16000
TEXT = "Please enter your password followed by the pound key."
OTHER = "Thank you for calling. Please check the number and dial again, or stay on the line."

SPEAKERS = {
    # name: (command, librosa pYIN median on TEXT in Hz)
    "kal_deep": (["flite", "-voice", "kal", "--setf", "int_f0_target_mean=90"], 80.1),
    "espeak_deep": (["espeak-ng", "-v", "en+m3", "-p", "10"], 74.7),
    "kal_high": (["flite", "-voice", "kal", "--setf", "int_f0_target_mean=280"], 285.4),
    "slt_high": (["flite", "-voice", "slt", "--setf", "int_f0_target_mean=280"], 283.8),
    "espeak_high": (["espeak-ng", "-v", "en+f4", "-p", "85"], 261.7),
}


def synth(name: str, tmp: Path, text: str = TEXT) -> np.ndarray:
    cmd, _ = SPEAKERS[name]
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} not installed")
    out = tmp / f"{name}.wav"
    if cmd[0] == "flite":
        subprocess.run([*cmd, "-t", text, "-o", str(out)], check=True, capture_output=True)
    else:
        subprocess.run([*cmd, "-w", str(out), text], check=True, capture_output=True)
    return read_audio(out, SR).samples


def track(x: np.ndarray) -> np.ndarray:
    f0, voiced = an.voiced_frames(x)
    return f0[voiced]


def octave_error_rate(f0: np.ndarray, truth: float, octaves: float = 0.8) -> float:
    """Share of voiced frames further than ``octaves`` from the speaker's true median (the
    sentences' intonation stays within about half an octave of it)."""
    return float(np.mean(np.abs(np.log2(f0 / truth)) > octaves))


@pytest.mark.parametrize("name", list(SPEAKERS))
def test_median_f0_of_deep_and_high_voices(name: str, tmp_path: Path) -> None:
    f0 = track(synth(name, tmp_path))
    truth = SPEAKERS[name][1]
    assert len(f0) > 60, "most of the sentence is voiced"
    assert abs(np.median(f0) / truth - 1) < 0.05
    assert octave_error_rate(f0, truth) < 0.01


def test_median_f0_of_real_human_speech() -> None:
    f0 = track(asterisk_clip("agent-pass", "auth-incorrect"))
    assert abs(np.median(f0) / 187.2 - 1) < 0.05  # pYIN's 187.2 Hz
    # Her questions rise almost an octave over the median (pYIN agrees), so only whole octaves count.
    assert octave_error_rate(f0, 187.2, octaves=1.0) == 0.0


@pytest.mark.parametrize("name", ["kal_deep", "espeak_deep", "slt_high"])
def test_live_tracker_follows_deep_and_high_voices(name: str, tmp_path: Path) -> None:
    """The streaming tracker (no whole-clip statistics) reaches the same median within 5 %."""
    x = synth(name, tmp_path)
    tr = InputTracker(silence_db=-50.0)
    frames = an.frames_of(x, an.N_FFT, an.HOP)
    log_env = np.zeros(an.N_FFT // 2 + 1)
    for frame in frames:
        tr.observe(frame, log_env)
    assert tr.median_f0 is not None
    assert abs(tr.median_f0 / SPEAKERS[name][1] - 1) < 0.05


def test_continuity_path_ignores_a_lone_octave_jump() -> None:
    """Frames whose best candidate is the octave (a typical YIN error) stay on the voice's pitch."""
    n = 60
    freqs = np.tile([100.0, 200.0, 50.0, 300.0], (n, 1))
    probs = np.tile([0.6, 0.3, 0.05, 0.0], (n, 1))
    probs[20:23] = [0.3, 0.6, 0.05, 0.0]  # three frames prefer the octave above
    f0 = pitch.viterbi(freqs, probs)
    assert np.all(f0 == 100.0)


@pytest.mark.parametrize(("source", "target"), [("kal_deep", "slt_high"), ("slt_high", "kal_deep")])
def test_conversion_lands_on_the_target_pitch_across_octaves(source: str, target: str, tmp_path: Path) -> None:
    """A deep voice converted toward a high one (and back) lands within 10 % of the target's median."""
    stats = DspVoiceConverter.analyze_reference(AudioFrame(synth(target, tmp_path, OTHER + " " + TEXT), SR))
    assert abs(stats["median_f0_hz"] / SPEAKERS[target][1] - 1) < 0.1
    conv = DspVoiceConverter()
    conv.prepare(types.SimpleNamespace(name=target, analysis={"dsp": stats}, references=[]))
    y = conv.convert(AudioFrame(synth(source, tmp_path), SR)).samples
    assert abs(np.median(track(y)) / stats["median_f0_hz"] - 1) < 0.1
