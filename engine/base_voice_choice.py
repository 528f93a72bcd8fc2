"""Which base voice the embedded default TTS starts from: the one nearest the target voice.

A preset lists candidate base voices (``[[base_voices]]``: Piper voices, flite voices, espeak-ng
variants). For each language, every candidate that speaks it reads a short calibration sentence once;
its profile (median pitch, pitch range, and a cheap speaker embedding from spectral statistics) is
compared with the voice's reference clips. The nearest wins, so a female target starts from a female
voice instead of a male one shifted an octave. A candidate's ``tier`` is a preference (neural voices
first): each tier costs as much as two octaves of pitch distance.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anchorvoice.audio_io import resample
from anchorvoice.frames import AudioFrame

log = logging.getLogger(__name__)

RATE = 16000
"""Profiles are computed at this rate."""

CALIBRATION = {
    "en": "The quick brown fox jumps over the lazy dog, and then it runs all the way home.",
    "ja": "今日はとてもいい天気ですね。散歩に行きましょう。",
    "zh": "今天天气很好，我们一起去公园散步吧。",
    "de": "Der schnelle braune Fuchs springt über den faulen Hund.",
    "fr": "Le renard brun rapide saute par-dessus le chien paresseux.",
    "es": "El rápido zorro marrón salta sobre el perro perezoso.",
}
"""A sentence per language each candidate reads to be profiled (others: the English one)."""

TIER_COST = 2.0
"""Distance one tier of preference costs (2.0 = two octaves of pitch). Measured with
bench/voice_quality.py: the neural Piper voice moved 1.6 octaves by the DSP converter's whole-clip
path still scores higher (DNSMOS about 2.9, Whisper WER under 0.1) than espeak-ng or flite voices
left at their own pitch (DNSMOS 2.0-2.7, WER up to 0.3), and the cheap spectral embedding puts
synthetic voices near each other whatever they sound like; so a lower tier wins only across more
than two octaves."""


@dataclass
class VoiceProfile:
    """What a voice sounds like, cheaply: pitch and a spectral speaker embedding."""

    f0_hz: float
    """Median pitch of voiced frames (0 when none)."""
    f0_low_hz: float
    """10th percentile of the pitch."""
    f0_high_hz: float
    """90th percentile of the pitch."""
    embedding: list[float]
    """Mean and spread of the log mel spectrum over speech frames, level-normalised (cosine-compared)."""


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    if len(x) < size:
        x = np.pad(x, (0, size - len(x)))
    n = 1 + (len(x) - size) // hop
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def _mel_bank(n_fft: int, n_mels: int = 32, fmax: float = 7600.0) -> np.ndarray:
    mel = np.linspace(0, 2595 * np.log10(1 + fmax / 700), n_mels + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    bins = np.floor((n_fft + 1) * hz / RATE).astype(int)
    bank = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(1, n_mels + 1):
        lo, mid, hi = bins[m - 1], bins[m], bins[m + 1]
        if mid > lo:
            bank[m - 1, lo:mid] = (np.arange(lo, mid) - lo) / (mid - lo)
        if hi > mid:
            bank[m - 1, mid:hi] = (hi - np.arange(mid, hi)) / (hi - mid)
    return bank


def profile(audio: AudioFrame) -> VoiceProfile:
    """The profile of a speech clip (any rate; mono)."""
    x = np.asarray(audio.samples, np.float64)
    if audio.sample_rate != RATE:
        x = resample(x.astype(np.float32), audio.sample_rate, RATE).astype(np.float64)
    frames = _frames(x, 640, 160) * np.hanning(640)  # 40 ms windows, 10 ms hop
    energy = np.sqrt(np.mean(frames**2, axis=1))
    speech = energy > max(1e-4, 0.1 * float(np.percentile(energy, 95)))
    if not speech.any():
        return VoiceProfile(0.0, 0.0, 0.0, [])
    spec = np.abs(np.fft.rfft(frames[speech], 1024, axis=1)) ** 2
    # Pitch: normalised autocorrelation peak in 60-500 Hz, voiced when strong.
    ac = np.fft.irfft(spec, 1024, axis=1)[:, :400]
    ac /= np.maximum(ac[:, :1], 1e-12)
    lo, hi = RATE // 500, RATE // 60
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    strength = ac[np.arange(len(lag)), lag]
    voiced = strength > 0.45
    f0 = RATE / lag[voiced] if voiced.any() else np.zeros(0)
    logmel = np.log(_mel_bank(1024) @ spec.T + 1e-9)  # (mels, frames)
    logmel -= logmel.mean(axis=0, keepdims=True)  # level-normalised per frame
    emb = np.concatenate([logmel.mean(axis=1), logmel.std(axis=1)])
    stats = np.percentile(f0, [10, 50, 90]) if f0.size else np.zeros(3)
    return VoiceProfile(float(stats[1]), float(stats[0]), float(stats[2]), [round(float(v), 4) for v in emb])


def distance(a: VoiceProfile, b: VoiceProfile) -> float:
    """Pitch distance in octaves (median and range) plus the embedding's cosine distance."""
    d = 0.0
    if a.f0_hz > 0 and b.f0_hz > 0:
        d += abs(np.log2(a.f0_hz / b.f0_hz))
        span_a = np.log2(max(a.f0_high_hz, 1.0) / max(a.f0_low_hz, 1.0))
        span_b = np.log2(max(b.f0_high_hz, 1.0) / max(b.f0_low_hz, 1.0))
        d += 0.25 * abs(span_a - span_b)
    if a.embedding and len(a.embedding) == len(b.embedding):
        u = np.asarray(a.embedding) - np.mean(a.embedding)
        v = np.asarray(b.embedding) - np.mean(b.embedding)
        d += 1.0 - float(u @ v / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12))
    return float(d)


@dataclass
class Choice:
    """The base voice chosen for one language, and why."""

    index: int
    """Index of the candidate in the preset's ``base_voices``."""
    label: str
    """``plugin`` or ``plugin(params)`` for messages."""
    distance: float
    """Its distance to the voice, tier cost included (0 when chosen without comparing)."""
    reason: str
    """``nearest``, ``first`` or ``only``."""


class ProfileCache:
    """Candidate profiles by (candidate, language), kept in a JSON file so each voice is profiled once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                self._data = dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                self._data = {}

    def get(self, key: str) -> VoiceProfile | None:
        raw = self._data.get(key)
        try:
            return VoiceProfile(**raw) if isinstance(raw, dict) else None
        except TypeError:
            return None

    def put(self, key: str, value: VoiceProfile) -> None:
        self._data[key] = asdict(value)
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:  # a read-only home only costs time
            log.debug("cannot write base voice profiles to %s: %s", self.path, exc)


def candidate_key(plugin: str, params: dict[str, Any], language: str) -> str:
    return json.dumps([plugin, params, language], sort_keys=True, ensure_ascii=False)
