"""Gain in dB, with a short ramp on changes so live adjustments do not click."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.effects.base import RateEffect, db_to_gain

RAMP_MS = 10.0
"""Length of the linear ramp after a gain change: clicks become inaudible above ~5 ms."""


@dataclass
class GainConfig:
    """Parameters of the gain effect."""

    gain_db: float = 0.0
    """Gain in dB (negative to attenuate)."""


class GainEffect(RateEffect):
    """Multiplies by ``10 ** (gain_db / 20)``; ramps over 10 ms when ``gain_db`` changes."""

    name = "gain"
    Config = GainConfig

    def __init__(self, config: GainConfig | None = None) -> None:
        super().__init__(config)
        self.config: GainConfig
        self.reset()

    def reset(self) -> None:
        """Jump to the configured gain (no ramp)."""
        self._from = self._to = db_to_gain(self.config.gain_db)
        self._pos = 0
        self._ramp = 1

    def process(self, audio: AudioFrame) -> AudioFrame:
        """Apply the gain to one block."""
        x = self._bind_rate(audio)
        target = db_to_gain(self.config.gain_db)
        if target != self._to:
            # Start a new ramp from wherever the current one has got to.
            self._from = self._current()
            self._to = target
            self._pos = 0
            self._ramp = max(1, int(RAMP_MS * audio.sample_rate / 1000))
        n = len(x)
        t = np.minimum((self._pos + 1 + np.arange(n)) / self._ramp, 1.0)
        g = self._from + (self._to - self._from) * t
        self._pos = min(self._pos + n, self._ramp)
        return audio.with_samples((x * g).astype(np.float32))

    def _current(self) -> float:
        t = min(self._pos / self._ramp, 1.0)
        return self._from + (self._to - self._from) * t
