"""Pitch and formant shifting of a whole clip by TD-PSOLA (pitch-synchronous overlap-add).

Used for offline work (``convert`` on a file, each spoken sentence of the embedded TTS), where the
whole clip is known. Voiced speech is cut into two-period grains centred on pitch marks (one per
glottal cycle, placed on the peaks of the low-passed signal and followed from period to period);
the grains are added back ``ratio`` times closer together (or further apart), so the pitch moves
while each grain keeps the vocal tract's resonances. Resampling each grain in time by
``formant`` moves those resonances too (>1: up, a smaller vocal tract). Unvoiced sounds are
copied through with short overlapping windows.

Unlike a phase vocoder no frame-wise phase is rebuilt, so there is no "phasiness": measured with
DNSMOS on real and synthetic speech (bench/voice_quality.py) it keeps most of the input's quality
where the streaming STFT shifter loses 0.3-1.3 points. It needs one period of look-ahead and a
pitch track of the whole clip; live audio uses the STFT shifter (:mod:`anchorvoice.plugins.dsp.shifter`)
or, with ``live = "psola"``, the causal variant of :mod:`anchorvoice.plugins.dsp.psola_stream`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from anchorvoice.plugins.dsp.analysis import HOP, N_FFT, SAMPLE_RATE

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

UNVOICED_HOP_S = 0.005
"""Grain spacing where there is no pitch (5 ms); grains are twice as long (Hann at 50 % overlap)."""
GRAIN_SHRINK = 0.6
"""Raised pitch: grains are ``period / ratio**GRAIN_SHRINK`` samples either side of the mark. 1 cuts
each grain to one output period; 0.6 keeps more of each cycle's ringing, which a speaker encoder heard
as closer to the target on upward shifts (+0.02 to +0.08 cosine on 1.5-3.4x shifts, same DNSMOS and
WER, bench/voice_quality.py pairs)."""
MARK_SEARCH = 0.25
"""A pitch mark is looked for within +-a quarter period of where the previous period predicts it."""
SMOOTH_S = 0.0006
"""Length of the short Hann low-pass (about 2 kHz) applied before picking marks: peaks of the
glottal pulse, not of a formant ringing on top of it."""


def _frame_of(sample: F64 | float, rate: int) -> F64:
    """Index (fractional) of the analysis frame (16 kHz, HOP apart, centred at ``i * HOP + N_FFT // 2``,
    the layout of :func:`analysis.voiced_frames`) at a sample position of a clip at ``rate``."""
    return np.asarray((np.asarray(sample, dtype=np.float64) * SAMPLE_RATE / rate - N_FFT // 2) / HOP)


def _period_track(f0: F64, voiced: npt.NDArray[np.bool_], n: int, rate: int) -> F64:
    """Period in samples at ``rate`` at every sample (0 where unvoiced), from the per-HOP track."""
    frame_f0 = np.where(voiced, f0, 0.0)
    if len(frame_f0) == 0:
        return np.zeros(n)
    idx = np.clip(np.rint(_frame_of(np.arange(n, dtype=np.float64), rate)).astype(np.int64), 0, len(frame_f0) - 1)
    f = frame_f0[idx]
    return np.where(f > 0, rate / np.maximum(f, 1e-9), 0.0)


def pitch_marks(
    x: F64, f0: F64, voiced: npt.NDArray[np.bool_], rate: int = SAMPLE_RATE
) -> tuple[npt.NDArray[np.int64], F64]:
    """(mark positions, period at each mark in samples; 0 for an unvoiced mark) of a clip at ``rate``
    whose pitch track ``f0``/``voiced`` was taken at 16 kHz.

    Voiced runs get one mark per cycle; unvoiced stretches one every ``UNVOICED_HOP_S``.
    The polarity of the marks (positive or negative peaks) is the clip's stronger one, so marks do
    not flip between the two from cycle to cycle.
    """
    n = len(x)
    period = _period_track(f0, voiced, n, rate)
    taps = np.hanning(max(3, int(SMOOTH_S * rate)) + 2)[1:-1]
    unvoiced_hop = max(1, int(round(UNVOICED_HOP_S * rate)))
    lp = np.convolve(x, taps / taps.sum(), mode="same")
    sign = 1.0 if np.max(lp, initial=0.0) >= -np.min(lp, initial=0.0) else -1.0
    lp = lp * sign
    pos: list[int] = []
    per: list[float] = []
    t = 0
    in_run = False
    while t < n:
        p = period[t]
        if p <= 0:
            pos.append(t)
            per.append(0.0)
            t += unvoiced_hop
            in_run = False
            continue
        if in_run:
            half = max(1, int(MARK_SEARCH * p))
            lo, hi = max(0, t - half), min(n, t + half + 1)
        else:  # first cycle of a voiced run: the strongest peak within one period
            lo, hi = t, min(n, t + int(p) + 1)
        t = lo + int(np.argmax(lp[lo:hi]))
        p = period[t] if period[t] > 0 else p
        pos.append(t)
        per.append(float(p))
        in_run = True
        t = max(t + 1, int(round(t + p)))
    return np.asarray(pos, dtype=np.int64), np.asarray(per, dtype=np.float64)


def grain(x: F64, centre: int, half: int) -> F64:
    """Hann-windowed 2*half+1 samples of ``x`` around ``centre`` (zeros outside the clip)."""
    g = np.zeros(2 * half + 1)
    lo = centre - half
    a, b = max(0, lo), min(len(x), centre + half + 1)
    if b > a:
        g[a - lo : b - lo] = x[a:b]
    return g * np.hanning(2 * half + 3)[1:-1]


def _squeeze(g: F64, formant: float) -> F64:
    """The grain resampled in time by 1/formant about its centre (resonances times ``formant``)."""
    half = (len(g) - 1) // 2
    new_half = max(1, int(half / formant))
    src = np.arange(-new_half, new_half + 1) * formant + half
    return np.interp(src, np.arange(len(g)), g, left=0.0, right=0.0)


def bandwidth_hz(x: F64, rate: int) -> float:
    """Upper edge of a clip's content: the highest frequency whose long-term level is within 60 dB of
    the clip's loudest (a 16 kHz recording resampled to 48 kHz stops near 8 kHz)."""
    size = 2048
    if len(x) < size:
        return rate / 2.0
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[:: size // 2]
    power = (np.abs(np.fft.rfft(frames * np.hanning(size), axis=1)) ** 2).mean(axis=0)
    db = 10.0 * np.log10(power + 1e-20)
    above = np.nonzero(db > db.max() - 60.0)[0]
    return float(above[-1] * rate / size) if len(above) else rate / 2.0


def _refill_top(squeezed: F64, original: F64, formant: float, edge_hz: float, rate: int) -> F64:
    """A grain stretched by ``formant`` < 1 leaves the band from ``formant * edge_hz`` up to the
    clip's edge empty; the original grain's content there fills it (as band replication does in
    codecs), so a lower voice does not come out duller than the input was bright."""
    size = 1 << int(np.ceil(np.log2(max(len(squeezed), len(original)))))
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    lo = formant * edge_hz
    fade = np.clip((freqs - lo) / max(1.0, 0.05 * edge_hz), 0.0, 1.0)
    top = np.fft.irfft(np.fft.rfft(original, size) * fade, size)[: len(original)]
    out = squeezed.copy()
    offset = (len(out) - len(top)) // 2
    out[offset : offset + len(top)] += top
    return out


def shaped_grain(x: F64, centre: int, half: int, formant: float, edge_hz: float, rate: int) -> F64:
    """The voiced grain around ``centre``, squeezed in time by ``formant`` (resonances times ``formant``);
    a lower formant's emptied top band (up to ``edge_hz``) refilled from the original grain."""
    g = grain(x, centre, half)
    if formant == 1.0:
        return g
    squeezed = _squeeze(g, formant)
    return _refill_top(squeezed, g, formant, edge_hz, rate) if formant < 1.0 else squeezed


def shift(
    samples: npt.NDArray[np.floating],
    f0: F64,
    voiced: npt.NDArray[np.bool_],
    ratio: float | F64,
    formant: float = 1.0,
    rate: int = SAMPLE_RATE,
) -> F32:
    """``samples`` (at ``rate``) with the pitch times ``ratio`` and the resonances times ``formant``;
    same length, no delay. ``f0``/``voiced`` are the clip's per-HOP track at 16 kHz
    (:func:`analysis.voiced_frames` of a 16 kHz copy), so a clip keeps its own rate and bandwidth;
    ``ratio`` is one number or one per frame of that track (a reshaped pitch contour)."""
    x = np.asarray(samples, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, np.float32)
    ratios = np.atleast_1d(np.asarray(ratio, dtype=np.float64))
    if not (np.all(ratios >= 0.1) and np.all(ratios <= 10.0)) or not 0.25 <= formant <= 4.0:
        raise ValueError(f"PSOLA ratio {ratios.min():.3g}-{ratios.max():.3g} / formant {formant} out of range "
                         "(0.1-10 / 0.25-4)")
    if np.all(ratios == 1.0) and formant == 1.0:
        return x.astype(np.float32)
    marks, periods = pitch_marks(x, f0, voiced, rate)
    edge = bandwidth_hz(x, rate) if formant < 1.0 else rate / 2.0
    unvoiced_hop = max(1, int(round(UNVOICED_HOP_S * rate)))
    y = np.zeros(n + rate // 5)
    pad = rate // 20  # room for grains that start before sample 0 (the longest period is 12.5 ms)
    t = 0.0
    was_voiced = False
    while t < n:
        i = int(np.searchsorted(marks, t))
        if i == len(marks) or (i > 0 and t - marks[i - 1] <= marks[i] - t):
            i -= 1
        p = periods[i]
        if p > 0:
            if not was_voiced:
                t = float(marks[i])  # a voiced run starts on its first cycle, in phase
            r = float(ratios[min(len(ratios) - 1, max(0, int(np.rint(_frame_of(t, rate)))))])
            # This cycle's own length where the next mark is in the same run; else the track's.
            local = float(marks[i + 1] - marks[i]) if i + 1 < len(marks) and periods[i + 1] > 0 else p
            step = (local if 0.5 * p <= local <= 1.5 * p else p) / r
            half = max(1, int(round(p / max(1.0, r) ** GRAIN_SHRINK)))
            g = shaped_grain(x, int(marks[i]), half, formant, edge, rate)
        else:
            step = float(unvoiced_hop)
            g = grain(x, int(round(t)), unvoiced_hop)
        was_voiced = p > 0
        start = int(round(t)) - (len(g) - 1) // 2 + pad
        if 0 <= start and start + len(g) <= len(y):
            y[start : start + len(g)] += g
        t += max(step, 1.0)
    # Grains land closer together or further apart than they were cut: bring the level back.
    return match_level(y[pad : pad + n], x)


def match_level(y: npt.NDArray[np.floating], like: npt.NDArray[np.floating]) -> F32:
    """``y`` scaled to the mean power of ``like`` (unchanged when ``y`` is silent)."""
    e_in, e_out = float(np.mean(np.square(like, dtype=np.float64))), float(np.mean(np.square(y, dtype=np.float64)))
    return np.asarray(y * np.sqrt(e_in / e_out) if e_out > 0.0 else y, dtype=np.float32)
