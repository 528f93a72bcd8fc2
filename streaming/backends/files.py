"""File source, file sink and null sink: the device-free ends of a live path.

They run at whatever pace the caller drives them (tests, rendering, the soak benchmark); a
:class:`FileSource` can also pace itself to real time (``realtime=True``) to stand in for a
microphone.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf

from anchorvoice.audio_io import read_audio
from anchorvoice.errors import AudioInputError
from anchorvoice.frames import FloatArray


class FileSource:
    """Blocks of ``block_size`` samples from an audio file, resampled to ``sample_rate``.

    The last block is zero-padded to full size; ``read`` returns None after it (or loops with
    ``loop=True``).
    """

    def __init__(self, path: str | Path, sample_rate: int, block_size: int, *, loop: bool = False,
                 realtime: bool = False) -> None:
        if block_size <= 0:
            raise AudioInputError(f"block_size must be positive, got {block_size}")
        self.path = Path(path)
        self.samples = read_audio(self.path, sample_rate).samples
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.loop = loop
        self.realtime = realtime
        self.position = 0
        self._t0: float | None = None
        self._blocks = 0

    def read(self) -> FloatArray | None:
        if self.position >= len(self.samples):
            if not self.loop:
                return None
            self.position = 0
        block = self.samples[self.position : self.position + self.block_size]
        self.position += self.block_size
        if len(block) < self.block_size:
            block = np.concatenate([block, np.zeros(self.block_size - len(block), np.float32)])
        if self.realtime:
            # Sleep until this block would have been captured by a real microphone.
            if self._t0 is None:
                self._t0 = time.perf_counter()
            self._blocks += 1
            due = self._t0 + self._blocks * self.block_size / self.sample_rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        return block


class FileSink:
    """Writes blocks to an audio file as they come (WAV/FLAC/OGG by extension, float WAV by default)."""

    def __init__(self, path: str | Path, sample_rate: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subtype = "FLOAT" if self.path.suffix.lower() in (".wav", "") else None
        try:
            self._file: sf.SoundFile | None = sf.SoundFile(
                str(self.path), "w", samplerate=sample_rate, channels=1, subtype=subtype
            )
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioInputError(f"cannot write audio to {self.path} ({exc}); use a .wav/.flac/.ogg name") from None
        self.samples_written = 0

    def write(self, samples: FloatArray) -> None:
        if self._file is None:
            raise AudioInputError(f"{self.path} is already closed")
        self._file.write(np.asarray(samples, dtype=np.float32))
        self.samples_written += len(samples)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class NullSink:
    """Discards audio, counting samples and the peak level (for benchmarks and dry runs)."""

    def __init__(self) -> None:
        self.samples_written = 0
        self.peak = 0.0

    def write(self, samples: FloatArray) -> None:
        self.samples_written += len(samples)
        if len(samples):
            self.peak = max(self.peak, float(np.max(np.abs(samples))))

    def close(self) -> None:
        pass
