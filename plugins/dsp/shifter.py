"""Streaming pitch + formant shifter: STFT, peak-locked phase vocoder, spectral-envelope warping.

Per frame (N_FFT = 512, HOP = 128 at 16 kHz, Hann analysis and synthesis windows, zero-phase):

1. log envelope ``E`` of the frame (true envelope, :func:`analysis.log_envelopes`);
2. the flattened spectrum ``X / E`` is pitch-shifted by ``ratio`` with the peak-locked phase
   vocoder of Laroche & Dolson ("New phase-vocoder techniques for real-time pitch shifting",
   JAES 47(11), 1999): each spectral peak moves with its region of influence so that its
   instantaneous frequency lands on ``ratio`` times itself (fractional bins, interpolated), and
   the region's phases are rotated by the peak's accumulated ``hop * (ratio - 1) * omega`` so the
   partial stays phase-coherent from frame to frame; shifting down refills the emptied top band;
3. the result is multiplied by the target envelope ``exp(f(warp(E, formant_ratio)) + eq)``, where
   ``f`` is an optional per-frame envelope map (the converter's nearest-reference-frame matching),
   and optionally by a slow loudness correction.

With ``ratio = formant_ratio = 1`` and ``eq = 0`` the frame comes out unchanged, so the shifter is
transparent. Input is consumed block by block; output has the same length, delayed by
``LATENCY`` samples. Hot loop in numba.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import numpy.typing as npt

from anchorvoice.plugins.dsp.analysis import HOP, N_FFT, LevelFollower, log_envelopes, warp

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
FrameHook = Callable[[F64, F64], None]
"""Called with each analysed input frame (N_FFT,) and its natural-log envelope (N_FFT//2+1,)."""

LATENCY = N_FFT
"""Samples of delay: N_FFT - HOP for the overlap-add to complete, plus HOP so that any block size
can be answered at once (32 ms at 16 kHz)."""

_K = N_FFT // 2 + 1
_WINDOW = np.hanning(N_FFT + 1)[:-1]
_OLA_GAIN = float(np.sum(_WINDOW**2) / HOP)  # Hann^2 at N/4 hops sums to 1.5
_PEAK_FLOOR = 1e-3  # peaks more than 60 dB under the frame's largest are noise, not partials


@numba.njit(cache=True)
def _shift_frame(
    mag: F64,
    flat_re: F64,
    flat_im: F64,
    phase: F64,
    prev_phase: F64,
    prev_rot: F64,
    ratio: float,
    hop: int,
    n_fft: int,
    frame_index: int,
) -> tuple[F64, F64, F64]:
    """Peak-locked pitch shift of one zero-phase frame -> (out real, out imag, rotation per input bin).

    ``mag`` finds the peaks; the envelope-flattened spectrum ``flat_re + i flat_im`` is what moves.
    Each region moves by the fractional amount that puts its peak's instantaneous frequency at
    ``ratio`` times itself (interpolating between bins, which zero-phase framing makes smooth);
    rounding to whole bins instead leaves up to half a bin (15 Hz) of pitch error per partial.
    """
    k_bins = mag.shape[0]
    out_re = np.zeros(k_bins)
    out_im = np.zeros(k_bins)
    rot = np.zeros(k_bins)
    two_pi = 2.0 * np.pi
    top = 0.0
    for k in range(k_bins):
        top = max(top, mag[k])
    floor = top * _PEAK_FLOOR
    # Peaks, then regions of influence bounded by the lowest bin between neighbouring peaks.
    peaks = np.empty(k_bins, np.int64)
    n_peaks = 0
    for k in range(1, k_bins - 1):
        if mag[k] > mag[k - 1] and mag[k] >= mag[k + 1] and mag[k] > floor:
            peaks[n_peaks] = k
            n_peaks += 1
    lo = 0
    for i in range(n_peaks):
        p = peaks[i]
        if i + 1 < n_peaks:
            hi = p + 1
            for k in range(p + 1, peaks[i + 1]):
                if mag[k] < mag[hi]:
                    hi = k
        else:
            hi = k_bins
        # Instantaneous frequency of the peak (rad/sample) from the phase advance over one hop.
        omega = two_pi * p / n_fft
        dphi = phase[p] - prev_phase[p] - omega * hop
        dphi = dphi - two_pi * np.round(dphi / two_pi)
        inst = omega + dphi / hop
        theta = prev_rot[p] + hop * (ratio - 1.0) * inst
        theta = theta - two_pi * np.round(theta / two_pi)
        shift = (ratio - 1.0) * inst * n_fft / two_pi  # in bins
        cos_t, sin_t = np.cos(theta), np.sin(theta)
        for k in range(lo, hi):
            rot[k] = theta
        j_lo = max(0, int(np.ceil(lo + shift)))
        j_hi = min(k_bins - 1, int(np.floor(hi - 1 + shift)))
        for j in range(j_lo, j_hi + 1):
            src = j - shift
            i0 = min(max(int(np.floor(src)), lo), hi - 1)
            i1 = min(i0 + 1, hi - 1)
            f = min(max(src - i0, 0.0), 1.0)
            re = (1.0 - f) * flat_re[i0] + f * flat_re[i1]
            im = (1.0 - f) * flat_im[i0] + f * flat_im[i1]
            out_re[j] += re * cos_t - im * sin_t
            out_im[j] += re * sin_t + im * cos_t
        lo = hi
    if ratio < 1.0:
        # Shifting down leaves the band above ratio * Nyquist empty. Refill it with copies of the
        # excitation an octave-ish below, frequency-shifted (phase advancing span bins per sample
        # index), the way spectral band replication rebuilds a codec's missing high band.
        filled = int(np.floor((k_bins - 1) * ratio))
        span = max(1, filled // 2)
        step = (frame_index * span * hop) % n_fft
        ang = two_pi * step / n_fft
        cos_a, sin_a = np.cos(ang), np.sin(ang)
        for j in range(filled + 1, k_bins):
            re, im = out_re[j - span], out_im[j - span]
            out_re[j] = re * cos_a - im * sin_a
            out_im[j] = re * sin_a + im * cos_a
    return out_re, out_im, rot


_LOUDNESS_MEMORY = 1.0 - 1.0 / 125.0
"""Energy averages forget over ~125 frames (1 s): slow enough not to pump within a word."""
_LOUDNESS_LIMIT = 2.0
"""Largest loudness correction, x2 / x0.5 (+-6 dB): beyond that the estimate is not speech."""


class Shifter:
    """Stateful block processor. Set ``ratio``, ``formant_ratio`` and ``eq`` (natural-log gain per
    bin, (N_FFT//2+1,)) between calls; ``on_frame(frame, log_env)`` is called for every analysed
    input frame so a tracker can watch the input without a second STFT."""

    def __init__(self) -> None:
        self.ratio = 1.0
        self.formant_ratio = 1.0
        self.eq: F64 = np.zeros(_K)
        self.keep_loudness = True
        self.envelope_fn: Callable[[F64], F64] | None = None
        """Optional per-frame map of the (warped) natural-log envelope to the one to impose."""
        self.analyse_only = False
        """Run the analysis and ``on_frame`` only, output silence (another synthesis uses the ratios)."""
        self.reset()

    def reset(self) -> None:
        """Forget all signal state (the ratios and eq stay)."""
        # The frame buffer starts with N_FFT - HOP zeros so the first samples get full overlap-add.
        self._pending: F64 = np.zeros(N_FFT - HOP)
        self._ola: F64 = np.zeros(N_FFT)
        self._out: F64 = np.zeros(HOP)
        self._prev_phase: F64 = np.zeros(_K)
        self._prev_rot: F64 = np.zeros(_K)
        self._frame_index = 0
        self._level = LevelFollower(_LOUDNESS_MEMORY, _LOUDNESS_LIMIT)

    def process(self, block: F32, on_frame: FrameHook | None = None) -> F32:
        """Consume ``block``; return ``len(block)`` output samples delayed by LATENCY."""
        self._pending = np.concatenate([self._pending, block.astype(np.float64)])
        produced = [self._out]
        n_frames = (len(self._pending) - N_FFT) // HOP + 1
        for i in range(max(0, n_frames)):
            frame = self._pending[i * HOP : i * HOP + N_FFT]
            produced.append(self._frame(frame, on_frame))
        if n_frames > 0:
            self._pending = self._pending[n_frames * HOP :]
        out = np.concatenate(produced)
        n = len(block)
        self._out = out[n:]
        return out[:n].astype(np.float32)

    def _frame(self, frame: F64, on_frame: FrameHook | None) -> F64:
        # Zero-phase framing (window centre at sample 0) keeps a partial's phase nearly constant
        # across its main lobe, so bins can be interpolated when a region moves by a fraction.
        spec = np.fft.rfft(np.roll(frame * _WINDOW, -(N_FFT // 2)))
        mag = np.abs(spec)
        phase = np.angle(spec)
        log_env = log_envelopes(np.log(mag + 1e-9))
        if on_frame is not None:
            on_frame(frame, log_env)
        if self.analyse_only:
            return np.zeros(HOP)
        flat = spec / np.exp(log_env)
        re, im, rot = _shift_frame(
            mag, flat.real, flat.imag, phase, self._prev_phase, self._prev_rot,
            self.ratio, HOP, N_FFT, self._frame_index,
        )
        self._frame_index += 1
        self._prev_phase = phase
        self._prev_rot = rot
        target = warp(log_env, self.formant_ratio)
        if self.envelope_fn is not None:
            target = self.envelope_fn(target)
        out_spec = (re + 1j * im) * np.exp(target + self.eq)
        if self.keep_loudness:
            out_spec *= self._level.gain(float(np.sum(mag**2)), float(np.sum(np.abs(out_spec) ** 2)))
        synth = np.roll(np.fft.irfft(out_spec, N_FFT), N_FFT // 2) * _WINDOW / _OLA_GAIN
        self._ola += synth
        done = self._ola[:HOP].copy()
        self._ola = np.concatenate([self._ola[HOP:], np.zeros(HOP)])
        return done

