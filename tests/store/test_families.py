"""Timbre families: similar voices found, groups formed, each group told which base to share."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.store.families import cluster, collect, similar


def _clip(path: Path, f0: float) -> Path:
    sf.write(str(path), speech_like_signal(16000, 2.0, f0=f0).samples, 16000)
    return path


def test_low_and_high_voices_form_two_families(engine: Engine, tmp_path: Path) -> None:
    for name, f0 in (("low1", 95.0), ("low2", 100.0), ("low3", 105.0), ("high1", 240.0), ("high2", 250.0)):
        engine.add_voice(name, [_clip(tmp_path / f"{name}.wav", f0)])
    emb = collect(engine.voices, engine.plugins.speaker_embeddings)
    assert emb.space == "dsp-envelope" and len(emb.vectors) == 5
    assert similar(emb, "high1", 1)[0][0] == "high2"
    assert [n for n, _ in similar(emb, "low2", 2)] in (["low1", "low3"], ["low3", "low1"])
    fams = cluster(engine.voices, emb, 2)
    assert sorted(sorted(f.members) for f in fams) == [["high1", "high2"], ["low1", "low2", "low3"]]
