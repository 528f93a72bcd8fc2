"""Whole-clip conversion for the DSP converter's offline jobs (``convert`` on a file, TTS sentences).

With the whole clip at hand the converter does not need to stream:

1. pitch ratio = the voice's median f0 / the clip's median f0 (both over voiced frames of a
   pYIN + continuity-path track, so one bad estimate moves nothing), within ``max_pitch_ratio``;
   per frame, the pitch movement around the median is scaled to the voice's range (interquartile
   ratio), so a monotone reader does not stay monotone in a lively voice;
2. formant ratio = pitch ratio ** ``FORMANT_PER_PITCH`` (see there why not a fitted warp);
3. TD-PSOLA (:mod:`anchorvoice.plugins.dsp.psola`) applies both;
4. a fixed, smooth equaliser takes ``timbre_match`` of what is still between the shifted clip's
   mean envelope and the voice's (at most ``EQ_LIMIT_DB``), measured on the shifted audio itself.

The equaliser is one linear filter over the clip (no frame-wise changes), so it adds no artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from anchorvoice.audio_io import resample
from anchorvoice.plugins.dsp import analysis as an
from anchorvoice.plugins.dsp import psola

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

EQ_LIMIT_DB = 12.0
"""Largest equaliser gain or cut inside the speech band (as live)."""
EQ_EDGE_LIMIT_DB = 6.0
"""Largest gain or cut outside the speech band, where the envelopes are mostly noise."""
FORMANT_PER_PITCH = 0.25
"""Formant ratio = pitch ratio ** this. Between adult speakers the formants move about a quarter as
far as the pitch in log terms (women's F1-F3 ~15-20 % above men's at ~1.8x the f0); fitted to the
mean envelopes instead, the warp is pulled around by what was said, and a speaker encoder heard
the result move away from the target on some pairs (bench/voice_quality.py)."""
CONTOUR_LIMIT = 1.5
"""Largest widening or narrowing of the pitch range: flattening natural speech toward a monotone
voice by more cost DNSMOS (real speech to a 280 Hz flite voice: 2.2 at 2.0, 2.4 at 1.5) and gained
no similarity (bench/voice_quality.py pairs)."""
EQ_FRAME_S = 0.064
"""Frame of the equalising filter (64 ms, rounded up to a power of two samples; Hann, 75 % overlap)."""


@dataclass
class ClipShift:
    """What the offline conversion did to one clip (for status lines and tests)."""

    pitch_ratio: float
    formant_ratio: float
    input_median_f0_hz: float | None


def formant_for_pitch(pitch_ratio: float, max_formant_ratio: float) -> float:
    """The formant ratio that goes with ``pitch_ratio``: ``pitch_ratio ** FORMANT_PER_PITCH`` within
    ``max_formant_ratio`` (and its inverse)."""
    limit = np.log(max_formant_ratio)
    return float(np.exp(np.clip(FORMANT_PER_PITCH * np.log(pitch_ratio), -limit, limit)))


def equalise(x: npt.NDArray[np.floating], gain_db: F64, rate: int = an.SAMPLE_RATE) -> F32:
    """``x`` (at ``rate``) filtered by the smooth gain curve ``gain_db`` (N_FFT//2+1 bins of the
    16 kHz analysis frame; above 8 kHz its last value holds), zero-phase, same length
    (STFT with weighted overlap-add)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(0, np.float32)
    size = 1 << int(np.ceil(np.log2(EQ_FRAME_S * rate)))
    hop = size // 4
    w = np.hanning(size + 1)[:-1]
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    gain = 10.0 ** (np.interp(freqs, np.fft.rfftfreq(an.N_FFT, 1.0 / an.SAMPLE_RATE), gain_db) / 20.0)
    padded = np.concatenate([np.zeros(size), x, np.zeros(2 * size)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop]
    spec = np.fft.rfft(frames * w, axis=1) * gain
    parts = np.fft.irfft(spec, size, axis=1) * w
    out = np.zeros(len(padded))
    norm = np.zeros(len(padded))
    for i, part in enumerate(parts):
        out[i * hop : i * hop + size] += part
        norm[i * hop : i * hop + size] += w * w
    return (out / np.maximum(norm, 1e-9))[size : size + len(x)].astype(np.float32)


def mean_envelope_db(x: npt.NDArray[np.floating], f0: F64 | None = None,
                     voiced: npt.NDArray[np.bool_] | None = None) -> F64 | None:
    """Mean level-normalised envelope (dB) of the voiced frames of a 16 kHz clip; None when none are."""
    if f0 is None or voiced is None:
        f0, voiced = an.voiced_frames(x)
    if not voiced.any():
        return None
    log_env = an.voiced_log_envelopes(x, voiced)
    return np.asarray(an.normalise(log_env * an.TO_DB).mean(axis=0), dtype=np.float64)


def eq_curve(current_db: F64, target_db: F64, amount: float) -> F64:
    """Gain (dB per analysis bin) taking ``amount`` of the way from ``current_db`` to ``target_db``."""
    gain = float(np.clip(amount, 0.0, 1.0)) * (an.normalise(target_db) - an.normalise(current_db))
    band = an.band_mask()
    gain[band] = np.clip(gain[band], -EQ_LIMIT_DB, EQ_LIMIT_DB)
    gain[~band] = np.clip(gain[~band], -EQ_EDGE_LIMIT_DB, EQ_EDGE_LIMIT_DB)
    return np.asarray(gain - gain[band].mean(), dtype=np.float64)


def f0_spread(f0_hz: F64) -> float:
    """Spread of a pitch track: log of its interquartile ratio (0 for a monotone)."""
    q1, q3 = np.percentile(f0_hz, [25, 75])
    return float(np.log(q3 / q1))


def contour_ratios(f0: F64, voiced: npt.NDArray[np.bool_], pitch_ratio: float, median_f0: float,
                   target_spread: float, strength: float) -> F64:
    """Per-frame pitch ratios that also give the clip the voice's pitch range: log f0 around the
    median is scaled by target spread / clip spread (within ``CONTOUR_LIMIT``); the median itself
    still lands at ``median_f0 * pitch_ratio``."""
    spread = f0_spread(f0[voiced]) if voiced.sum() >= 8 else 0.0
    if spread <= 0.0:
        return np.full(len(f0), pitch_ratio)
    scale = float(np.exp(strength * np.log(np.clip(target_spread / spread, 1 / CONTOUR_LIMIT, CONTOUR_LIMIT))))
    dev = np.log(np.where(voiced, f0, median_f0) / median_f0)
    return np.asarray(pitch_ratio * np.exp((scale - 1.0) * dev), dtype=np.float64)


def convert_clip(
    x: npt.NDArray[np.floating],
    target_f0: float | None,
    target_env_db: F64 | None,
    *,
    target_f0_spread: float | None = None,
    pitch_ratio: float | None = None,
    formant_ratio: float | None = None,
    strength: float = 1.0,
    timbre_match: float = 0.5,
    max_pitch_ratio: float = 4.0,
    max_formant_ratio: float = 1.3,
    rate: int = an.SAMPLE_RATE,
) -> tuple[F32, ClipShift]:
    """Convert a whole clip at ``rate`` (16 kHz or more; it keeps its rate and bandwidth, the
    analysis runs on a 16 kHz copy) toward a voice (median f0 ``target_f0``, mean envelope
    ``target_env_db``); a fixed ``pitch_ratio`` / ``formant_ratio`` replaces the automatic one."""
    x = np.asarray(x, dtype=np.float64)
    if rate < an.SAMPLE_RATE:
        raise ValueError(f"whole-clip conversion needs 16 kHz or more, got {rate} Hz")
    x16 = x if rate == an.SAMPLE_RATE else resample(x, rate, an.SAMPLE_RATE).astype(np.float64)
    f0, voiced = an.voiced_frames(x16)
    median_f0 = float(np.median(f0[voiced])) if voiced.any() else None
    automatic = pitch_ratio is None
    if pitch_ratio is None:
        pitch_ratio = 1.0
        if target_f0 is not None and median_f0 is not None:
            limit = np.log(max_pitch_ratio)
            pitch_ratio = float(np.exp(np.clip(strength * np.log(target_f0 / median_f0), -limit, limit)))
    if formant_ratio is None:
        formant_ratio = formant_for_pitch(pitch_ratio, max_formant_ratio)
    ratio: float | F64 = pitch_ratio
    if automatic and target_f0_spread and median_f0 is not None:  # a fixed shift stays a plain shift
        ratio = contour_ratios(f0, voiced, pitch_ratio, median_f0, target_f0_spread, strength)
    y = psola.shift(x, f0, voiced, ratio, formant_ratio, rate)
    amount = timbre_match * strength
    if target_env_db is not None and amount > 0.0:
        shifted = mean_envelope_db(y if rate == an.SAMPLE_RATE else resample(y, rate, an.SAMPLE_RATE))
        if shifted is not None:
            y = psola.match_level(equalise(y, eq_curve(shifted, target_env_db, amount), rate), x)
    return y.astype(np.float32), ClipShift(pitch_ratio, formant_ratio, median_f0)
