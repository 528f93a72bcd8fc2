"""Reading, writing and cleaning audio clips for offline jobs.

``read_audio`` turns whatever the user gives into a clean mono float32 ``AudioFrame``: missing,
unreadable or non-audio files raise :class:`AudioInputError` with the path and what to do; stereo is
averaged to mono; NaN/inf samples are replaced by zeros with a warning (they would poison every
later stage); other sample rates are resampled with soxr when the caller asks for a rate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from anchorvoice.errors import AudioInputError
from anchorvoice.frames import AudioFrame, FloatArray

log = logging.getLogger(__name__)


Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]
"""soxr quality recipes, quick to very high."""


def check_rate(name: str, rate: float) -> None:
    """ValueError unless ``rate`` is a positive sample rate."""
    if not rate > 0:
        raise ValueError(f"{name} must be a positive sample rate in Hz, got {rate!r}")


def resample(samples: FloatArray, sr_in: int, sr_out: int, quality: Quality = "HQ") -> FloatArray:
    """Resample mono ``samples`` from ``sr_in`` to ``sr_out`` Hz with soxr: a new float32 array (a copy when
    the rates are equal), for whole clips or an overlapping window processed on its own. A continuous
    stream cut into blocks uses :class:`anchorvoice.streaming.resample.StreamResampler` instead."""
    check_rate("sr_in", sr_in)
    check_rate("sr_out", sr_out)
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono 1-D samples, got shape {x.shape}")
    if sr_in == sr_out or len(x) == 0:
        return x.copy()
    return np.ascontiguousarray(soxr.resample(x, sr_in, sr_out, quality=quality), dtype=np.float32)


def clean_samples(samples: np.ndarray, what: str = "audio") -> FloatArray:
    """Mono float32 with non-finite values zeroed (warned, counted)."""
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    elif data.ndim != 1:
        raise AudioInputError(f"{what}: expected mono or multi-channel samples, got shape {data.shape}")
    bad = ~np.isfinite(data)
    if bad.any():
        log.warning("%s: replaced %d NaN/inf samples with silence", what, int(bad.sum()))
        data = np.where(bad, np.float32(0.0), data).astype(np.float32)
    return np.ascontiguousarray(data)


def read_audio(path: str | Path, sample_rate: int | None = None) -> AudioFrame:
    """Read an audio file as a mono float32 frame, resampled to ``sample_rate`` when given."""
    p = Path(path)
    if not p.exists():
        raise AudioInputError(f"audio file not found: {p} (check the path)")
    if p.is_dir():
        raise AudioInputError(f"{p} is a directory, not an audio file")
    if p.suffix.lower() == ".g722":
        return _read_g722(p, sample_rate)
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioInputError(
            f"cannot read {p} as audio ({exc}); use WAV, FLAC or OGG (convert with e.g. "
            f"`sox in.mp3 out.wav`)"
        ) from None
    except PermissionError:
        raise AudioInputError(f"no permission to read {p}") from None
    if data.shape[0] == 0:
        raise AudioInputError(f"{p} contains no samples")
    samples = clean_samples(data, what=str(p))
    if sample_rate is not None and sr != sample_rate:
        samples = resample(samples, int(sr), sample_rate)
        sr = sample_rate
    return AudioFrame(samples, int(sr))


def audio_channels(path: str | Path) -> int:
    """Channels of an audio file as stored (1 for G.722 and for what soundfile cannot read)."""
    p = Path(path)
    if p.suffix.lower() == ".g722":
        return 1
    try:
        return int(sf.info(str(p)).channels)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return 1


def _read_g722(p: Path, sample_rate: int | None) -> AudioFrame:
    """Raw G.722 (telephony prompts such as Debian's asterisk-core-sounds) through PyAV."""
    try:
        import av
    except ImportError:
        raise AudioInputError(f"{p}: reading .g722 needs PyAV (`pip install av`)") from None
    try:
        with av.open(str(p), format="g722") as container:
            parts = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
            sr = int(container.streams.audio[0].rate)
    except (av.FFmpegError, ValueError) as exc:
        raise AudioInputError(f"cannot decode {p} as G.722 ({exc})") from None
    if not parts:
        raise AudioInputError(f"{p} contains no samples")
    samples = clean_samples(np.concatenate(parts).astype(np.float32) / 32768.0, what=str(p))
    if sample_rate is not None and sr != sample_rate:
        samples = resample(samples, sr, sample_rate)
        sr = sample_rate
    return AudioFrame(samples, sr)


def write_audio(path: str | Path, frame: AudioFrame) -> Path:
    """Write a frame as 16-bit PCM WAV (or by extension: .flac/.ogg), creating parent folders."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(frame.samples, -1.0, 1.0)
    subtype = "PCM_16" if p.suffix.lower() in (".wav", "") else None
    sf.write(str(p), data, frame.sample_rate, subtype=subtype)
    return p


def rms_dbfs(samples: FloatArray) -> float:
    """RMS level in dBFS (-120 for silence)."""
    if len(samples) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-6))


def speech_like_signal(sample_rate: int, seconds: float = 1.0, f0: float = 150.0, seed: int = 0) -> AudioFrame:
    """A voiced, speech-like synthetic signal (warm-ups, RTF probes, tests).

    Harmonics of ``f0`` with vibrato plus a little noise.
    """
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / sample_rate
    sig = sum(np.sin(k * phase) / k for k in range(1, 12))
    rng = np.random.default_rng(seed)
    sig = 0.3 * sig / np.max(np.abs(sig)) + 0.005 * rng.standard_normal(len(t))
    return AudioFrame(sig.astype(np.float32), sample_rate)
