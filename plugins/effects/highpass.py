"""Butterworth high-pass as cascaded biquads: removes DC, mains hum and handling rumble."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.effects.base import RateEffect


@dataclass
class HighPassConfig:
    """Parameters of the high-pass filter."""

    cutoff_hz: float = 80.0
    """-3 dB frequency; 80 Hz keeps a low male voice (f0 >= 85 Hz) and drops 50/60 Hz hum."""
    order: int = 4
    """Filter order, even, 2-8 (each 2 is one biquad: 12 dB/octave)."""


class HighPassEffect(RateEffect):
    """Butterworth high-pass (second-order sections with carried state: exact across blocks)."""

    name = "highpass"
    Config = HighPassConfig

    def __init__(self, config: HighPassConfig | None = None) -> None:
        super().__init__(config)
        self.config: HighPassConfig
        self._key: tuple[float, int, int] | None = None
        self._sos = np.zeros((0, 6))
        self._zi = np.zeros((0, 2))
        self._sosfilt: Any = None

    def reset(self) -> None:
        """Clear the filter memory."""
        self._zi = np.zeros((self._sos.shape[0], 2))

    def _design(self, rate: int) -> None:
        cfg = self.config
        key = (cfg.cutoff_hz, cfg.order, rate)
        if key == self._key:
            return
        self._require(cfg.order in (2, 4, 6, 8), "order", "order must be 2, 4, 6 or 8")
        self._require(0.0 < cfg.cutoff_hz < rate / 2, "cutoff_hz", f"cutoff must be in (0, {rate / 2:g}) Hz")
        from scipy import signal  # here, not at import: scipy.signal takes ~0.5 s to import

        sos = signal.butter(cfg.order, cfg.cutoff_hz, btype="highpass", fs=rate, output="sos")
        if self._sos.shape != sos.shape:
            self._zi = np.zeros((sos.shape[0], 2))
        self._sos, self._key, self._sosfilt = sos, key, signal.sosfilt

    def process(self, audio: AudioFrame) -> AudioFrame:
        """Filter one block."""
        x = self._bind_rate(audio)
        self._design(audio.sample_rate)
        out, self._zi = self._sosfilt(self._sos, x, zi=self._zi)
        return audio.with_samples(out.astype(np.float32))
