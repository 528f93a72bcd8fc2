"""GPT-SoVITS files go into the voice store once, as safetensors, and load back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.store.blobs import is_blob_file
from anchorvoice.engine.store.maintenance import gc, verify
from anchorvoice.errors import CorruptCheckpointError
from anchorvoice.plugins.gsv.checkpoints import load_gpt, load_hubert, load_sovits
from tests.conformance.conftest import require_reference_dir
from tests.gsv_voice import add_neural_voice


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory: pytest.TempPathFactory, builtin_plugins) -> tuple[Engine, Path]:
    gsv = require_reference_dir()
    from anchorvoice.engine.engine import EngineConfig

    tmp = tmp_path_factory.mktemp("store")
    eng = Engine(EngineConfig(home=tmp / "home", third_party_plugins=False), plugins=builtin_plugins)
    add_neural_voice(eng, gsv, tmp, name="alice")
    add_neural_voice(eng, gsv, tmp, name="bob")
    yield eng, gsv
    eng.close()


def test_a_shared_base_is_stored_once_and_voices_name_it_by_hash(two_voices: tuple[Engine, Path]) -> None:
    eng, _ = two_voices
    alice, bob = eng.voices.get("alice"), eng.voices.get("bob")
    assert set(alice.blobs) == {"gpt", "sovits", "hubert"}
    assert alice.blobs == bob.blobs
    assert len(eng.voices.blobs.shas()) == 3
    manifest = (alice.path / "voice.toml").read_text()
    assert f"sha256:{alice.blobs['sovits']}" in manifest and "s2_v2_small.pth" not in manifest
    assert all(is_blob_file(p) for p in alice.models.values())


def test_blobs_load_back_as_the_original_files(two_voices: tuple[Engine, Path]) -> None:
    eng, gsv = two_voices
    v = eng.voices.get("alice")
    pairs = ((load_sovits, "sovits", gsv / "s2_v2_small.pth"), (load_gpt, "gpt", gsv / "s1_v2_small.ckpt"))
    for load, kind, src in pairs:
        a, b = load(v.models[kind]), load(src)  # type: ignore[operator]
        assert (a.version, a.info, a.config) == (b.version, b.info, b.config)
        assert a.weights.keys() == b.weights.keys()
        assert all(torch.equal(a.weights[k], b.weights[k]) and a.weights[k].dtype == b.weights[k].dtype
                   for k in a.weights)
    h = load_hubert(v.models["hubert"])
    assert h.config["hidden_size"] == 768


def test_a_damaged_blob_breaks_only_the_voices_that_use_it(two_voices: tuple[Engine, Path], tmp_path: Path) -> None:
    eng, gsv = two_voices
    carol = add_neural_voice(eng, gsv, tmp_path, name="carol")
    # carol gets her own GPT: a copy of the fixture with one tensor changed, so a blob of her own
    gpt = load_gpt(gsv / "s1_v2_small.ckpt")
    w = dict(gpt.weights)
    k = sorted(w)[0]
    w[k] = w[k] + 1
    sha = eng.voices.blobs.put(w, {"kind": "gpt", "config": gpt.config, "version": "v2", "format": "gsv-s1"})
    folder = carol.path
    text = (folder / "voice.toml").read_text().replace(carol.blobs["gpt"], sha)
    (folder / "voice.toml").write_text(text)
    p = eng.voices.blobs.path(sha)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="damaged"):
        load_gpt(eng.voices.get("carol").models["gpt"])
    report = verify(eng.voices)
    assert report.broken_voices == {"carol": ["gpt"]} and sha in report.damaged
    eng.voices.remove("carol")
    removed = gc(eng.voices)
    assert [b.sha for b in removed.blobs] == [sha]
    assert verify(eng.voices).ok  # alice and bob never noticed


def test_a_cold_switch_reads_the_prompt_from_the_feature_cache(
    two_voices: tuple[Engine, Path], builtin_plugins: object
) -> None:
    eng, _ = two_voices
    from anchorvoice.engine.engine import EngineConfig

    first = eng.pipeline("tts", "bob")
    made = first._reference_prompt()
    assert any(k.startswith("feature_extractor:") for k in first.timings)
    cold = Engine(EngineConfig(home=eng.config.home, third_party_plugins=False), plugins=builtin_plugins)
    try:
        again = cold.pipeline("tts", "bob")
        cached = again._reference_prompt()
        assert not any(k.startswith(("feature_extractor:", "tokenizer:")) for k in again.timings)
        assert made[1] is not None and cached[1] is not None and made[0] is not None and cached[0] is not None
        assert np.array_equal(made[1].tokens, cached[1].tokens) and np.array_equal(made[0].ids, cached[0].ids)
        assert made[0].symbols == cached[0].symbols and made[0].word2ph == cached[0].word2ph
    finally:
        cold.close()


def test_a_style_speaks_with_its_own_prompt_and_says_so(two_voices: tuple[Engine, Path], tmp_path: Path) -> None:
    eng, _ = two_voices
    ref = tmp_path / "excited.wav"
    sig = speech_like_signal(32000, 5.0, f0=260.0).samples
    sf.write(str(ref), sig, 32000)
    eng.voices.set_style("alice", "excited", clip=ref, text="We won, we really won!", tags=["energy:high"])
    pipe = eng.pipeline("tts", "alice")
    default = pipe._reference_prompt()
    assert pipe.style_used == "default"
    styled = pipe._reference_prompt("high")
    assert pipe.style_used == "excited"
    assert default[1] is not None and styled[1] is not None and styled[0] is not None
    assert not np.array_equal(default[1].tokens, styled[1].tokens) and "W" in styled[0].text
    pipe._reference_prompt("sleepy")
    assert pipe.style_used == "default"


def test_gpt_sovits_voices_are_compared_by_their_style_vector(two_voices: tuple[Engine, Path]) -> None:
    from anchorvoice.engine.store.families import collect, similar

    eng, _ = two_voices
    emb = collect(eng.voices, eng.plugins.speaker_embeddings)
    assert emb.space == "gsv-ge" and {"alice", "bob"} <= set(emb.vectors)
    assert similar(emb, "alice", 1)[0] == ("bob", pytest.approx(1.0, abs=1e-4))  # same clip, same ge


def test_a_cold_switch_with_cached_features_loads_no_prompt_models(two_voices: tuple[Engine, Path]) -> None:
    """The first switch to a voice computes its prompt (HuBERT + RVQ) and keeps it; a later cold switch
    (the pipeline unloaded) reads it and never prepares those two stages; the prompt is the same."""
    eng, _ = two_voices
    eng.close()
    for cached in (eng.voices.get("bob").path / "cache").glob("*.npz"):  # earlier tests may have filled it
        cached.unlink()
    first = eng.pipeline("tts", "bob")
    assert first.prompt_ready() == "default"
    want = first._reference_prompt(None)
    assert first._stages["feature_extractor"]._model is not None  # computed: HuBERT was loaded
    eng.close()  # unloaded: the next switch is cold
    assert not eng.loaded("tts", "bob")
    again = eng.pipeline("tts", "bob")
    again.prompt_ready()
    assert again._stages["feature_extractor"]._model is None and again._stages["tokenizer"]._model is None
    got = again._reference_prompt(None)
    assert got[0] is not None and got[1] is not None and want[0] is not None and want[1] is not None
    assert np.array_equal(got[1].tokens, want[1].tokens) and got[0].symbols == want[0].symbols
    assert eng.loaded("tts", "bob")
