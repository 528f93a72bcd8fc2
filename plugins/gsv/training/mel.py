"""Mel spectrograms as the official SoVITS trainer computes them (``module/mel_processing.py``).

The filterbank is librosa's default (``htk=False``, Slaney mel scale, Slaney area normalisation),
written out here so that training needs no librosa; the spectrogram is the same linear STFT
magnitude as inference (``sqrt(re^2 + im^2 + 1e-8)``, reflect pad (n_fft - hop) / 2, no centring);
``log(clamp(x, 1e-5))`` compresses the mel energies.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

_F_SP = 200.0 / 3  # Slaney scale: linear below 1 kHz, 3 mels per 200 Hz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    mel = f / _F_SP
    log_part = f >= _MIN_LOG_HZ
    mel[log_part] = _MIN_LOG_MEL + np.log(f[log_part] / _MIN_LOG_HZ) / _LOGSTEP
    return mel


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    f = m * _F_SP
    log_part = m >= _MIN_LOG_MEL
    f[log_part] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (m[log_part] - _MIN_LOG_MEL))
    return f


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> Tensor:
    """(n_mels, n_fft // 2 + 1) float32 weights equal to ``librosa.filters.mel`` with its defaults."""
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    edges = _hz_to_mel(np.array([float(fmin), fmax]))
    mel_f = _mel_to_hz(np.linspace(edges[0], edges[1], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return torch.from_numpy(weights)


def spec_to_mel(spec: Tensor, basis: Tensor) -> Tensor:
    """Linear magnitude (B, bins, T) -> log mel (B, n_mels, T) (official ``spec_to_mel_torch``)."""
    return torch.log(torch.clamp(torch.matmul(basis.to(spec), spec), min=1e-5))


def magnitude(wav: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    """(B, N) audio -> (B, n_fft // 2 + 1, frames) magnitude, differentiable (official ``spectrogram_torch``)."""
    pad = (n_fft - hop) // 2
    y = torch.nn.functional.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win, dtype=y.dtype, device=y.device)
    spec = torch.stft(y, n_fft, hop_length=hop, win_length=win, window=window, center=False, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)
