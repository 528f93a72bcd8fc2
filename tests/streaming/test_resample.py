"""Resampling: one-shot and streaming agree, round trips keep the signal."""

from __future__ import annotations

import numpy as np
import pytest

from anchorvoice.audio_io import resample
from anchorvoice.streaming.resample import StreamResampler


def _tone(sr: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_one_shot_round_trip_48k_16k_48k() -> None:
    x = _tone(48000)
    y = resample(resample(x, 48000, 16000), 16000, 48000)
    assert len(y) == len(x) and y.dtype == np.float32
    core = slice(2000, -2000)  # filter edges
    assert np.max(np.abs(y[core] - x[core])) < 1e-3


def test_one_shot_keeps_frequency() -> None:
    y = resample(_tone(48000, hz=1000.0), 48000, 32000)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 32000 / len(y) - 1000.0) < 2.0


def test_streaming_blocks_equal_whole_stream() -> None:
    x = _tone(48000, seconds=0.5, hz=300.0)
    rs = StreamResampler(48000, 32000)
    parts = [rs.process(x[i : i + 480]) for i in range(0, len(x), 480)]
    parts.append(rs.flush())
    y = np.concatenate(parts)
    whole = resample(x, 48000, 32000)
    assert abs(len(y) - len(whole)) <= 1
    n = min(len(y), len(whole))
    assert np.max(np.abs(y[:n] - whole[:n])) < 1e-3


def test_streaming_round_trip_has_no_seams() -> None:
    x = _tone(48000, seconds=0.5, hz=300.0)
    down, up = StreamResampler(48000, 16000), StreamResampler(16000, 48000)
    y = np.concatenate([up.process(down.process(x[i : i + 960])) for i in range(0, len(x), 960)])
    lag = int(np.argmax(np.correlate(y[:4800], x[:2400], "valid")))
    n = len(y) - lag - 2000
    assert np.max(np.abs(y[lag + 2000 : lag + n] - x[2000:n])) < 2e-3


def test_passthrough_and_bad_rates() -> None:
    x = _tone(16000, 0.1)
    rs = StreamResampler(16000, 16000)
    assert rs.passthrough and rs.delay() == 0.0
    np.testing.assert_array_equal(rs.process(x), x)
    with pytest.raises(ValueError, match="sample rate"):
        resample(x, 0, 16000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((2, 10), np.float32), 16000, 8000)
