"""The ``gsv-t2s`` prosody stage: streaming chunks, prompts, batching, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from anchorvoice.engine.stages import ProsodyModel
from anchorvoice.errors import CheckpointError, StageError, TextInputError
from anchorvoice.frames import PhonemeFrame, TokenFrame
from anchorvoice.plugins.gsv.kv_cache import T2SRuntime
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder, load_t2s
from anchorvoice.plugins.gsv.t2s_sampling import SamplingConfig, decode, decode_batch, make_generator
from anchorvoice.plugins.gsv.t2s_stage import GsvT2S, GsvT2SConfig
from tests.conformance.conftest import require_reference_dir

CFG = T2SConfig(hidden_dim=32, embedding_dim=32, head=2, n_layer=2)


@pytest.fixture(scope="module")
def model() -> Text2SemanticDecoder:
    torch.manual_seed(21)
    m = Text2SemanticDecoder(CFG).eval().requires_grad_(False)
    m.ar_predict_layer.weight[CFG.eos].fill_(0.0)  # keep EOS unlikely so lengths are set by the limits
    return m


def _phones(n: int, seed: int, bert: bool = True) -> PhonemeFrame:
    g = np.random.default_rng(seed)
    ids = g.integers(0, 732, n).astype(np.int64)
    feats = (0.5 * g.standard_normal((1024, n))).astype(np.float32) if bert else None
    return PhonemeFrame(ids=ids, symbols=["x"] * n, word2ph=[1] * n, language="en", text="t", bert=feats)


def _prompt_tokens(n: int = 10) -> TokenFrame:
    return TokenFrame(tokens=np.random.default_rng(9).integers(0, 1024, n).astype(np.int64), frame_rate=25.0)


def _stage(model: Text2SemanticDecoder, **params: object) -> GsvT2S:
    stage = GsvT2S(GsvT2SConfig(**params))  # type: ignore[arg-type]
    stage.load_model(model)
    return stage


def test_is_a_prosody_stage_named_gsv_t2s() -> None:
    assert issubclass(GsvT2S, ProsodyModel) and GsvT2S.name == "gsv-t2s"
    assert GsvT2SConfig().top_k == 15 and GsvT2SConfig().repetition_penalty == 1.35


def test_streams_chunks_that_join_to_the_whole_decode(model: Text2SemanticDecoder) -> None:
    stage = _stage(model, chunk_tokens=4, first_chunk_tokens=0, max_chunk_tokens=0, top_k=1, early_stop_num=13)
    text, ref = _phones(7, 1), _phones(5, 2, bert=False)
    frames = list(stage.generate(text, ref, _prompt_tokens()))
    assert [len(f.tokens) for f in frames] == [4, 4, 4, 2]  # 14 tokens (limit 13 keeps the 14th)
    assert [f.final for f in frames] == [False, False, False, True]
    assert all(f.frame_rate == 25.0 and f.tokens.dtype == np.int64 for f in frames)
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.16, 0.32, 0.48])
    # the stage puts the prompt phones first and zero BERT where a frame has none (official layout)
    phones = torch.from_numpy(np.concatenate([ref.ids, text.ids]))
    bert = torch.cat([torch.zeros(1024, 5), torch.from_numpy(text.bert)], dim=1)
    direct = decode(
        T2SRuntime(model),
        phones,
        bert,
        torch.from_numpy(_prompt_tokens().tokens),
        SamplingConfig(top_k=1, early_stop_num=13),
        make_generator(0),
    )
    assert np.concatenate([f.tokens for f in frames]).tolist() == direct.generated.tolist()


def test_exact_multiple_of_the_chunk_never_yields_an_empty_final_frame(model: Text2SemanticDecoder) -> None:
    stage = _stage(model, chunk_tokens=4, first_chunk_tokens=0, max_chunk_tokens=0, top_k=1, early_stop_num=11)
    frames = list(stage.generate(_phones(6, 3), _phones(4, 4), _prompt_tokens()))  # 12 tokens
    assert [len(f.tokens) for f in frames] == [4, 4, 4] and frames[-1].final


def test_first_chunk_has_its_own_size_for_early_audio(model: Text2SemanticDecoder) -> None:
    stage = _stage(model, chunk_tokens=4, first_chunk_tokens=6, max_chunk_tokens=0, top_k=1, early_stop_num=13)
    frames = list(stage.generate(_phones(7, 1), _phones(5, 2, bert=False), _prompt_tokens()))  # 14 tokens
    assert [len(f.tokens) for f in frames] == [6, 4, 4]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.24, 0.40])


def test_later_chunks_double_up_to_the_cap(model: Text2SemanticDecoder) -> None:
    stage = _stage(model, chunk_tokens=2, first_chunk_tokens=3, max_chunk_tokens=8, top_k=1, early_stop_num=29)
    frames = list(stage.generate(_phones(7, 1), _phones(5, 2, bert=False), _prompt_tokens()))  # 30 tokens
    assert [len(f.tokens) for f in frames] == [3, 2, 4, 8, 8, 5]
    assert [f.final for f in frames] == [False] * 5 + [True]
    with pytest.raises(StageError, match="max_chunk_tokens"):
        next(_stage(model, max_chunk_tokens=-1).generate(_phones(7, 1)))


def test_seed_reproduces_sampling_and_reference_free_works(model: Text2SemanticDecoder) -> None:
    text = _phones(8, 5)
    runs = [
        np.concatenate([f.tokens for f in _stage(model, seed=s, early_stop_num=30).generate(text)]) for s in (7, 7, 8)
    ]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_batch_matches_the_batched_decoder_and_keeps_order(model: Text2SemanticDecoder) -> None:
    stage = _stage(model, top_k=1, early_stop_num=15)
    texts, ref, prompt = [_phones(9, 10), _phones(4, 11), _phones(6, 12)], _phones(3, 13), _prompt_tokens()
    frames = stage.generate_batch(texts, ref, prompt)
    results = decode_batch(
        T2SRuntime(model),
        [torch.from_numpy(np.concatenate([ref.ids, t.ids])) for t in texts],
        [torch.from_numpy(np.concatenate([ref.bert, t.bert], axis=1)) for t in texts],
        torch.from_numpy(prompt.tokens),
        SamplingConfig(top_k=1, early_stop_num=15),
        make_generator(0),
    )
    for frame, result in zip(frames, results, strict=True):
        assert frame.final and frame.tokens.tolist() == result.official_semantic.tolist()
    # greedy batching only changes what the official batch path drops (its last token)
    for frame, text in zip(frames, texts, strict=True):
        single = np.concatenate([f.tokens for f in stage.generate(text, ref, prompt)])
        assert frame.tokens.tolist() == single[: len(frame.tokens)].tolist()


def test_int8_precision_runs_and_float32_is_the_default(model: Text2SemanticDecoder) -> None:
    stage = _stage(model, top_k=1, early_stop_num=20, precision="int8")
    tokens = np.concatenate([f.tokens for f in stage.generate(_phones(8, 6), _phones(4, 7), _prompt_tokens())])
    assert len(tokens) == 21 and tokens.max() < CFG.eos
    assert GsvT2SConfig().precision == "float32"


def test_bad_input_gets_clear_errors(model: Text2SemanticDecoder) -> None:
    stage = _stage(model)
    empty = PhonemeFrame(ids=np.zeros(0, np.int64), symbols=[], word2ph=[], language="en", text="!!")
    with pytest.raises(TextInputError, match="nothing to speak"):
        list(stage.generate(empty))
    with pytest.raises(StageError, match="or neither"):
        list(stage.generate(_phones(4, 1), _phones(3, 2), None))
    with pytest.raises(StageError, match=r"\[0, 1024\)"):
        list(stage.generate(_phones(4, 1), _phones(3, 2), TokenFrame(np.array([1024]), 25.0)))
    bad_ids = _phones(4, 1)
    bad_ids.ids[0] = 900
    with pytest.raises(StageError, match="phoneme vocabulary of 732"):
        list(stage.generate(bad_ids))
    bad_bert = _phones(4, 1)
    bad_bert.bert = np.zeros((1024, 3), np.float32)
    with pytest.raises(StageError, match="BERT"):
        list(stage.generate(bad_bert))
    with pytest.raises(StageError, match="top_k"):
        list(_stage(model, top_k=0).generate(_phones(4, 1)))
    with pytest.raises(StageError, match="prepare"):
        list(GsvT2S().generate(_phones(4, 1)))


def test_prepare_needs_a_gpt_path_and_loads_the_voice_model(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="--gpt"):
        GsvT2S().prepare(None)
    root = require_reference_dir()
    stage = GsvT2S(GsvT2SConfig(gpt_path=str(root / "s1_v2_small.ckpt"), top_k=1, early_stop_num=5))
    stage.prepare(None)
    assert stage.model.config.n_layer == 3
    frames = list(stage.generate(_phones(6, 1)))
    assert sum(len(f.tokens) for f in frames) == 6


def test_passes_the_plugin_contract_checker() -> None:
    from anchorvoice.engine.testing import check_stage

    root = require_reference_dir()
    config = GsvT2SConfig(gpt_path=str(root / "s1_v2_small.ckpt"), chunk_tokens=5, early_stop_num=12, seed=0)
    stage = check_stage(
        GsvT2S,
        config=config,
        inputs={"phonemes": _phones(6, 1), "prompt_text": _phones(4, 2), "prompt_tokens": _prompt_tokens()},
    )
    assert isinstance(stage, GsvT2S)


def _write_s1(path: Path, phoneme_vocab: int) -> Path:
    """A tiny s1 .ckpt in the official layout (fp16 weights with the ``model.`` prefix, plain config)."""
    config = {"hidden_dim": 16, "embedding_dim": 16, "head": 2, "n_layer": 1, "vocab_size": 1025,
              "phoneme_vocab_size": phoneme_vocab, "EOS": 1024, "dropout": 0}  # fmt: skip
    model = Text2SemanticDecoder(T2SConfig.from_checkpoint_config({"model": config}))
    weights = {f"model.{k}": v.half() for k, v in model.state_dict().items()}
    torch.save({"weight": weights, "config": {"model": config, "data": {"max_sec": 54}}, "info": "GPT-e1"}, path)
    return path


def test_prepare_refuses_a_gpt_whose_phoneme_vocab_does_not_fit_the_voices_sovits(tmp_path: Path) -> None:
    from anchorvoice.engine.voices import Voice

    root = require_reference_dir()
    sovits = root / "s2_v2_small.pth"
    ok = Voice("v2", tmp_path, [], models={"gpt": _write_s1(tmp_path / "v2.ckpt", 732), "sovits": sovits})
    stage = GsvT2S()
    stage.prepare(ok)
    assert stage.model.config.phoneme_vocab_size == 732
    bad = Voice("mixed", tmp_path, [], models={"gpt": _write_s1(tmp_path / "v1.ckpt", 512), "sovits": sovits})
    with pytest.raises(CheckpointError, match=r"512.*732") as info:
        GsvT2S().prepare(bad)
    assert "same voice/version" in str(info.value)


def test_precision_is_validated_and_can_change_live(model: Text2SemanticDecoder) -> None:
    with pytest.raises(StageError, match="precision"):
        _stage(model, precision="fp8")
    stage = _stage(model, top_k=1, early_stop_num=11)
    ref = np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))])
    stage.set_param("precision", "bfloat16")  # control API: rebuilt on the next utterance
    out = np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))])
    assert stage._ready().precision == "bfloat16" and len(out) == len(ref)


def test_fused_step_setting_keeps_the_tokens_and_can_change_live(model: Text2SemanticDecoder) -> None:
    """``fused_step = false`` (no float32 weight copy) decodes the same greedy tokens through ATen."""
    stage = _stage(model, top_k=1, early_stop_num=11)
    assert stage._ready().step_weights is not None  # float32 on CPU: the fused step by default
    fused = np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))])
    stage.set_param("fused_step", False)
    aten = np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))])
    assert stage._ready().step_weights is None
    assert aten.tolist() == fused.tolist()


def test_int8_cache_setting_changes_live(model: Text2SemanticDecoder) -> None:
    """int8 attends over the int8 copy of the cache by default; ``int8_cache = false`` over the float32 one."""
    stage = _stage(model, top_k=1, early_stop_num=11, precision="int8")
    assert stage._ready().new_cache(1, 4).int8 is not None
    out = np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))])
    stage.set_param("int8_cache", False)
    assert stage._ready().new_cache(1, 4).int8 is None
    assert len(np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))])) == len(out)


def test_int8_voice_releases_the_float32_layers_and_reloads_them_for_a_live_change() -> None:
    """An int8 stage that loaded its own GPT frees the float32 layer weights (only its int8 copies run);
    the resident budget sees the smaller voice, and a live switch to float32 reads the file again."""
    from anchorvoice.engine.store.resident import footprint

    root = require_reference_dir()
    gpt = root / "s1_v2_small.ckpt"
    params = {"gpt_path": str(gpt), "top_k": 1, "early_stop_num": 9, "precision": "int8"}
    stage = GsvT2S(GsvT2SConfig(**params))  # type: ignore[arg-type]
    stage.prepare(None)
    kept = GsvT2S(GsvT2SConfig(**params))  # type: ignore[arg-type]
    kept.load_model(load_t2s(gpt))  # a caller's model: never released
    assert stage._ready().layers_released and not kept._ready().layers_released
    layer_bytes = sum(p.numel() * 4 for p in kept.model.h.parameters())
    assert footprint(stage).host <= footprint(kept).host - layer_bytes + 64 * 1024  # LayerNorm copies stay
    tokens = [np.concatenate([f.tokens for f in s.generate(_phones(6, 1))]).tolist() for s in (stage, kept)]
    assert tokens[0] == tokens[1]
    stage.set_param("precision", "float32")
    out = np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))])
    assert stage._ready().precision == "float32" and not stage._ready().layers_released and len(out) == len(tokens[0])
    with pytest.raises(ValueError, match="int8"):
        stage._ready().release_layers()
    stage.set_param("precision", "int8")  # and back: the stage's own model is released again
    assert stage._ready().layers_released
    assert np.concatenate([f.tokens for f in stage.generate(_phones(6, 1))]).tolist() == tokens[0]
