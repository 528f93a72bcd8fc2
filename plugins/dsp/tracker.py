"""Per-stream statistics of the converter's INPUT: running median f0 and running mean envelope.

Pitch comes from probabilistic YIN candidates followed along a continuity path
(:mod:`anchorvoice.plugins.dsp.pitch`), so one octave-wrong frame never enters the median.

The converter asks it for the pitch ratio (reference median f0 / input median f0), the formant
ratio (the warp that brings the input's mean envelope closest to the reference's) and a gentle
long-term equaliser (what is left between the warped input envelope and the reference's).
Statistics are taken from voiced frames only, so silence and breath never steer the ratios.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from anchorvoice.plugins.dsp.analysis import (
    F0_MIN,
    HOP,
    TO_DB,
    YIN_FRAME,
    band_mask,
    best_warp,
    normalise,
    pitch_candidates,
    rms_db,
    warp,
)
from anchorvoice.plugins.dsp.pitch import PitchFollower

F64 = npt.NDArray[np.float64]

PITCH_EVERY = 4
"""Estimate pitch on every 4th STFT frame (32 ms): the median moves slowly, and this keeps the
pitch analysis at ~1/4 of the cost."""
F0_HISTORY = 1024
"""Voiced pitch estimates kept for the running median: about 30 s of speech at one per 32 ms,
long enough that the median is the speaker's, not the current phrase's."""
REGISTER_AFTER = 32
"""Voiced estimates (about 1 s of speech) before the running median steers the pitch path toward
the speaker's register: a median of a few early frames must not lock in an octave error."""
RELATIVE_FLOOR_DB = 30.0
"""A frame counts as voiced only within 30 dB of the stream's loud level (as in the offline
analysis), so quiet syllable tails and creak do not drag the median."""
LOUD_DECAY_DB = 0.05
"""Fall of the loud-level follower per pitch estimate (1.5 dB/s): tracks a speaker moving away."""
ENV_MEMORY = 250.0
"""Voiced frames averaged into the running envelope before it turns into an exponential average
(2 s at 8 ms per frame): the mean converges quickly at stream start, then follows slow drift."""
REFIT_EVERY = 25
"""Frames between formant-ratio / equaliser refits (200 ms); the grid search costs ~1 ms."""
EQ_LIMIT_DB = 12.0
"""Largest equaliser gain or cut: beyond this the correction is chasing noise, not timbre."""
PRIOR_ESTIMATES = 64
"""Pitch estimates a new stream carries from the previous one (:meth:`InputTracker.carry_from`): evenly
spaced quantiles of all that stream saw (and carried), as many as about 2 s of speech gives. They enter the
running median beside the new stream's own, so the first words are shifted by the speaker's long-run median
instead of the first phrase's (phrase-initial pitch reads 15-60% high on the Asterisk speaker), and weigh
less as the stream's own estimates grow."""
PRIOR_CHECK_AFTER = 32
"""Own estimates (about 1 s of speech) after which the carried ones are checked against them."""
PRIOR_MAX_RATIO = 1.45
"""Own median this far (either way) from the carried median after ``PRIOR_CHECK_AFTER``: another speaker
(women and men differ by ~1.7-2x); the carried estimates are dropped. On the Asterisk speaker the running
median of one stream's first second stayed within 1.25x of its final (within 1.6x at 0.5 s, too early to
tell)."""


class InputTracker:
    """Watches input frames; exposes the current running statistics and derived ratios."""

    def __init__(self, silence_db: float) -> None:
        self.silence_db = silence_db
        self.reset()

    def reset(self) -> None:
        """Forget the stream."""
        self._recent: F64 = np.zeros(YIN_FRAME)
        self._f0: F64 = np.zeros(F0_HISTORY)
        self._n_f0 = 0
        self._voiced = False
        self._env_mean: F64 | None = None
        self._n_env = 0
        self._frames = 0
        self._since_fit = REFIT_EVERY
        self._loud_db = -120.0
        self._follower = PitchFollower(steps=PITCH_EVERY)
        self._prior: F64 = np.zeros(0)
        self.frozen = False

    def carry_from(self, previous: InputTracker) -> None:
        """Start from what ``previous`` (the stream before, on the same microphone: usually the same speaker)
        would pass on (:meth:`next_prior`). It steers the pitch ratio from the first word; the pitch path's
        register waits for the new stream's own estimates."""
        self._prior = previous.next_prior()

    def carry_prior(self, f0_values: F64) -> None:
        """Carry these pitch estimates (Hz), reduced to :data:`PRIOR_ESTIMATES` quantiles."""
        self._prior = _quantiles(np.asarray(f0_values, dtype=np.float64))

    def next_prior(self) -> F64:
        """What a following stream carries: :data:`PRIOR_ESTIMATES` quantiles of the estimates this stream
        carried and saw (a ``frozen`` offline one only passes on what it carried), ascending."""
        own = np.zeros(0) if self.frozen else self._f0[: min(self._n_f0, F0_HISTORY)]
        return _quantiles(np.concatenate([self._prior, own]))

    @property
    def carried_estimates(self) -> int:
        """How many pitch estimates from the previous stream the median includes (0 once dropped)."""
        return 0 if self.frozen else len(self._prior)

    def seed(self, f0_values: F64, mean_envelope_db: F64) -> None:
        """Use known statistics (offline: the whole clip's) and stop updating them (``frozen``).

        A causal running median lags behind the clip's (speech pitch declines over a phrase, so
        the first seconds read high) and follows the current phrase; an offline job knows the
        whole clip, so it uses exactly that.
        """
        values = np.asarray(f0_values, dtype=np.float64)
        if len(values) > F0_HISTORY:
            values = np.sort(values)[np.linspace(0, len(values) - 1, F0_HISTORY).astype(int)]
        self._f0[: len(values)] = values
        self._n_f0 = len(values)
        self._env_mean = np.asarray(mean_envelope_db, dtype=np.float64).copy()
        self._n_env = int(ENV_MEMORY)
        self._since_fit = REFIT_EVERY
        self.frozen = True

    def observe(self, frame: F64, log_env: F64) -> None:
        """One STFT frame (N_FFT samples) and its natural-log envelope."""
        if self.frozen:
            return
        self._recent = np.concatenate([self._recent[HOP:], frame[-HOP:]])
        self._frames += 1
        if self._frames % PITCH_EVERY == 0:
            # Probabilistic YIN candidates, chosen by the continuity path so far: an octave jump
            # between 32 ms steps is all but ruled out, and so is leaving the running register.
            freqs, probs = pitch_candidates(self._recent[None, :])
            register = self._own_median() if self._n_f0 >= REGISTER_AFTER else None
            f0 = self._follower.step(freqs[0], probs[0], register)
            level = float(rms_db(self._recent[None, :])[0])
            self._loud_db = max(level, self._loud_db - LOUD_DECAY_DB)
            loud = level > max(self.silence_db, self._loud_db - RELATIVE_FLOOR_DB)
            self._voiced = bool(f0 > 0 and loud)
            if self._voiced:
                self._f0[self._n_f0 % F0_HISTORY] = f0
                self._n_f0 += 1
                if self._n_f0 == PRIOR_CHECK_AFTER and len(self._prior):
                    own, prior = self._own_median(), float(np.median(self._prior))
                    if abs(np.log(own / prior)) > np.log(PRIOR_MAX_RATIO):
                        self._prior = np.zeros(0)  # another speaker: start from their own pitch
        if self._voiced:
            env_db = normalise(log_env * TO_DB)
            if self._env_mean is None:
                self._env_mean = env_db.copy()
            weight = 1.0 / min(self._n_env + 1, ENV_MEMORY)
            self._env_mean += weight * (env_db - self._env_mean)
            self._n_env += 1
            self._since_fit += 1

    @property
    def median_f0(self) -> float | None:
        """Running median f0 of the input's voiced frames (Hz), with the estimates carried from the previous
        stream (:meth:`carry_from`); None before any."""
        own = self._f0[: min(self._n_f0, F0_HISTORY)]
        if self.frozen or not len(self._prior):  # seeded: exactly the clip's
            return float(np.median(own)) if len(own) else None
        return float(np.median(np.concatenate([self._prior, own])))

    def _own_median(self) -> float:
        return float(np.median(self._f0[: min(self._n_f0, F0_HISTORY)]))

    @property
    def mean_envelope_db(self) -> F64 | None:
        """Running mean of the input's mean-removed envelope (dB); None before a voiced frame."""
        return None if self._env_mean is None else self._env_mean.copy()

    def pitch_ratio(self, target_f0: float, strength: float, max_ratio: float) -> float | None:
        """(target / input median) ** strength, limited to [1/max_ratio, max_ratio]."""
        med = self.median_f0
        if med is None or med < F0_MIN:
            return None
        ratio = float(np.exp(strength * np.log(target_f0 / med)))
        return float(np.clip(ratio, 1.0 / max_ratio, max_ratio))

    def refit_due(self) -> bool:
        """True when enough new voiced frames arrived to refit formant ratio and equaliser."""
        if self._env_mean is None or self._since_fit < REFIT_EVERY:
            return False
        self._since_fit = 0
        return True

    def fit_envelope(
        self, target_db: F64, strength: float, eq_amount: float, max_ratio: float
    ) -> tuple[float, F64]:
        """-> (formant ratio, equaliser natural-log gain per bin) moving the input toward target."""
        if self._env_mean is None:
            raise RuntimeError("fit_envelope before any voiced frame (check refit_due() first)")
        best = best_warp(self._env_mean, target_db, 1.0 / max_ratio, max_ratio)
        ratio = float(np.exp(strength * np.log(best)))
        residual = normalise(target_db) - normalise(warp(self._env_mean, ratio))
        eq_db = np.clip(residual * eq_amount, -EQ_LIMIT_DB, EQ_LIMIT_DB)
        # Outside the compared band the reference says nothing reliable: taper to no change.
        mask = band_mask().astype(np.float64)
        taper = np.convolve(mask, np.hanning(9) / np.hanning(9).sum(), mode="same")
        return ratio, eq_db * taper / TO_DB


def _quantiles(f0_values: F64) -> F64:
    """Sorted ``f0_values``, thinned to :data:`PRIOR_ESTIMATES` evenly spaced in rank if there are more (the
    whole distribution, not its end)."""
    pool = np.sort(f0_values)
    if len(pool) > PRIOR_ESTIMATES:
        pool = pool[np.linspace(0, len(pool) - 1, PRIOR_ESTIMATES).round().astype(int)]
    return pool
