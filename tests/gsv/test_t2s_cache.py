"""KV-cache decoding equals recomputing the whole sequence; the cache grows in blocks, not per token."""

from __future__ import annotations

import pytest
import torch

from anchorvoice.plugins.gsv.kv_cache import KVCache, T2SRuntime
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder, prefix_mask
from tests.gsv.t2s_models import perturbed_t2s

CFG = T2SConfig(hidden_dim=64, embedding_dim=64, head=4, n_layer=3)


@pytest.fixture(scope="module")
def model() -> Text2SemanticDecoder:
    m = perturbed_t2s(CFG, seed=3)
    m.ar_text_position.alpha.fill_(0.8)
    m.ar_audio_position.alpha.fill_(1.3)
    return m


def _full_recompute_logits(model: Text2SemanticDecoder, phones, bert, prompt, tokens) -> torch.Tensor:
    """Logits of every step by running the whole [text; prompt; tokens] sequence each time."""
    out = []
    text = model.embed_text(phones[None], bert[None])
    for step in range(len(tokens) + 1):
        y = torch.cat([prompt, tokens[:step]])
        xy = torch.cat([text, model.embed_audio(y[None])], dim=1)
        mask = prefix_mask(text.shape[1], len(y))
        out.append(model.forward_full(xy, mask)[0, -1])
    return torch.stack(out)


@pytest.mark.parametrize("block", [256, 3])  # 3: the cache must grow several times mid-decode
def test_cached_decode_equals_full_recompute(model: Text2SemanticDecoder, block: int) -> None:
    torch.manual_seed(0)
    phones, bert = torch.randint(0, 732, (9,)), 0.5 * torch.randn(1024, 9)
    prompt, tokens = torch.randint(0, 1024, (6,)), torch.randint(0, 1024, (12,))
    runtime = T2SRuntime(model)
    with torch.inference_mode():
        expected = _full_recompute_logits(model, phones, bert, prompt, tokens)
        cache = KVCache(CFG.n_layer, 1, CFG.head, CFG.hidden_dim // CFG.head, capacity=15, block=block)
        xy = torch.cat([model.embed_text(phones[None], bert[None]), model.embed_audio(prompt[None])], dim=1)
        got = [runtime.forward(xy, cache, prefix_mask(9, 6))[0]]
        for i, tok in enumerate(tokens):
            got.append(runtime.forward(model.embed_audio(tok.view(1, 1), len(prompt) + i), cache)[0])
    assert cache.length == 9 + 6 + 12
    assert cache.capacity >= cache.length
    torch.testing.assert_close(torch.stack(got), expected, atol=2e-5, rtol=0)


def test_reference_free_prefill_is_bidirectional_text(model: Text2SemanticDecoder) -> None:
    """Without a prompt every text position sees every other (official ref-free mask)."""
    mask = prefix_mask(5, 0)
    assert mask.shape == (5, 5) and bool(mask.all())
    mask = prefix_mask(2, 3)
    assert mask.tolist() == [
        [True, True, False, False, False],
        [True, True, False, False, False],
        [True, True, True, False, False],
        [True, True, True, True, False],
        [True, True, True, True, True],
    ]


def test_cache_writes_in_place_and_grows_by_blocks() -> None:
    cache = KVCache(n_layer=2, batch=1, heads=2, head_dim=4, capacity=4, block=8)
    storage = cache.keys.data_ptr()
    for _ in range(4):
        for layer in range(2):
            cache.write(layer, torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))
        cache.advance(1)
        cache.reserve(0)
    assert cache.keys.data_ptr() == storage  # no reallocation while it fits
    cache.reserve(1)
    assert cache.capacity == 4 + 1 + 8
    grown = cache.keys.data_ptr()
    for _ in range(9):
        cache.reserve(1)
        cache.write(0, torch.full((1, 2, 1, 4), 2.0), torch.zeros(1, 2, 1, 4))
        cache.advance(1)
    assert cache.keys.data_ptr() == grown  # one block covers the next 9 tokens
    assert bool((cache.keys[0, :, :, :4] == 1).all()) and bool((cache.keys[0, :, :, 4:13] == 2).all())


def test_keep_rows_drops_finished_batch_items() -> None:
    cache = KVCache(n_layer=1, batch=3, heads=1, head_dim=2, capacity=4)
    cache.write(0, torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 1, 2), torch.zeros(3, 1, 1, 2))
    cache.advance(1)
    cache.keep_rows(torch.tensor([0, 2]))
    assert cache.batch == 2
    assert cache.keys[0, :, 0, 0, 0].tolist() == [0.0, 2.0]


def test_int8_runtime_tracks_float32(model: Text2SemanticDecoder) -> None:
    torch.manual_seed(1)
    phones, bert, prompt = torch.randint(0, 732, (7,)), torch.zeros(1024, 7), torch.randint(0, 1024, (5,))
    with torch.inference_mode():
        xy = torch.cat([model.embed_text(phones[None], bert[None]), model.embed_audio(prompt[None])], dim=1)
        logits = {}
        for precision in ("float32", "int8", "bfloat16"):
            rt = T2SRuntime(model, precision)  # type: ignore[arg-type]
            logits[precision] = rt.forward(xy, rt.new_cache(1, 12), prefix_mask(7, 5))[0]
    scale = float(logits["float32"].abs().max())
    for precision in ("int8", "bfloat16"):
        assert logits[precision].dtype == torch.float32
        err = float((logits[precision] - logits["float32"]).abs().max())
        assert 0 < err < 0.1 * scale, f"{precision}: error {err} vs logit scale {scale}"


def test_unknown_precision_is_refused(model: Text2SemanticDecoder) -> None:
    with pytest.raises(ValueError, match="precision"):
        T2SRuntime(model, "fp8")  # type: ignore[arg-type]
