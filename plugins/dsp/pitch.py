"""Pitch that does not jump octaves: probabilistic YIN candidates and a continuity path.

* Candidates (pYIN, Mauch & Dixon, ICASSP 2014): YIN's threshold is not one number but drawn from
  a Beta distribution; each local minimum of the cumulative-mean-normalised difference gets the
  probability that it is the first dip under the threshold. A frame thus offers several periods
  (the true one, its double and half) with probabilities, instead of one hard (often octave-wrong)
  choice.
* Continuity: a hidden Markov model over "one of the candidates" or "unvoiced". Moving between
  candidates of consecutive frames costs in proportion to the pitch jump in semitones, so an
  octave jump (12 semitones in 8 ms) is all but ruled out; offline the best whole path is taken
  (Viterbi), live the best path so far (the forward step of the same model, :class:`PitchFollower`).
* Register: pitch of voiced frames more than ``REGISTER_OCTAVES`` from the speaker's running
  median is penalised, so that a whole word that came out an octave off (which continuity alone
  allows after a pause) is pulled back to the speaker's register.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

CANDIDATES = 4
"""Candidate periods kept per frame (the most probable dips)."""
BETA_A, BETA_B = 2.0, 8.0
"""YIN threshold distribution: Beta with mean 0.2 (pYIN's most lenient setting): deep voices' dips
sit near 0.2-0.3 even in 64 ms frames."""
ABSOLUTE_MIN_PROB = 0.01
"""Probability given to the global minimum when no dip is under any threshold (pYIN's p_a)."""
JUMP_SEMITONES = 1.0
"""Scale of the pitch-change penalty: each semitone of change between 8 ms frames costs a factor e."""
SWITCH_LOG_PROB = float(np.log(0.02))
"""Log probability of switching between voiced and unvoiced from one frame to the next."""
REGISTER_OCTAVES = 0.7
"""Pitch further than this from the running median (in octaves) starts being penalised..."""
REGISTER_PENALTY = 12.0
"""...by this many log units per octave beyond it."""


VOICING_DIP = 0.4
"""A frame is more likely voiced than not when its deepest dip is under this (deep voices' periodic
frames sit near 0.2-0.3, noise and fricatives near 0.6-1)..."""
VOICING_SLOPE = 0.05
"""...with a logistic transition this wide."""


def _cmnd_candidates(cmnd: F64, tau_min: int) -> tuple[npt.NDArray[np.int64], F64, F64]:
    """(tau (F, K), probability (F, K), dip value (F, K)) of the most probable dips of each frame."""
    search = cmnd[:, tau_min:]
    n_frames, n_tau = search.shape
    inner = np.zeros_like(search, dtype=bool)
    inner[:, 1:-1] = (search[:, 1:-1] < search[:, :-2]) & (search[:, 1:-1] <= search[:, 2:])
    vals = np.where(inner, search, np.inf)
    # Mass of the threshold range in which this dip is the first one under the threshold:
    # thresholds in (v, lowest earlier dip].
    earlier = np.minimum.accumulate(np.concatenate([np.full((n_frames, 1), np.inf), vals[:, :-1]], axis=1), axis=1)

    def cdf(v: F64) -> F64:
        from scipy.special import betainc  # here, not at import (scipy.special: ~0.15 s)

        return betainc(BETA_A, BETA_B, np.clip(v, 0.0, 1.0))

    prob = np.where(inner & (vals < earlier), cdf(earlier) - cdf(vals), 0.0)
    # No dip under any threshold: the global minimum gets a little probability.
    glob = search.argmin(axis=1)
    rows = np.arange(n_frames)
    none = prob.sum(axis=1) <= 0.0
    prob[rows[none], glob[none]] = ABSOLUTE_MIN_PROB
    k = min(CANDIDATES, n_tau)
    top = np.argpartition(-prob, k - 1, axis=1)[:, :k]
    p = np.take_along_axis(prob, top, axis=1)
    v = np.take_along_axis(search, top, axis=1)
    return top + tau_min, p, v


def candidates(cmnd: F64, tau_min: int, sample_rate: int) -> tuple[F64, F64]:
    """(f0 Hz (F, K), probability (F, K)) candidates of frames from their CMND (F, tau_max+1).

    The probabilities of a frame add up to its probability of being voiced (a logistic of its
    deepest dip), shared among the candidates as pYIN's threshold distribution shares it.
    Periods are refined by parabolic interpolation; a candidate with probability 0 is not one.
    """
    tau, p, _ = _cmnd_candidates(cmnd, tau_min)
    deepest = cmnd[:, tau_min:].min(axis=1, keepdims=True)
    voiced = 1.0 / (1.0 + np.exp((deepest - VOICING_DIP) / VOICING_SLOPE))
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12) * voiced
    tau_max = cmnd.shape[1] - 1
    left = np.take_along_axis(cmnd, np.maximum(tau - 1, 1), axis=1)
    mid = np.take_along_axis(cmnd, tau, axis=1)
    right = np.take_along_axis(cmnd, np.minimum(tau + 1, tau_max), axis=1)
    denom = left - 2.0 * mid + right
    safe = np.where(np.abs(denom) > 1e-10, denom, 1.0)
    offset = np.where(np.abs(denom) > 1e-10, 0.5 * (left - right) / safe, 0.0)
    period = tau + np.clip(offset, -1.0, 1.0)
    return sample_rate / period, p


def _emission(freqs: F64, probs: F64, centre: float | None) -> F64:
    """(F, K+1) log likelihood of each candidate state and (last column) of unvoiced."""
    voiced = np.clip(probs.sum(axis=1, keepdims=True), 0.0, 0.999)
    with np.errstate(divide="ignore"):
        out = np.concatenate([np.log(probs), np.log(1.0 - voiced)], axis=1)
    if centre is not None and centre > 0:
        off = np.abs(np.log2(np.maximum(freqs, 1e-9) / centre))
        out[:, :-1] -= REGISTER_PENALTY * np.maximum(0.0, off - REGISTER_OCTAVES)
    return out


def _transition(prev_f: F64, f: F64, steps: float = 1.0) -> F64:
    """(K+1, K+1) log transition between the states of two frames (voiced candidates, unvoiced)."""
    k = len(f)
    semis = 12.0 * np.abs(np.log2(np.maximum(f[None, :], 1e-9) / np.maximum(prev_f[:, None], 1e-9)))
    t = np.full((k + 1, k + 1), SWITCH_LOG_PROB)
    t[:k, :k] = -semis / (JUMP_SEMITONES * steps)
    t[k, k] = 0.0
    return t


def viterbi(freqs: F64, probs: F64, centre: float | None = None) -> F64:
    """Best path through the frames' candidates -> f0 per frame (0 where unvoiced).

    ``centre``: the speaker's median f0 if known (register penalty; 0: none); without it a first
    pass finds it.
    """
    n, k = freqs.shape
    if n == 0:
        return np.zeros(0)
    if centre is None:
        centre = robust_median(viterbi(freqs, probs, centre=0.0))
    emit = _emission(freqs, probs, centre if centre > 0 else None)
    score = emit[0].copy()
    back = np.zeros((n, k + 1), dtype=np.int64)
    for i in range(1, n):
        total = score[:, None] + _transition(freqs[i - 1], freqs[i])
        back[i] = total.argmax(axis=0)
        score = total[back[i], np.arange(k + 1)] + emit[i]
        score -= score.max()
    state = int(score.argmax())
    f0 = np.zeros(n)
    for i in range(n - 1, -1, -1):
        f0[i] = freqs[i, state] if state < k else 0.0
        state = int(back[i, state]) if i > 0 else state
    return f0


def robust_median(f0: F64) -> float:
    """Median of the voiced (> 0) values; 0 when there are none."""
    v = np.asarray(f0)[np.asarray(f0) > 0]
    return float(np.median(v)) if len(v) else 0.0


class PitchFollower:
    """Causal version of :func:`viterbi`: the state of the best path so far, one frame at a time.

    ``steps``: 8 ms frames between two calls (the jump penalty is per frame).
    """

    def __init__(self, steps: float = 1.0) -> None:
        self.steps = steps
        self._score: F64 | None = None
        self._freqs: F64 | None = None

    def step(self, freqs: F64, probs: F64, centre: float | None) -> float:
        """Candidates (K,) of the next pitch frame -> its f0 (0 = unvoiced)."""
        emit = _emission(freqs[None, :], probs[None, :], centre)[0]
        if self._score is None or self._freqs is None:
            score = emit
        else:
            total = self._score[:, None] + _transition(self._freqs, freqs, self.steps)
            score = total.max(axis=0) + emit
        score = score - score.max()
        self._score, self._freqs = score, freqs.copy()
        state = int(score.argmax())
        return float(freqs[state]) if state < len(freqs) else 0.0
