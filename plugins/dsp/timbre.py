"""Frame-wise timbre transfer: each input envelope is replaced by its nearest reference envelopes.

A global formant warp and a long-term equaliser move the *average* envelope onto the target's;
the envelope of each sound stays the input speaker's. Here, as in unit selection and kNN voice
conversion (Baas et al., "Voice conversion with just nearest neighbors", Interspeech 2023, there on
neural features; here on spectral envelopes), every frame's envelope, after the global warp, is
matched against a codebook of the reference speaker's own voiced-frame envelopes, and the mean of
the ``NEIGHBOURS`` nearest takes its place above ``MATCH_FROM_HZ``: the vowel stays the vowel the
input said, its upper resonances become the ones the target produced for the nearest sound.

Measured with a speaker encoder (bench/voice_quality.py) the gain is small and not consistent
(+0.01 to +0.03 cosine on natural inputs, -0.07 on flite's diphone ``kal``), so the converter's
default leaves it off (``DspConfig.timbre_frames = 0``).

Envelopes are stored and compared as their low cepstrum (the LIFTER+1 coefficients that the true
envelope is made of, so nothing is lost): Euclidean distance of cepstra is the RMS log-spectral
distance, and a codebook of ``CODEBOOK_SIZE`` entries fits in the voice's analysis table.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from anchorvoice.plugins.dsp.analysis import N_FFT, SAMPLE_RATE, cepstrum_of, envelope_of

F64 = npt.NDArray[np.float64]

CODEBOOK_SIZE = 128
"""Envelopes kept from the reference (k-means centroids of its voiced frames)."""
KMEANS_FRAMES = 1024
"""Frames (spread evenly over the clip) that the k-means sees: a 30 s reference has ~2700 voiced
frames, a thousand cover its sounds and keep ``voices add`` quick."""
KMEANS_ITERATIONS = 12
"""Lloyd iterations when building the codebook (converges well before this on speech)."""
NEIGHBOURS = 4
"""Codebook entries averaged per frame: one entry flickers from frame to frame, four are smooth."""
MATCH_FROM_HZ = 1500.0
"""The matched envelope takes over above about this frequency (logistic, ``MATCH_WIDTH_HZ`` wide);
below it the input's own (warped) first and second formants stay, which keep the words clear."""
MATCH_WIDTH_HZ = 300.0
SMOOTHING = 0.5
"""Share of the previous frame's matched envelope kept in the next (one-pole, ~16 ms at 8 ms frames)."""


def build_codebook(log_envs: F64, size: int = CODEBOOK_SIZE) -> F64:
    """(n, LIFTER+1) cepstral codebook of (F, N_FFT//2+1) natural-log voiced-frame envelopes.

    Level (c0) is dropped: only shape is matched and transferred. Deterministic (k-means started
    from frames spread evenly over the clip).
    """
    pick = np.linspace(0, len(log_envs) - 1, min(KMEANS_FRAMES, len(log_envs))).astype(int)
    ceps = cepstrum_of(np.asarray(log_envs, dtype=np.float64)[pick])
    ceps[:, 0] = 0.0
    n = min(size, len(ceps))
    if n == 0:
        return np.zeros((0, ceps.shape[1]))
    centres = ceps[np.linspace(0, len(ceps) - 1, n).astype(int)].copy()
    for _ in range(KMEANS_ITERATIONS):
        d = ((ceps[:, None, 1:] - centres[None, :, 1:]) ** 2).sum(axis=2)
        nearest = d.argmin(axis=1)
        for j in range(n):
            members = ceps[nearest == j]
            if len(members):
                centres[j] = members.mean(axis=0)
    return centres


class FrameMatcher:
    """Maps one natural-log envelope (N_FFT//2+1,) to ``amount`` of the way toward its neighbours'."""

    def __init__(self, codebook: F64, amount: float) -> None:
        self.codebook = np.asarray(codebook, dtype=np.float64)
        self.amount = float(amount)
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
        self.band_weight: F64 = 1.0 / (1.0 + np.exp(-(freqs - MATCH_FROM_HZ) / MATCH_WIDTH_HZ))
        """Per-bin share of the matched envelope (times ``amount``)."""
        self._prev: F64 | None = None

    def reset(self) -> None:
        """New stream."""
        self._prev = None

    def __call__(self, log_env: F64) -> F64:
        if self.amount <= 0.0 or len(self.codebook) == 0:
            return log_env
        cep = cepstrum_of(log_env[None, :])[0]
        d = ((self.codebook[:, 1:] - cep[None, 1:]) ** 2).sum(axis=1)
        k = min(NEIGHBOURS, len(d))
        near = np.argpartition(d, k - 1)[:k]
        matched = self.codebook[near].mean(axis=0)
        if self._prev is not None:
            matched = SMOOTHING * self._prev + (1.0 - SMOOTHING) * matched
        self._prev = matched
        target = matched.copy()
        target[0] = cep[0]  # keep the input frame's level
        weight = self.amount * self.band_weight
        return (1.0 - weight) * log_env + weight * envelope_of(target[None, :])[0]

