"""Subharmonic summation: the clip-level pitch check the demo reports converted outputs with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anchorvoice.plugins.dsp import analysis as an
from anchorvoice.plugins.dsp.harmonic_pitch import harmonic_sum_f0
from tests.plugins.speech import asterisk_clip
from tests.plugins.test_dsp_pitch import SPEAKERS, SR, synth


def weak_fundamental(f0: float, seconds: float = 2.0) -> np.ndarray:
    """Harmonics of ``f0`` with the fundamental 20 dB and the 2nd 12 dB under the 3rd and 4th (what the
    STFT shifter made of a Piper voice), a little vibrato and syllable-rate loudness."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / SR
    gains_db = {1: -20.0, 2: -12.0, 3: 0.0, 4: 0.0, 5: -6.0, 6: -9.0, 7: -12.0, 8: -15.0}
    x = sum(10 ** (g / 20) * np.sin(k * phase) for k, g in gains_db.items())
    return (0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)


@pytest.mark.parametrize("f0", [85.0, 120.0, 210.0])
def test_a_weak_fundamental_is_read_where_it_is(f0: float) -> None:
    est = harmonic_sum_f0(weak_fundamental(f0), SR)
    assert est is not None and abs(est / f0 - 1) < 0.03


@pytest.mark.parametrize("name", list(SPEAKERS))
def test_agrees_with_the_pitch_path_on_deep_and_high_voices(name: str, tmp_path: Path) -> None:
    est = harmonic_sum_f0(synth(name, tmp_path), SR)
    assert est is not None and abs(est / SPEAKERS[name][1] - 1) < 0.08  # librosa pYIN's median


def test_agrees_on_real_human_speech() -> None:
    est = harmonic_sum_f0(asterisk_clip("agent-pass", "auth-incorrect"), SR)
    assert est is not None and abs(est / 187.2 - 1) < 0.08  # librosa pYIN's median


def test_silence_and_short_clips_have_no_pitch() -> None:
    assert harmonic_sum_f0(np.zeros(SR, np.float32), SR) is None
    assert harmonic_sum_f0(np.ones(100, np.float32), SR) is None
    assert an.SAMPLE_RATE == SR  # the speakers above are rendered at the analysis rate
