"""What the built-in effects share: rate-dependent coefficients and one-pole time constants."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from anchorvoice.audio_io import clean_samples
from anchorvoice.engine.stages import Effect
from anchorvoice.errors import ConfigError
from anchorvoice.frames import AudioFrame


def one_pole(ms: float, sample_rate: int) -> float:
    """Per-sample smoothing coefficient reaching 1 - 1/e of a step in ``ms`` (0 ms: instant)."""
    if ms <= 0.0:
        return 0.0
    return math.exp(-1000.0 / (ms * sample_rate))


def db_to_gain(db: float) -> float:
    """dB -> linear amplitude."""
    return 10.0 ** (db / 20.0)


class RateEffect(Effect):
    """An effect whose state depends on the sample rate: state is rebuilt when the rate changes."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._rate = 0

    def _bind_rate(self, audio: AudioFrame) -> np.ndarray:
        """Rebuild state on a new rate; return the block as float64 with NaN/inf zeroed.

        One NaN would otherwise stay in a filter's or detector's state and mute the stream for
        good, so non-finite samples (from a misbehaving upstream stage) are cleaned and logged.
        """
        if audio.sample_rate != self._rate:
            self._rate = audio.sample_rate
            self.reset()
        return clean_samples(audio.samples, f"effect {self.name!r} input").astype(np.float64)

    def _require(self, ok: bool, key: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{rule} (got {getattr(self.config, key)!r})", source=self.name, key=key)
