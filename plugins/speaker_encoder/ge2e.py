"""Speaker embeddings from Resemblyzer's bundled weights (GE2E d-vector, Wan et al., ICASSP 2018).

Only the weight file of the ``resemblyzer`` package is used, found without importing the package
and read with ``torch.load(weights_only=True)`` (tensors only: no pickled code runs). The network
(3-layer LSTM over 40 mel bands, linear + ReLU, L2 norm) and the utterance embedding (mean of
1.6 s partial windows, renormalised) are written here, and so are the front end and the silence
trimming, after Resemblyzer's (librosa's slaney mel, 25 ms / 10 ms; volume to -30 dBFS; long
silences cut), with an energy gate in place of its webrtcvad one (whose import needs ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

SAMPLE_RATE = 16000
PARTIAL_FRAMES = 160
"""Mel frames per partial window (1.6 s at 10 ms)."""
PARTIAL_STEP = 77
"""Frames between partial windows (1.3 windows per second, Resemblyzer's default)."""


INSTALL_HINT = "pip install resemblyzer (or the 'bench' extra: pip install 'anchorvoice[bench]')"
"""What to install for this encoder's weights."""


def find_weights() -> Path | None:
    """Where the ``resemblyzer`` package keeps ``pretrained.pt``, or None when it is not installed
    (the package is located, never imported)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    return path if path.is_file() else None


def weights_path() -> Path:
    """:func:`find_weights`, or :class:`ModuleNotFoundError` saying what to install."""
    path = find_weights()
    if path is None:
        raise ModuleNotFoundError(f"resemblyzer (its bundled pretrained.pt) is not installed: {INSTALL_HINT}")
    return path


class SpeakerEncoder(torch.nn.Module):
    """GE2E speaker encoder; ``embed(wav16k)`` -> unit-norm 256-d embedding."""

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        state = torch.load(weights or weights_path(), map_location="cpu", weights_only=True)
        state = state.get("model_state", state)
        self.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
        self.eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.norm(raw, dim=1, keepdim=True).clamp_min(1e-9)

    def embed(self, wav: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Embedding of one 16 kHz utterance (silences trimmed, level normalised first)."""
        mel = mel_frames(trim_silences(np.asarray(wav, dtype=np.float64)))
        if len(mel) < PARTIAL_FRAMES:
            mel = np.pad(mel, ((0, PARTIAL_FRAMES - len(mel)), (0, 0)))
        starts = range(0, len(mel) - PARTIAL_FRAMES + 1, PARTIAL_STEP)
        batch = np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])
        with torch.no_grad():
            partials = self(torch.from_numpy(batch.astype(np.float32))).numpy()
        mean = partials.mean(axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float64)


def trim_silences(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Volume up to -30 dBFS (never down), then drop 30 ms windows more than 40 dB under the loud
    ones, keeping 6 windows (180 ms) of context around speech."""
    level = 10 * np.log10(np.mean(x**2) + 1e-12)
    if level < -30.0:
        x = x * 10 ** ((-30.0 - level) / 20)
    win = SAMPLE_RATE * 30 // 1000
    n = len(x) // win
    if n == 0:
        raise ValueError("clip shorter than 30 ms")
    db = 10 * np.log10(np.mean(x[: n * win].reshape(n, win) ** 2, axis=1) + 1e-12)
    keep = db > np.percentile(db, 95) - 40.0
    keep = np.convolve(keep.astype(float), np.ones(13), mode="same") > 0
    return x[: n * win].reshape(n, win)[keep].reshape(-1)


def _hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above (librosa's default)."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), lin)


def _mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


def mel_filters(n_fft: int = 400, n_mels: int = 40) -> npt.NDArray[np.float64]:
    """(n_mels, n_fft//2+1) triangular, area-normalised ("slaney") mel filterbank from 0 to 8 kHz."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def mel_frames(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """(T, 40) mel power frames: centred 25 ms Hann windows at 10 ms (the encoder's training front end)."""
    n_fft, hop = 400, 160
    padded = np.pad(x, n_fft // 2)
    n = 1 + (len(padded) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n]
    window = np.hanning(n_fft + 1)[:-1]
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power @ mel_filters(n_fft).T).astype(np.float32)


def cosine(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """Cosine similarity of two embeddings."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
