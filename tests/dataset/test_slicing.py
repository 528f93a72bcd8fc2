"""Slicing at silences with the official slicer's defaults, the length cap, the loudness mix, rejects."""

from __future__ import annotations

import numpy as np

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.dataset.quality import QualityConfig, reject_reason
from anchorvoice.engine.dataset.slicer import (
    SlicerConfig,
    normalise_loudness,
    slice_at_silences,
    split_long,
    uncut_end,
)
from anchorvoice.engine.dataset.sources import cut_source
from anchorvoice.frames import AudioFrame
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


def test_clip_names_carry_the_official_frame_end() -> None:
    # slicer2 reports a piece it does not cut as (0, rms_frames * hop): 1.2 s at 32 kHz = 38400 samples,
    # 1 + 38400 // 320 = 121 frames -> end 38720 (what tools/slice_audio.py names the clip by)
    cfg = SlicerConfig()
    assert uncut_end(38400, RATE, cfg) == 38720 and uncut_end(38399, RATE, cfg) == 38400
    t = np.arange(38400) / RATE
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert slice_at_silences(x, RATE, cfg) == [(0, 38720)]
    (whole,) = cut_source(AudioFrame(x, RATE), "a.wav", cfg, QualityConfig(min_snr_db=-100), whole=True)
    assert whole.name == "a.wav_0000000000_0000038720.wav"
    assert (whole.start, whole.end, len(whole.samples)) == (0, 38400, 38400)


def test_last_clip_end_is_the_frame_end_samples_are_clamped() -> None:
    x, _ = _speech("demo-thanks", "agent-pass", gap_s=1.0)
    x = x[: -int(0.9 * RATE)]  # speech up to ~0.1 s before the end: the last clip runs to the end
    spans = slice_at_silences(x, RATE, SlicerConfig())
    assert spans[-1][1] == (1 + len(x) // 320) * 320 > len(x)
    pieces = cut_source(AudioFrame(x, RATE), "r.wav", SlicerConfig(), QualityConfig())
    assert pieces[-1].end == len(x) and pieces[-1].name.endswith(f"_{spans[-1][1]:010d}.wav")


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
