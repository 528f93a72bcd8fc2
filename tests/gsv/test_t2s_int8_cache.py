"""The int8 copy of the KV cache: its quantization, the attention over it, and its upkeep in the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchorvoice.plugins.gsv.kv_cache import KVCache, T2SRuntime
from anchorvoice.plugins.gsv.t2s_attention import attend, attend_int8, fast_exp, quantize_row
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder
from tests.gsv.t2s_models import perturbed_t2s

CFG = T2SConfig(hidden_dim=72, embedding_dim=72, head=4, n_layer=3)


@pytest.fixture(scope="module")
def model() -> Text2SemanticDecoder:
    return perturbed_t2s(CFG, seed=5)


def _reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """softmax(q . k / sqrt(hd)) v in float64, masked positions left out."""
    s = k.astype(np.float64) @ q.astype(np.float64) / np.sqrt(len(q))
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    w = np.exp(s - s.max())
    return (w / w.sum()) @ v.astype(np.float64)


def test_fast_exp_is_within_float32_rounding() -> None:
    x = np.concatenate([-np.logspace(-8, np.log10(80.0), 4000), [0.0]]).astype(np.float32)
    got = np.array([fast_exp(v) for v in x])
    want = np.exp(x.astype(np.float64))
    assert float(np.max(np.abs(got - want) / want)) < 3e-7
    for far in (-87.0, -200.0, -1e30):  # far below: exp(-87), never garbage from the polynomial
        assert 0.0 < fast_exp(np.float32(far)) < 1.7e-38


@pytest.mark.parametrize("masked", [False, True])
def test_attention_over_int8_rows_equals_the_dequantized_attention(masked: bool) -> None:
    rng = np.random.default_rng(0)
    pos, hd = 37, 18
    q = rng.standard_normal(hd).astype(np.float32)
    k = (rng.standard_normal((pos, hd)) * rng.uniform(0.1, 3.0, (pos, 1))).astype(np.float32)
    v = rng.standard_normal((pos, hd)).astype(np.float32)
    k[5] = 0.0  # an all-zero row: scale 0, values 0
    kq, vq = np.empty((pos, hd), np.int8), np.empty((pos, hd), np.int8)
    ks = np.array([quantize_row(row, dest) for row, dest in zip(k, kq)], np.float32)
    vs = np.array([quantize_row(row, dest) for row, dest in zip(v, vq)], np.float32)
    assert ks[5] == 0.0 and not kq[5].any()
    assert np.abs(kq).max() == 127
    mask = rng.random(pos) > 0.3 if masked else np.empty(0, np.bool_)
    out, score = np.empty(hd, np.float32), np.empty(pos, np.float32)
    attend_int8(q, kq, ks, vq, vs, pos, mask, score, out)
    deq_k, deq_v = kq * ks[:, None], vq * vs[:, None]
    np.testing.assert_allclose(out, _reference(q, deq_k, deq_v, mask if masked else None), atol=2e-6, rtol=1e-5)
    attend(q, k, v, pos, mask, score, out)  # the float32 form, same exponentials
    exact = _reference(q, k, v, mask if masked else None)
    np.testing.assert_allclose(out, exact, atol=2e-6, rtol=1e-5)
    attend_int8(q, kq, ks, vq, vs, pos, mask, score, out)
    assert 0 < float(np.abs(out - exact).max()) < 0.05  # int8 rows: close to float32, not equal


def test_sync_quantizes_as_the_step_does() -> None:
    torch.manual_seed(1)
    cache = KVCache(2, 1, 3, 18, capacity=8, int8=True)
    cache.keys.normal_()
    cache.values.normal_()
    cache.keys[1, 0, 2, 3] = 0.0
    cache.length = 6
    cache.sync_int8()
    assert cache.int8 is not None and cache.int8_length == 6
    kq, ks, vq, vs = cache.int8
    for layer in range(2):
        for h in range(3):
            for t in range(6):
                for src, q, s in ((cache.keys, kq, ks), (cache.values, vq, vs)):
                    dest = np.empty(18, np.int8)
                    scale = quantize_row(src[layer, 0, h, t].numpy(), dest)
                    assert np.array_equal(dest, q[layer, 0, h, t].numpy())
                    assert np.float32(scale) == float(s[layer, 0, h, t])


def test_int8_rows_survive_growth_and_row_selection() -> None:
    torch.manual_seed(2)
    cache = KVCache(2, 3, 2, 8, capacity=4, int8=True, block=4)
    cache.keys.normal_()
    cache.values.normal_()
    cache.length = 4
    cache.sync_int8()
    assert cache.int8 is not None
    before = [t.clone() for t in cache.int8]
    cache.reserve(3)
    assert cache.capacity >= 7 and cache.int8[0].shape[3] == cache.capacity
    for old, new in zip(before, cache.int8):
        assert torch.equal(new[:, :, :, :4], old[:, :, :, :4])
    cache.keep_rows(torch.tensor([0, 2]))
    for old, new in zip(before, cache.int8):
        assert torch.equal(new[:, :, :, :4], old[:, [0, 2], :, :4])
    cache.advance(1)  # a prefill wrote the float32 cache only
    with pytest.raises(RuntimeError, match="sync_int8"):
        cache.advance(1, int8_written=True)


def test_the_int8_copy_only_in_int8_precision_and_on_request(model: Text2SemanticDecoder) -> None:
    assert T2SRuntime(model, "int8").new_cache(1, 4).int8 is not None
    assert T2SRuntime(model, "int8", int8_cache=False).new_cache(1, 4).int8 is None
    assert T2SRuntime(model, "float32").new_cache(1, 4).int8 is None  # float32 stays exact
    torch.manual_seed(3)
    prefill, x = torch.randn(1, 7, CFG.hidden_dim), torch.randn(1, 1, CFG.hidden_dim)
    logits = []
    with torch.inference_mode():
        for rt in (T2SRuntime(model, "int8"), T2SRuntime(model, "int8", int8_cache=False)):
            cache = rt.new_cache(1, 16)
            rt.forward(prefill, cache)
            logits.append(rt.forward(x, cache))
    diff = float((logits[0] - logits[1]).abs().max())
    assert 0 < diff < 0.05 * float(logits[1].abs().max())
