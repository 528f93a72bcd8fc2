"""Compressor with a look-ahead brick-wall limiter: evens out loudness, and no sample ever
exceeds ``ceiling_db`` (what a stream's audio path needs before an encoder)."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.effects.base import RateEffect, db_to_gain, one_pole

_F64 = npt.NDArray[np.float64]


@dataclass
class CompressorConfig:
    """Parameters of the compressor/limiter."""

    threshold_db: float = -18.0
    """Level (dBFS peak) above which compression starts."""
    ratio: float = 4.0
    """Input dB over threshold per output dB (1: off; 20+: limiting)."""
    knee_db: float = 6.0
    """Soft-knee width around the threshold (0: hard knee)."""
    attack_ms: float = 5.0
    """Time for the gain reduction to reach a louder level."""
    release_ms: float = 80.0
    """Time for the gain reduction to recover."""
    makeup_db: float = 0.0
    """Gain added after compression."""
    ceiling_db: float = -1.0
    """Limiter ceiling: the output never exceeds it (dBFS peak); -1 dB leaves room for codecs."""
    lookahead_ms: float = 1.5
    """Limiter look-ahead: gain drops before a peak instead of on it (adds this much latency)."""
    limiter_release_ms: float = 50.0
    """Time for the limiter gain to recover after a peak."""


@numba.njit(cache=True)
def _compress(
    x: _F64,
    state: _F64,
    delay: _F64,
    threshold: float,
    ratio: float,
    knee: float,
    atk_a: float,
    rel_a: float,
    makeup: float,
    ceiling: float,
    lim_rel_a: float,
) -> _F64:
    """state = [smoothed gain reduction dB, limiter gain, delay write position, peak level].

    The level is a peak follower (instant rise, ``release`` fall) so a steady tone reads as its
    peak, not as its instantaneous value swinging through zero.

    ``delay`` holds the last L+1 compressed samples (L = look-ahead) and, in its second row,
    their required limiter gains; the limiter gain for the sample leaving the delay is the
    minimum requirement over the whole window, so it has dropped by the time the peak leaves.
    """
    out = np.empty_like(x)
    gr, lim, pos, peak = state[0], state[1], int(state[2]), state[3]
    size = delay.shape[1]
    for n in range(x.shape[0]):
        peak = max(abs(x[n]), rel_a * peak)
        level = 20.0 * np.log10(peak + 1e-12)
        over = level - threshold
        # Soft-knee static curve (Giannoulis, Massberg & Reiss, JAES 60(6), 2012, eq. 4).
        if 2.0 * over < -knee:
            target = 0.0
        elif 2.0 * abs(over) <= knee:
            target = (1.0 / ratio - 1.0) * (over + knee / 2.0) ** 2 / (2.0 * knee)
        else:
            target = (1.0 / ratio - 1.0) * over
        coef = atk_a if target < gr else rel_a
        gr = coef * gr + (1.0 - coef) * target
        y = x[n] * 10.0 ** ((gr + makeup) / 20.0)
        need = 1.0 if abs(y) <= ceiling else ceiling / abs(y)
        delay[0, pos] = y
        delay[1, pos] = need
        pos = (pos + 1) % size
        window_min = 1.0
        for i in range(size):
            window_min = min(window_min, delay[1, i])
        lim = min(window_min, lim_rel_a * lim + (1.0 - lim_rel_a) * 1.0)
        out[n] = delay[0, pos] * lim  # the oldest sample: written L samples ago
    state[0], state[1], state[2], state[3] = gr, lim, pos, peak
    return out


class _Dynamics(RateEffect):
    """Compressor + look-ahead limiter loop; subclasses say which parameters it runs with."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._rate = 0
        self._delay = np.zeros((2, 1))
        self.reset()

    @abstractmethod
    def _settings(self) -> CompressorConfig:
        """The parameters the processing loop uses."""

    @property
    def latency_samples(self) -> int:
        """The look-ahead, at the rate of the last block (48 kHz before any block)."""
        return int(round(self._settings().lookahead_ms * (self._rate or 48000) / 1000))

    def reset(self) -> None:
        """No gain reduction, empty look-ahead."""
        self._state = np.array([0.0, 1.0, 0.0, 0.0])
        self._delay = np.zeros((2, self.latency_samples + 1))
        self._delay[1] = 1.0

    def process(self, audio: AudioFrame) -> AudioFrame:
        """Compress and limit one block."""
        x = self._bind_rate(audio)
        cfg, sr = self._settings(), audio.sample_rate
        self._require(cfg.ratio >= 1.0, "ratio", "ratio must be >= 1")
        self._require(cfg.knee_db >= 0.0, "knee_db", "knee_db must be >= 0")
        self._require(cfg.ceiling_db <= 0.0, "ceiling_db", "ceiling_db must be <= 0 dBFS")
        self._require(0.0 <= cfg.lookahead_ms <= 20.0, "lookahead_ms", "lookahead_ms must be 0-20")
        if self._delay.shape[1] != self.latency_samples + 1:
            self.reset()  # look-ahead changed live: start a fresh delay line
        out = _compress(
            x,
            self._state,
            self._delay,
            cfg.threshold_db,
            cfg.ratio,
            cfg.knee_db,
            one_pole(cfg.attack_ms, sr),
            one_pole(cfg.release_ms, sr),
            cfg.makeup_db,
            db_to_gain(cfg.ceiling_db),
            one_pole(cfg.limiter_release_ms, sr),
        )
        return audio.with_samples(out.astype(np.float32))


@dataclass
class LimiterConfig:
    """Parameters of the peak limiter."""

    ceiling_db: float = -1.0
    """The output never exceeds this (dBFS peak)."""
    input_gain_db: float = 0.0
    """Gain before limiting (drive it to make a quiet voice louder without clipping)."""
    lookahead_ms: float = 1.5
    """Look-ahead: gain drops before a peak instead of on it (adds this much latency)."""
    release_ms: float = 50.0
    """Time for the gain to recover after a peak."""


class CompressorEffect(_Dynamics):
    """Feed-forward soft-knee compressor followed by a look-ahead peak limiter."""

    name = "compressor"
    Config = CompressorConfig

    def __init__(self, config: CompressorConfig | None = None) -> None:
        super().__init__(config)
        self.config: CompressorConfig

    def _settings(self) -> CompressorConfig:
        return self.config


class LimiterEffect(_Dynamics):
    """Look-ahead brick-wall peak limiter alone (the compressor's last stage, ratio 1)."""

    name = "limiter"
    Config = LimiterConfig

    def __init__(self, config: LimiterConfig | None = None) -> None:
        super().__init__(config)
        self.config: LimiterConfig

    def _settings(self) -> CompressorConfig:
        cfg = self.config
        return CompressorConfig(
            ratio=1.0,
            knee_db=0.0,
            makeup_db=cfg.input_gain_db,
            ceiling_db=cfg.ceiling_db,
            lookahead_ms=cfg.lookahead_ms,
            limiter_release_ms=cfg.release_ms,
        )
