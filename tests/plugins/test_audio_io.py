"""Built-in audio sources/sinks: registration, the stage contract, file round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.testing import check_stage
from anchorvoice.errors import AudioInputError, DeviceError
from anchorvoice.plugins.audio_io import FileAudioSink, FileAudioSource, NullAudioSink


def test_registered_through_the_entry_point(builtin_plugins: PluginManager) -> None:
    assert {"file", "device"} <= set(builtin_plugins.names("audio_source"))
    assert {"file", "null", "device", "virtual_mic"} <= set(builtin_plugins.names("audio_sink"))
    assert builtin_plugins.plugin_of("audio_sink", "virtual_mic") == "audio-io"


@pytest.fixture
def tone_file(tmp_path: Path) -> Path:
    t = np.arange(int(0.25 * 16000)) / 16000
    p = tmp_path / "tone.wav"
    sf.write(p, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="FLOAT")
    return p


def test_sources_and_sinks_pass_the_contract_checker(tone_file: Path, tmp_path: Path) -> None:
    check_stage(FileAudioSource, config=FileAudioSource.Config(path=str(tone_file)))
    check_stage(FileAudioSink, config=FileAudioSink.Config(path=str(tmp_path / "o.wav")))
    check_stage(NullAudioSink)


def test_file_source_to_file_sink_round_trip(tone_file: Path, tmp_path: Path) -> None:
    src = FileAudioSource(FileAudioSource.Config(path=str(tone_file)))
    src.open(48000, 480)  # resampled to the stream's rate on the way in
    sink = FileAudioSink(FileAudioSink.Config(path=str(tmp_path / "copy.wav")))
    sink.open(48000, 480)
    blocks = 0
    while (block := src.read()) is not None:
        assert block.shape == (480,) and block.dtype == np.float32
        sink.write(block)
        blocks += 1
    sink.close()
    assert blocks == 25  # 0.25 s at 48 kHz in 10 ms blocks, the last one zero-padded
    data, rate = sf.read(tmp_path / "copy.wav", dtype="float32")
    assert rate == 48000 and len(data) == 25 * 480
    spectrum = np.abs(np.fft.rfft(data[:12000]))
    assert abs(np.argmax(spectrum) * 48000 / 12000 - 440) <= 4


def test_file_source_loops_when_asked(tone_file: Path) -> None:
    src = FileAudioSource(FileAudioSource.Config(path=str(tone_file), loop=True))
    src.open(16000, 1000)
    assert all(src.read() is not None for _ in range(20))  # 20 000 samples from a 4 000-sample file


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="needs a path"):
        FileAudioSource().open(16000, 160)
    with pytest.raises(AudioInputError, match="not found"):
        FileAudioSource(FileAudioSource.Config(path=str(tmp_path / "missing.wav"))).open(16000, 160)


def test_null_sink_counts() -> None:
    sink = NullAudioSink()
    sink.open(48000, 480)
    sink.write(np.full(480, 0.5, np.float32))
    assert sink.samples_written == 480
