"""What the built-in effects share: rate-dependent coefficients and one-pole time constants."""

from __future__ import annotations

import math
from typing import Any

from engine.errors import ConfigError
from engine.frames import AudioFrame
from engine.stages import Effect


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

    def _bind_rate(self, audio: AudioFrame) -> None:
        if audio.sample_rate != self._rate:
            self._rate = audio.sample_rate
            self.reset()

    def _require(self, ok: bool, key: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{rule} (got {getattr(self.config, key)!r})", source=self.name, key=key)
