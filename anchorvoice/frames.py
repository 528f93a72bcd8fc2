"""Frames: the small records that travel between stages.

Every frame carries ``timestamp`` (seconds of stream time of its first element, 0 for offline
jobs) and ``created`` (``time.perf_counter()`` when the frame was made), so that latency can be
measured at every stage. Audio is always mono float32 in [-1, 1].
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def _now() -> float:
    return time.perf_counter()


@dataclass
class AudioFrame:
    """Mono audio: ``samples`` (T,) float32 at ``sample_rate`` Hz."""

    samples: FloatArray
    sample_rate: int
    timestamp: float = 0.0
    created: float = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.samples.ndim != 1:
            raise ValueError(f"AudioFrame samples must be 1-D (mono), got shape {self.samples.shape}")
        if self.samples.dtype != np.float32:
            self.samples = self.samples.astype(np.float32)
        if self.sample_rate <= 0:
            raise ValueError(f"AudioFrame sample_rate must be positive, got {self.sample_rate}")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def with_samples(self, samples: FloatArray, sample_rate: int | None = None) -> AudioFrame:
        """A new frame with other samples, keeping the timestamp."""
        return replace(
            self,
            samples=np.ascontiguousarray(samples, dtype=np.float32),
            sample_rate=sample_rate or self.sample_rate,
            created=_now(),
        )


@dataclass
class TextFrame:
    """Text to speak, with its language (ISO 639-1 such as ``en``, ``zh``; ``auto`` to detect)."""

    text: str
    language: str = "en"
    timestamp: float = 0.0
    created: float = field(default_factory=_now)


@dataclass
class PhonemeFrame:
    """Phonemes of one sentence.

    ``ids`` (P,) int64 are indices into the frontend's symbol table (GPT-SoVITS v2 order for the
    built-in frontends); ``symbols`` the same as strings; ``word2ph`` the number of phones of each
    word/character (sums to P); ``bert`` optional (1024, P) float32 features (zeros for languages
    without BERT, as the official inference does).
    """

    ids: IntArray
    symbols: list[str]
    word2ph: list[int]
    language: str
    text: str = ""
    bert: FloatArray | None = None
    timestamp: float = 0.0
    created: float = field(default_factory=_now)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.symbols):
            raise ValueError("PhonemeFrame ids and symbols differ in length")


@dataclass
class TokenFrame:
    """Discrete semantic tokens (T,) int64 at ``frame_rate`` Hz (25 for GPT-SoVITS v2).

    ``final`` is False for a chunk of a longer stream that is still being generated.
    """

    tokens: IntArray
    frame_rate: float
    final: bool = True
    timestamp: float = 0.0
    created: float = field(default_factory=_now)


@dataclass
class FeatureFrame:
    """Continuous features ``features`` (C, T) at ``frame_rate`` Hz.

    ``features`` is a numpy array or a torch tensor (neural stages keep tensors to avoid copies);
    ``meta`` carries stage-specific extras (e.g. a decoder's latent for a vocoder).
    """

    features: Any
    frame_rate: float
    timestamp: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=_now)
