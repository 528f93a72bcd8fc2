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
    # the DSP statistics only: the speaker-encoder plugin's space, where installed, ranks above them for
    # voices with references and has its own tests (test_speaker_encoder.py)
    emb = collect(engine.voices, lambda v: {k: x for k, x in engine.plugins.speaker_embeddings(v).items()
                                            if k == "dsp-envelope"})
    assert emb.space == "dsp-envelope" and len(emb.vectors) == 5
    assert similar(emb, "high1", 1)[0][0] == "high2"
    assert [n for n, _ in similar(emb, "low2", 2)] in (["low1", "low3"], ["low3", "low1"])
    fams = cluster(engine.voices, emb, 2)
    assert sorted(sorted(f.members) for f in fams) == [["high1", "high2"], ["low1", "low2", "low3"]]


def test_each_family_is_told_a_concrete_base(tmp_path: Path) -> None:
    """The base most members use; where none is shared yet, that of the member nearest the group's mean
    that has one (even when the most central voice has no stored model)."""
    import torch

    from anchorvoice.engine.voices import VoiceLibrary

    lib = VoiceLibrary(tmp_path / "home")
    models = {}
    for base in ("X", "Y", "Z"):
        models[base] = tmp_path / f"{base}.bin"
        models[base].write_bytes(base.encode())
    weights = {"X": 1.0, "Y": 2.0, "Z": 3.0}

    def importer(kind: str, p: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
        return {"w": torch.full((4,), weights[p.stem])}, {}

    vectors = {"low1": [1.0, 0.0], "low2": [0.99, 0.1], "low3": [0.98, -0.1], "high1": [0.3, 0.95],
               "high2": [0.1, 0.99], "high3": [0.0, 1.0]}
    uses = {"low1": "X", "low2": "X", "low3": "Y", "high1": "Z", "high2": None, "high3": None}
    for name, base in uses.items():
        lib.add(name, [_clip(tmp_path / f"{name}.wav", 120.0)], importer=importer,
                models={"gpt": models[base]} if base else None)
    emb = collect(lib, lambda v: {"test": vectors[v.name]})
    fams = {tuple(sorted(f.members)): f for f in cluster(lib, emb, 2)}
    low, high = fams[("low1", "low2", "low3")], fams[("high1", "high2", "high3")]
    assert low.base == {"gpt": lib.get("low1").blobs["gpt"]} and low.shared_by == 2
    assert high.center == "high2" and not lib.get("high2").blobs  # the central voice has no stored model
    assert high.base == {"gpt": lib.get("high1").blobs["gpt"]} and high.shared_by == 1
