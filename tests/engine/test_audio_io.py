"""Audio file reading: missing, not audio, empty, stereo, other rates, NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.audio_io import read_audio, write_audio
from anchorvoice.errors import AudioInputError
from anchorvoice.frames import AudioFrame
from tests.conftest import asterisk_clip


def test_missing_and_non_audio_files(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="not found"):
        read_audio(tmp_path / "nope.wav")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(AudioInputError, match="cannot read .*notes.wav as audio"):
        read_audio(text)
    with pytest.raises(AudioInputError, match="directory"):
        read_audio(tmp_path)


def test_stereo_rate_and_nan_are_cleaned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    t = np.arange(44100) / 44100
    left = np.sin(2 * np.pi * 440 * t).astype(np.float32) * 0.5
    stereo = np.stack([left, left], axis=1)
    stereo[10, 0] = np.nan
    p = tmp_path / "st.wav"
    sf.write(str(p), stereo, 44100, subtype="FLOAT")
    frame = read_audio(p, sample_rate=16000)
    assert frame.sample_rate == 16000 and frame.samples.ndim == 1
    assert abs(len(frame.samples) - 16000) <= 1
    assert np.all(np.isfinite(frame.samples))
    assert "NaN" in caplog.text
    spec = np.abs(np.fft.rfft(frame.samples))
    assert abs(np.argmax(spec) * 16000 / len(frame.samples) - 440) < 3


def test_empty_file_refused(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    sf.write(str(p), np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioInputError, match="no samples"):
        read_audio(p)


def test_write_read_round_trip(tmp_path: Path) -> None:
    x = (0.3 * np.sin(np.linspace(0, 100, 8000))).astype(np.float32)
    p = write_audio(tmp_path / "sub" / "x.wav", AudioFrame(x, 8000))
    y = read_audio(p)
    assert y.sample_rate == 8000 and np.max(np.abs(y.samples - x)) < 1e-3


def test_real_speech_g722_decodes() -> None:
    frame = read_audio(asterisk_clip("hello-world"))
    assert frame.sample_rate == 16000 and 1.0 < frame.duration < 2.0
    assert np.sqrt(np.mean(frame.samples**2)) > 0.01
