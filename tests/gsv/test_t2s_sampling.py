"""Official sampling rules: order, in-place penalty once per id, EOS suppression, seeds, limits."""

from __future__ import annotations

import pytest
import torch

from anchorvoice.plugins.gsv.kv_cache import T2SRuntime
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder
from anchorvoice.plugins.gsv.t2s_sampling import (
    EOS_FREE_STEPS,
    SamplingConfig,
    decode,
    decode_stream,
    make_generator,
    sample_tokens,
)

CFG = T2SConfig(hidden_dim=32, embedding_dim=32, head=2, n_layer=2)


@pytest.fixture(scope="module")
def runtime() -> T2SRuntime:
    torch.manual_seed(11)
    return T2SRuntime(Text2SemanticDecoder(CFG).eval().requires_grad_(False))


def _inputs(n: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    phones = torch.randint(0, 732, (n,), generator=g)
    return phones, 0.5 * torch.randn(1024, n, generator=g), torch.randint(0, 1024, (10,), generator=g)


def test_penalty_is_in_place_once_per_distinct_id() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    previous = torch.tensor([[0, 0, 0, 1]])  # id 0 three times: still divided once
    cfg = SamplingConfig(top_k=1, repetition_penalty=2.0)
    token = sample_tokens(logits, previous, cfg, make_generator(0))
    assert logits.tolist() == [[1.0, -4.0, 1.0, 0.5]]  # caller sees the penalised logits
    assert int(token[0]) in (0, 2)  # tie between the penalised 0 and the untouched 2


def test_greedy_picks_the_penalised_argmax() -> None:
    logits = torch.tensor([[3.0, 2.5, -1.0]])
    cfg = SamplingConfig(top_k=1, repetition_penalty=1.35)
    assert int(sample_tokens(logits, torch.tensor([[0]]), cfg, make_generator(0))[0]) == 1


def test_top_p_and_top_k_restrict_the_candidates() -> None:
    base = torch.tensor([[5.0, 4.0, 0.0, -1.0, -2.0]])
    seen = set()
    for seed in range(200):
        cfg = SamplingConfig(top_k=3, top_p=0.995, repetition_penalty=1.0)
        seen.add(int(sample_tokens(base.clone(), torch.zeros(1, 0, dtype=torch.long), cfg, make_generator(seed))[0]))
    # inclusive cumulative probabilities 0.726, 0.993, 0.998, ... Official rule: drop a
    # token whose INCLUSIVE cumulative probability exceeds top_p (no shift), keep the first always.
    assert seen == {0, 1}
    seen.clear()
    for seed in range(50):
        cfg = SamplingConfig(top_k=3, top_p=0.99, repetition_penalty=1.0)
        seen.add(int(sample_tokens(base.clone(), torch.zeros(1, 0, dtype=torch.long), cfg, make_generator(seed))[0]))
    assert seen == {0}  # 0.993 > 0.99: token 1 is dropped too
    seen.clear()
    for seed in range(200):
        cfg = SamplingConfig(top_k=3, repetition_penalty=1.0, temperature=5.0)
        seen.add(int(sample_tokens(base.clone(), torch.zeros(1, 0, dtype=torch.long), cfg, make_generator(seed))[0]))
    assert seen == {0, 1, 2}


def test_seeded_sampling_is_reproducible(runtime: T2SRuntime) -> None:
    phones, bert, prompt = _inputs()
    cfg = SamplingConfig(early_stop_num=40)  # official defaults: top_k 15, penalty 1.35
    a = decode(runtime, phones, bert, prompt, cfg, make_generator(1234))
    b = decode(runtime, phones, bert, prompt, cfg, make_generator(1234))
    c = decode(runtime, phones, bert, prompt, cfg, make_generator(99))
    assert torch.equal(a.y, b.y) and a.idx == b.idx
    assert not torch.equal(a.y, c.y)


def test_eos_is_impossible_in_the_first_11_steps() -> None:
    torch.manual_seed(2)
    model = Text2SemanticDecoder(CFG).eval().requires_grad_(False)
    model.ar_predict_layer.weight[CFG.eos].fill_(0.0)
    model.h.layers[-1].norm2.bias.fill_(-1.0)  # every other logit negative-leaning: EOS would win
    model.h.layers[-1].norm2.weight.fill_(1e-3)
    model.ar_predict_layer.weight[: CFG.eos].abs_()
    runtime = T2SRuntime(model)
    phones, bert, prompt = _inputs()
    result = decode(runtime, phones, bert, prompt, SamplingConfig(top_k=1), make_generator(0), record_logits=True)
    raw_argmax = [int(x.argmax()) for x in result.logits]
    assert raw_argmax[0] == CFG.eos  # the raw model wants to stop at once
    assert result.eos and result.idx == EOS_FREE_STEPS  # ...but stops on the first allowed step
    assert len(result.generated) == EOS_FREE_STEPS and CFG.eos not in result.generated.tolist()


def test_early_stop_keeps_the_token_and_official_semantic_drops_the_first(runtime: T2SRuntime) -> None:
    phones, bert, prompt = _inputs()
    result = decode(runtime, phones, bert, prompt, SamplingConfig(top_k=1, early_stop_num=12), make_generator(0))
    if result.eos:
        pytest.skip("random model hit EOS before the limit")
    assert len(result.generated) == 13 and result.idx == 12
    assert torch.equal(result.official_semantic, result.generated[1:])


def test_step_cap_and_streaming_match_the_final_result(runtime: T2SRuntime) -> None:
    phones, bert, prompt = _inputs()
    cfg = SamplingConfig(top_k=1, max_steps=5)
    stream = decode_stream(runtime, phones, bert, prompt, cfg, make_generator(0))
    streamed = []
    while True:
        try:
            streamed.append(next(stream))
        except StopIteration as stop:
            result = stop.value
            break
    assert streamed == result.generated.tolist() and len(streamed) == 5
    assert not torch.is_inference_mode_enabled()


@pytest.mark.parametrize(
    ("field", "value"),
    [("top_k", 0), ("top_p", 0.0), ("temperature", 0.0), ("repetition_penalty", -1.0), ("max_steps", 1501)],
)
def test_bad_sampling_values_are_refused_by_name(field: str, value: float) -> None:
    cfg = SamplingConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        cfg.validate()
