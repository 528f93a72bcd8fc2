"""Linear-magnitude STFT that SoVITS takes as its reference input (``refer``).

Matches GPT-SoVITS ``module/mel_processing.py::spectrogram_torch`` with ``center=False``: the signal is
reflect-padded by (n_fft - hop) / 2 on each side (704 samples at 32 kHz), framed with a periodic Hann
window, and the magnitude is sqrt(re^2 + im^2 + 1e-8) (the epsilon of the pinned official commit
48b1a01; it keeps the gradient of sqrt finite at zero in training). Frames = (N + 2*pad - n_fft) //
hop + 1, i.e. N // hop for the v2 sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from anchorvoice.errors import AudioInputError


@dataclass
class SpectrogramConfig:
    """STFT parameters; defaults are the v2 ``data`` section (32 kHz, 2048/640/2048)."""

    n_fft: int = 2048
    """FFT size (``data.filter_length``); bins = n_fft // 2 + 1."""
    hop_length: int = 640
    """Hop in samples (``data.hop_length``): 50 frames/s at 32 kHz."""
    win_length: int = 2048
    """Hann window length (``data.win_length``)."""
    sampling_rate: int = 32000
    """Sample rate the spectrogram expects (``data.sampling_rate``)."""
    eps: float = 1e-8
    """Added under the square root of the power (official value)."""


def linear_spectrogram(wav: Tensor | np.ndarray, cfg: SpectrogramConfig | None = None) -> Tensor:
    """``wav`` (N,) or (B, N) float in [-1, 1] at ``cfg.sampling_rate`` -> (B, n_fft//2+1, frames)."""
    cfg = cfg or SpectrogramConfig()
    y = torch.as_tensor(wav, dtype=torch.float32)
    if y.ndim == 1:
        y = y.unsqueeze(0)
    if y.ndim != 2:
        raise AudioInputError(f"spectrogram input must be (N,) or (B, N) audio, got shape {tuple(y.shape)}")
    pad = (cfg.n_fft - cfg.hop_length) // 2
    if y.shape[-1] <= pad or y.shape[-1] + 2 * pad < cfg.n_fft:
        need = max(pad + 1, cfg.n_fft - 2 * pad)
        raise AudioInputError(
            f"audio too short for a spectrogram: {y.shape[-1]} samples, need at least {need} "
            f"({need / cfg.sampling_rate:.3f} s at {cfg.sampling_rate} Hz); use a longer reference clip"
        )
    if not torch.isfinite(y).all():
        raise AudioInputError("audio contains NaN or infinite samples; clean the clip before use")
    y = torch.nn.functional.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(cfg.win_length, dtype=y.dtype)
    spec = torch.stft(
        y,
        cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    power = spec.real.pow(2) + spec.imag.pow(2)
    return torch.sqrt(power + cfg.eps)
