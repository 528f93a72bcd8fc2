"""Pitch and spectral-envelope analysis shared by the DSP converter's reference statistics and its
streaming input tracker. Everything is vectorised numpy over frames, at 16 kHz.

* Pitch: YIN's cumulative-mean-normalised difference (de Cheveigne & Kawahara 2002, JASA 111(4)),
  computed through an FFT cross-correlation so a batch of frames costs a few FFTs; its dips become
  probabilistic candidates chosen along a continuity path (:mod:`anchorvoice.plugins.dsp.pitch`).
* Envelope: real-cepstrum lifter of the log-magnitude spectrum (Oppenheim & Schafer, homomorphic
  smoothing; the first ``LIFTER`` quefrencies keep formant structure and drop the harmonics),
  iterated into a "true envelope" that rides on the harmonic peaks (Roebel & Rodet, DAFx 2005).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from anchorvoice.plugins.dsp import pitch

F64 = npt.NDArray[np.float64]

SAMPLE_RATE = 16000
"""The converter works at 16 kHz: speech formants that matter sit below 5 kHz."""
N_FFT = 512
"""32 ms frames: short enough for the 50 ms latency budget, 31.25 Hz bins."""
HOP = 128
"""75 % overlap (N_FFT / 4), the least a phase vocoder needs for clean overlap-add (Laroche & Dolson)."""
LIFTER = 28
"""Cepstral coefficients kept: 28 / 16 kHz = 1.75 ms, below the 2 ms period of a 500 Hz voice."""
ENVELOPE_ITERATIONS = 6
"""True-envelope passes (see :func:`log_envelopes`)."""
YIN_FRAME = 1024
"""64 ms pitch frames: lag window (48 ms, 3.5 periods of a 70 Hz voice) + the longest lag (16000 / F0_MIN).
Only the pitch statistics look this far back; the audio path's latency stays one STFT frame."""
F0_MIN, F0_MAX = 65.0, 500.0
"""Pitch search range in Hz: low male to high female/child speech."""
YIN_THRESHOLD = 0.2
"""YIN absolute threshold; the paper finds 0.1-0.2 best for speech."""
BAND_HZ = (100.0, 7000.0)
"""Band where envelopes are compared: above mains hum, below the G.722 / telephone-wideband edge."""

_TAU_MIN = int(SAMPLE_RATE / F0_MAX)
_TAU_MAX = int(np.ceil(SAMPLE_RATE / F0_MIN))
_YIN_W = YIN_FRAME - _TAU_MAX
_EPS = 1e-10


def frames_of(x: npt.NDArray[np.floating], size: int, hop: int) -> npt.NDArray[np.float64]:
    """(F, size) frames of ``x`` at ``hop`` (no padding; empty when ``x`` is shorter than ``size``)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < size:
        return np.zeros((0, size))
    return np.lib.stride_tricks.sliding_window_view(x, size)[::hop].copy()


def cmnd(frames: F64) -> F64:
    """(F, _TAU_MAX+1) cumulative-mean-normalised difference (YIN step 3) of (F, YIN_FRAME) frames."""
    n_frames = frames.shape[0]
    size = 1 << int(np.ceil(np.log2(YIN_FRAME + _YIN_W)))
    head = frames[:, :_YIN_W]
    # r[t] = sum_j x[j] x[j + t] over the lag window, for every lag at once.
    corr = np.fft.irfft(np.fft.rfft(frames, size) * np.conj(np.fft.rfft(head, size)), size)[:, : _TAU_MAX + 1]
    sq = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(_TAU_MAX + 1)
    energy_t = sq[:, lags + _YIN_W] - sq[:, lags]  # sum of x^2 over [t, t + W)
    diff = energy_t[:, :1] + energy_t - 2.0 * corr  # d(t) of the YIN paper, eq. 7
    diff[:, 0] = 0.0
    cum = np.cumsum(diff[:, 1:], axis=1)
    out = np.ones_like(diff)
    out[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(cum, _EPS)
    return out


def pitch_candidates(frames: F64) -> tuple[F64, F64]:
    """Probabilistic-YIN candidates (f0 Hz, probability), each (F, pitch.CANDIDATES), of pitch frames."""
    if frames.shape[0] == 0:
        return np.zeros((0, pitch.CANDIDATES)), np.zeros((0, pitch.CANDIDATES))
    return pitch.candidates(cmnd(frames), _TAU_MIN, SAMPLE_RATE)


def yin(frames: F64) -> tuple[F64, F64]:
    """Plain YIN pitch of each (F, YIN_FRAME) frame -> (f0 Hz, aperiodicity); f0 is 0 where unvoiced.

    Kept as the one-threshold reference; the converter uses :func:`pitch_track`.
    """
    n_frames = frames.shape[0]
    if n_frames == 0:
        return np.zeros(0), np.ones(0)
    cm = cmnd(frames)
    search = cm[:, _TAU_MIN : _TAU_MAX + 1]
    below = search < YIN_THRESHOLD
    # First dip under the threshold, then walk down to its local minimum (YIN step 4).
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    tau = first.copy()
    for _ in range(search.shape[1]):
        nxt = np.minimum(tau + 1, search.shape[1] - 1)
        step = search[np.arange(n_frames), nxt] < search[np.arange(n_frames), tau]
        if not step.any():
            break
        tau = np.where(step, nxt, tau)
    rows = np.arange(n_frames)
    t_abs = tau + _TAU_MIN
    left = cm[rows, np.maximum(t_abs - 1, 1)]
    mid = cm[rows, t_abs]
    right = cm[rows, np.minimum(t_abs + 1, _TAU_MAX)]
    denom = left - 2.0 * mid + right
    offset = np.where(np.abs(denom) > _EPS, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    period = t_abs + np.clip(offset, -1.0, 1.0)
    aperiodicity = mid
    f0 = np.where(aperiodicity < YIN_THRESHOLD, SAMPLE_RATE / period, 0.0)
    return f0, aperiodicity


def pitch_track(frames: F64) -> F64:
    """f0 per consecutive (HOP apart) pitch frame, 0 where unvoiced: pYIN candidates + Viterbi path."""
    freqs, probs = pitch_candidates(frames)
    return pitch.viterbi(freqs, probs)


def rms_db(frames: F64) -> F64:
    """Level of each frame in dBFS."""
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + _EPS)


_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann: overlap-adds to a constant at N_FFT / 4 hops


def _lifter_bases() -> tuple[F64, F64]:
    """(K, LIFTER+1) log-spectrum -> low cepstrum and (LIFTER+1, K) low cepstrum -> envelope.

    The lifter (irfft, keep quefrencies 0..LIFTER and their mirror, rfft) is linear and of rank
    LIFTER+1, so two thin matrix products replace two FFTs per true-envelope pass.
    """
    n_bins = N_FFT // 2 + 1
    to_cep = np.fft.irfft(np.eye(n_bins), N_FFT, axis=-1)[:, : LIFTER + 1]
    impulses = np.zeros((LIFTER + 1, N_FFT))
    impulses[0, 0] = 1.0
    for n in range(1, LIFTER + 1):
        impulses[n, n] = impulses[n, N_FFT - n] = 1.0
    return to_cep, np.fft.rfft(impulses, axis=-1).real


_TO_CEP, _FROM_CEP = _lifter_bases()


def _lifter(log_mag: F64) -> F64:
    return (log_mag @ _TO_CEP) @ _FROM_CEP


def cepstrum_of(log_env: F64) -> F64:
    """(F, LIFTER+1) low cepstrum of (F, N_FFT//2+1) natural-log envelopes (exact for envelopes)."""
    return log_env @ _TO_CEP


def envelope_of(cep: F64) -> F64:
    """(F, N_FFT//2+1) natural-log envelopes from (F, LIFTER+1) low cepstra (inverse of cepstrum_of)."""
    return cep @ _FROM_CEP


def log_envelopes(log_mag: F64) -> F64:
    """Natural-log spectral envelopes of (F, N_FFT//2+1) log magnitudes ("true envelope").

    A plain cepstral lifter averages peaks and valleys, so it sags between sparse harmonics and
    under a strong fundamental; shifting pitch against it over-boosts the fundamental. The true
    envelope (Roebel & Rodet, DAFx 2005) repeats the lifter on max(log spectrum, envelope) until
    the envelope rides on the harmonic peaks; ENVELOPE_ITERATIONS passes get within ~1 dB.
    """
    target = log_mag
    env = _lifter(target)
    for _ in range(ENVELOPE_ITERATIONS - 1):
        target = np.maximum(target, env)
        env = _lifter(target)
    return env


def spectra(x: npt.NDArray[np.floating]) -> npt.NDArray[np.complex128]:
    """Hann-windowed (F, N_FFT//2+1) spectra of ``x`` at HOP."""
    return np.fft.rfft(frames_of(x, N_FFT, HOP) * _WINDOW, axis=-1)


def band_mask() -> npt.NDArray[np.bool_]:
    """Bins inside BAND_HZ."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    return (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])


def normalise(env_db: F64) -> F64:
    """Remove each envelope's mean level over the band, so that only its shape counts."""
    return env_db - env_db[..., band_mask()].mean(axis=-1, keepdims=True)


def warp(env: F64, ratio: float) -> F64:
    """Move an envelope's features up in frequency by ``ratio`` (formant shift): out(f) = env(f / ratio)."""
    k = np.arange(env.shape[-1], dtype=np.float64)
    return np.interp(k / ratio, k, env)


def envelope_distance(a_db: F64, b_db: F64) -> float:
    """RMS difference in dB of two mean-removed envelopes over BAND_HZ."""
    mask = band_mask()
    d = normalise(a_db)[mask] - normalise(b_db)[mask]
    return float(np.sqrt(np.mean(d**2)))


def best_warp(src_db: F64, target_db: F64, lo: float, hi: float, steps: int = 25) -> float:
    """The formant ratio in [lo, hi] whose warp of ``src_db`` is closest to ``target_db``."""
    ratios = np.geomspace(lo, hi, steps)
    dists = [envelope_distance(warp(src_db, float(r)), target_db) for r in ratios]
    return float(ratios[int(np.argmin(dists))])


TO_DB = 20.0 / np.log(10.0)
"""Natural-log magnitude -> dB."""


def voiced_log_envelopes(x: npt.NDArray[np.floating], voiced: npt.NDArray[np.bool_]) -> F64:
    """(V, N_FFT//2+1) natural-log envelopes of the voiced frames (``voiced`` from :func:`voiced_frames`)."""
    spec = spectra(x)[: len(voiced)]
    return log_envelopes(np.log(np.abs(spec[voiced[: len(spec)]]) + 1e-9))


def voiced_frames(x: npt.NDArray[np.floating]) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Per-HOP f0 track of a whole clip and its voiced mask, aligned with :func:`spectra` frames.

    A frame is voiced when the pitch path (:func:`pitch_track`) finds a period and its level is
    within 30 dB of the clip's loud frames (so breath and room noise never count, whatever the
    recording level).
    """
    x = np.asarray(x, dtype=np.float64)
    n_spec = max(0, (len(x) - N_FFT) // HOP + 1)
    # Centre each pitch frame on its spectrum frame.
    pad = (YIN_FRAME - N_FFT) // 2
    padded = np.concatenate([np.zeros(pad), x, np.zeros(YIN_FRAME)])
    frames = frames_of(padded, YIN_FRAME, HOP)[:n_spec]
    f0 = pitch_track(frames)
    level = rms_db(frames)
    loud = np.percentile(level, 95) if len(level) else 0.0
    voiced = (f0 > 0) & (level > loud - 30.0) & (level > -60.0)
    return f0, voiced


class LevelFollower:
    """Gain that keeps a processed signal's running energy equal to its input's: both energies are
    averaged with ``memory`` per update, and the correction stays within x``limit`` / x1/``limit``
    (beyond that the estimate is not speech). Pitch and formant shifts change the energy (a partial
    moved toward a formant gets louder); a voice changer should not."""

    def __init__(self, memory: float, limit: float = 2.0) -> None:
        self.memory = memory
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        self._in = 0.0
        self._out = 0.0

    def gain(self, energy_in: float, energy_out: float) -> float:
        """The amplitude factor for the update whose input and output energies are given."""
        a = self.memory
        self._in = a * self._in + energy_in
        self._out = a * self._out + energy_out
        if self._out <= 0.0:
            return 1.0
        return float(np.clip(np.sqrt(self._in / self._out), 1 / self.limit, self.limit))
