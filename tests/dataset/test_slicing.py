"""Slicing at silences with the official slicer's defaults, the length cap, the loudness mix, rejects."""

from __future__ import annotations

import numpy as np

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.dataset.quality import QualityConfig, reject_reason
from anchorvoice.engine.dataset.slicer import SlicerConfig, normalise_loudness, slice_at_silences, split_long
from tests.conftest import asterisk_clip

RATE = 32000


def _speech(*names: str, gap_s: float = 1.0) -> tuple[np.ndarray, list[int]]:
    parts, starts, pos = [], [], 0
    for n in names:
        x = read_audio(asterisk_clip(n), RATE).samples
        starts.append(pos)
        parts += [x, np.zeros(int(gap_s * RATE), np.float32)]
        pos += len(x) + int(gap_s * RATE)
    return np.concatenate(parts), starts


def test_defaults_are_the_official_webui_values() -> None:
    c = SlicerConfig()
    official = (-34, 4000, 300, 10, 500)
    assert (c.threshold_db, c.min_length_ms, c.min_interval_ms, c.hop_ms, c.max_sil_kept_ms) == official
    assert (c.norm_max, c.norm_alpha) == (0.9, 0.25)


def test_cuts_fall_in_the_silences_between_prompts() -> None:
    x, starts = _speech("demo-thanks", "demo-enterkeywords", "agent-pass")
    spans = slice_at_silences(x, RATE, SlicerConfig())
    assert len(spans) == 3
    for (a, _b), s in zip(spans, starts):
        assert s - int(0.55 * RATE) <= a <= s + int(0.3 * RATE)  # at most 500 ms of silence kept
    kept = sum(b - a for a, b in spans)
    assert kept < len(x) - 1.5 * RATE  # most of the 3 s of silence is gone


def test_short_prompts_join_until_min_length() -> None:
    x, _ = _speech("demo-thanks", "demo-thanks", gap_s=0.4)
    spans = slice_at_silences(x, RATE, SlicerConfig(min_length_ms=8000))
    assert len(spans) == 1  # 5.5 s + 5.5 s: no cut before 8 s, after the second prompt only silence


def test_long_clips_are_split_under_the_cap() -> None:
    x, _ = _speech("vm-options", "demo-echotest", gap_s=0.1)
    pieces = split_long(x, 0, len(x), RATE, 10.0)
    assert all(b - a <= 10 * RATE for a, b in pieces)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(x)
    assert all(p[1] == q[0] for p, q in zip(pieces, pieces[1:]))


def test_loudness_mix_is_the_official_formula() -> None:
    x = np.array([0.1, -0.4, 0.2], np.float32)
    y = normalise_loudness(x, 0.9, 0.25)
    np.testing.assert_allclose(y, x / 0.4 * 0.9 * 0.25 + 0.75 * x, rtol=1e-6)
    assert np.abs(normalise_loudness(x * 4, 0.9, 0.25)).max() <= 1.0


def test_rejects_name_their_reason() -> None:
    q = QualityConfig()
    speech = read_audio(asterisk_clip("demo-thanks"), RATE).samples
    assert reject_reason(speech, RATE, q) is None
    assert "too short" in reject_reason(speech[: RATE // 2], RATE, q)
    assert "silent" in reject_reason(np.zeros(2 * RATE, np.float32), RATE, q)
    clipped = np.clip(speech * 30, -1, 1)
    assert "clipped" in reject_reason(clipped, RATE, q)
    noise = np.random.default_rng(1).normal(0, 0.1, 3 * RATE).astype(np.float32)
    assert "mostly noise" in reject_reason(noise, RATE, q)
