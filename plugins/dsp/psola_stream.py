"""TD-PSOLA for live audio: the whole-clip method of :mod:`anchorvoice.plugins.dsp.psola`, made causal.

Pitch marks are placed as the input arrives: each cycle's period comes from the autocorrelation of the
last ``WINDOW`` samples (80-400 Hz, the previous period preferred, so the track does not jump an
octave), and the mark is the peak of the low-passed signal within a quarter period of where the
previous mark predicts it; unvoiced input gets a mark every 5 ms. Two-period grains around the marks
are laid down ``ratio`` times closer together (squeezed by ``formant`` in time when the resonances
move), exactly as offline. A grain needs one period past its mark, and an output sample is final
once no later grain can reach it, so the output is ``LATENCY`` samples behind the input: 40 ms at
16 kHz, against 32 ms for the STFT shifter, enough for a period of 12.5 ms (80 Hz).

The ratios are the caller's, set before each block (the converter's running statistics, as for the
STFT shifter). The output level follows the input's over about a second (PSOLA adds grains closer
together or further apart than they were cut).
"""

from __future__ import annotations

import bisect

import numpy as np
import numpy.typing as npt

from anchorvoice.plugins.dsp.analysis import LevelFollower
from anchorvoice.plugins.dsp.psola import GRAIN_SHRINK, MARK_SEARCH, SMOOTH_S, grain, shaped_grain

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

RATE = 16000
LATENCY = 640
"""Output delay in samples (40 ms at 16 kHz)."""
WINDOW = 384
"""Autocorrelation window for each cycle's period (24 ms: two cycles at 80 Hz)."""
MIN_LAG, MAX_LAG = RATE // 400, RATE // 80
UNVOICED_HOP = RATE // 200
VOICING = 0.45
"""Normalised autocorrelation a period must reach to count as voiced."""
MAX_HALF = MAX_LAG
_KEEP = 4 * RATE // 10
"""Input kept behind the newest mark (room for grains and windows)."""
_LEVEL_MEMORY = 1.0 - 1.0 / 100.0
_LEVEL_LIMIT = 2.0


class StreamPsola:
    """Causal pitch/formant shifter: ``process(block, ratio, formant)`` returns ``len(block)`` samples,
    ``LATENCY`` behind."""

    def __init__(self) -> None:
        taps = np.hanning(max(3, int(SMOOTH_S * RATE)) + 2)[1:-1]
        self._taps = taps / taps.sum()
        self.reset()

    def reset(self) -> None:
        self._x: F64 = np.zeros(LATENCY)  # input; absolute index of _x[0] is _x0 (starts LATENCY early)
        self._x0 = -LATENCY
        self._y: F64 = np.zeros(LATENCY + 4 * MAX_LAG)  # output accumulator from _y0 on
        self._y0 = -LATENCY
        self._pos: list[int] = []  # mark positions (absolute, increasing)
        self._per: list[float] = []  # their periods (0 = unvoiced)
        self._next = 0  # where the next mark is looked for
        self._sign = 1.0
        self._ts = 0.0  # synthesis time of the next grain
        self._was_voiced = False
        self._n_in = 0
        self._n_out = -LATENCY
        self._level = LevelFollower(_LEVEL_MEMORY, _LEVEL_LIMIT)

    # -- analysis -------------------------------------------------------------------------
    def _period(self, end: int, previous: float) -> float:
        """Period (samples) of the input just before absolute position ``end``; 0 when unvoiced."""
        size = WINDOW if previous <= 0 else int(np.clip(3 * previous, 160, WINDOW))  # ~3 cycles in a run
        lo = end - size - self._x0
        if lo < 0:
            return 0.0
        w = self._x[lo : lo + size]
        w = w - w.mean()
        e = float(np.dot(w, w))
        if e < size * 1e-7:
            return 0.0
        spec = np.fft.rfft(w, 2 * WINDOW)
        r = np.fft.irfft(spec.real**2 + spec.imag**2, 2 * WINDOW)[: MAX_LAG + 2]
        lags = np.arange(len(r))
        r = r / e * size / np.maximum(size - lags, size // 4)  # unbiased, 1 at lag 0
        best = 0
        if previous > 0:  # the previous period's neighbourhood first: no octave jumps within a run
            a, b = max(MIN_LAG, int(previous * 0.75)), min(MAX_LAG, int(previous * 1.35) + 1)
            if b > a:
                best = a + int(np.argmax(r[a:b]))
                best = best if r[best] >= VOICING else 0
        if best == 0:
            cand = r[MIN_LAG : MAX_LAG + 1]
            peak = float(cand.max())
            if peak < VOICING:
                return 0.0
            # the shortest lag close to the best one (a period, not a multiple of it)
            best = MIN_LAG + int(np.nonzero(cand >= 0.9 * peak)[0][0])
            while best + 1 <= MAX_LAG and r[best + 1] > r[best]:
                best += 1
        # a period twice the true one correlates as well as the true one: prefer the half when it does
        half = int(round(best / 2))
        if half - 1 >= MIN_LAG:
            k = half - 1 + int(np.argmax(r[half - 1 : half + 2]))
            if r[k] >= 0.85 * r[best]:
                best = k
        return self._refine(r, best)

    @staticmethod
    def _refine(r: F64, k: int) -> float:
        if 0 < k < len(r) - 1:
            a, b, c = r[k - 1], r[k], r[k + 1]
            den = a - 2 * b + c
            if den < 0:  # a parabola through a peak: the vertex, within half a lag
                return float(k + np.clip(0.5 * (a - c) / den, -0.5, 0.5))
        return float(k)

    def _lowpassed(self, lo: int, hi: int) -> F64:
        """The low-passed input over absolute [lo, hi) (what marks are picked on)."""
        m = len(self._taps) // 2
        a, b = max(0, lo - m - self._x0), min(len(self._x), hi + m - self._x0)
        seg = np.convolve(self._x[a:b], self._taps, mode="same")
        start = lo - (a + self._x0)
        return seg[start : start + (hi - lo)] * self._sign

    def _find_marks(self) -> None:
        """Place every mark whose grain the input already holds."""
        while True:
            t = self._next
            prev = self._per[-1] if self._per else 0.0
            p = self._period(t, prev)
            if p <= 0:
                if t + UNVOICED_HOP > self._n_in:
                    return
                self._pos.append(t)
                self._per.append(0.0)
                self._next = t + UNVOICED_HOP
                continue
            in_run = prev > 0
            half = max(1, int(MARK_SEARCH * p))
            lo, hi = (t - half, t + half + 1) if in_run else (t, t + int(p) + 1)
            if hi + int(p) + len(self._taps) > self._n_in:  # the grain around the mark is not all here
                return
            if not in_run:  # a new voiced run: the stronger polarity of its first cycle
                seg = self._x[lo - self._x0 : hi - self._x0]
                self._sign = 1.0 if seg.max(initial=0.0) >= -seg.min(initial=0.0) else -1.0
            m = lo + int(np.argmax(self._lowpassed(lo, hi)))
            self._pos.append(m)
            self._per.append(p)
            self._next = max(m + 1, int(round(m + p)))

    # -- synthesis ------------------------------------------------------------------------
    def _synthesise(self, ratio: float, formant: float) -> None:
        pos, per = self._pos, self._per
        while pos:
            i = bisect.bisect_left(pos, self._ts)
            if i >= len(pos):  # the nearest mark may still come
                return
            if i > 0 and self._ts - pos[i - 1] <= pos[i] - self._ts:
                i -= 1
            m, p = pos[i], per[i]
            if p > 0:
                if not self._was_voiced:
                    self._ts = float(m)
                local = float(pos[i + 1] - m) if i + 1 < len(pos) and per[i + 1] > 0 else p
                step = (local if 0.5 * p <= local <= 1.5 * p else p) / ratio
                half = min(MAX_HALF, max(1, int(round(p / max(1.0, ratio) ** GRAIN_SHRINK))))
                g = shaped_grain(self._x, m - self._x0, half, formant, RATE / 2.0, RATE)
            else:
                step = float(UNVOICED_HOP)
                g = grain(self._x, int(round(self._ts)) - self._x0, UNVOICED_HOP)
            self._was_voiced = p > 0
            start = int(round(self._ts)) - (len(g) - 1) // 2 - self._y0
            end = start + len(g)
            if end > len(self._y):
                self._y = np.concatenate([self._y, np.zeros(end - len(self._y) + RATE // 10)])
            if start >= 0:
                self._y[start:end] += g
            else:
                self._y[: max(0, end)] += g[-start:] if end > 0 else 0.0
            self._ts += max(step, 1.0)
            # marks far behind the synthesis point are no longer needed
            drop = bisect.bisect_left(pos, self._ts - 2 * MAX_LAG) - 1
            if drop > 0:
                del pos[:drop], per[:drop]

    # -- blocks ---------------------------------------------------------------------------
    def process(self, block: npt.NDArray[np.floating], ratio: float, formant: float = 1.0) -> F32:
        x = np.asarray(block, dtype=np.float64)
        self._x = np.concatenate([self._x, x])
        self._n_in += len(x)
        self._find_marks()
        self._synthesise(float(np.clip(ratio, 0.1, 10.0)), float(np.clip(formant, 0.25, 4.0)))
        # emit the next len(block) output samples (LATENCY behind the input)
        a = self._n_out - self._y0
        out = self._y[a : a + len(x)].copy()
        if len(out) < len(x):
            out = np.concatenate([out, np.zeros(len(x) - len(out))])
        self._n_out += len(x)
        out *= self._level.gain(float(np.dot(x, x)), float(np.dot(out, out)))
        self._trim()
        return out.astype(np.float32)

    def _trim(self) -> None:
        keep_from = min(self._next, int(self._ts)) - _KEEP
        if keep_from - self._x0 > RATE:
            cut = keep_from - self._x0
            self._x = self._x[cut:]
            self._x0 += cut
        done = self._n_out - MAX_LAG - self._y0
        if done > RATE:
            self._y = self._y[done:]
            self._y0 += done
