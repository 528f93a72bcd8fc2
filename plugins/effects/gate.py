"""Noise gate: mutes the signal while its level stays under a threshold (room noise, fan, hiss)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.effects.base import RateEffect, db_to_gain, one_pole

DETECTOR_MS = 5.0
"""RMS detector time constant: follows syllables, ignores single-cycle peaks."""


@dataclass
class NoiseGateConfig:
    """Parameters of the noise gate."""

    threshold_db: float = -45.0
    """Detector level (dBFS RMS) above which the gate opens."""
    hysteresis_db: float = 6.0
    """The gate closes only below threshold - hysteresis, so a level near the threshold does not chatter."""
    attack_ms: float = 1.0
    """Time to open fully (a linear ramp in dB over the range; fast, so word onsets are kept)."""
    hold_ms: float = 50.0
    """Time the gate stays open after the level falls (keeps word endings and short pauses)."""
    release_ms: float = 80.0
    """Time to close fully after the hold (a linear fade in dB down to ``range_db``)."""
    range_db: float = -80.0
    """Attenuation while closed (-80 dB: silent; -20 dB: ducked)."""


@numba.njit(cache=True)
def _gate(
    x: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    det_a: float,
    open_pow: float,
    close_pow: float,
    atk_step: float,
    rel_step: float,
    hold: int,
    floor_db: float,
) -> npt.NDArray[np.float64]:
    """state = [detector power, gain dB, is_open, hold counter]; steps are dB per sample."""
    out = np.empty_like(x)
    power, gain, is_open, counter = state[0], state[1], state[2], state[3]
    for n in range(x.shape[0]):
        power = det_a * power + (1.0 - det_a) * x[n] * x[n]
        if power > open_pow:
            is_open = 1.0
            counter = hold
        elif is_open > 0.5 and power < close_pow:
            if counter > 0:
                counter -= 1
            else:
                is_open = 0.0
        if is_open > 0.5:
            gain = min(0.0, gain + atk_step)
        else:
            gain = max(floor_db, gain - rel_step)
        out[n] = x[n] * 10.0 ** (gain / 20.0)
    state[0], state[1], state[2], state[3] = power, gain, is_open, counter
    return out


class NoiseGateEffect(RateEffect):
    """RMS-detecting gate with hysteresis, hold, and smoothed attack/release."""

    name = "noise_gate"
    Config = NoiseGateConfig

    def __init__(self, config: NoiseGateConfig | None = None) -> None:
        super().__init__(config)
        self.config: NoiseGateConfig
        self.reset()

    def reset(self) -> None:
        """Closed gate, silent detector."""
        self._state = np.array([0.0, self.config.range_db, 0.0, 0.0])

    def process(self, audio: AudioFrame) -> AudioFrame:
        """Gate one block."""
        x = self._bind_rate(audio)
        cfg, sr = self.config, audio.sample_rate
        self._require(cfg.range_db <= 0.0, "range_db", "range_db must be <= 0 dB")
        self._require(cfg.hysteresis_db >= 0.0, "hysteresis_db", "hysteresis_db must be >= 0")
        out = _gate(
            x,
            self._state,
            one_pole(DETECTOR_MS, sr),
            db_to_gain(cfg.threshold_db) ** 2,
            db_to_gain(cfg.threshold_db - cfg.hysteresis_db) ** 2,
            -cfg.range_db / max(1.0, cfg.attack_ms * sr / 1000),
            -cfg.range_db / max(1.0, cfg.release_ms * sr / 1000),
            int(cfg.hold_ms * sr / 1000),
            cfg.range_db,
        )
        return audio.with_samples(out.astype(np.float32))
