"""The numba decode step computes exactly the weight-only-int8 model (or the float32 one), and the runtime uses it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anchorvoice.plugins.gsv.kv_cache import KVCache, T2SRuntime
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, T2SLayer, Text2SemanticDecoder
from anchorvoice.plugins.gsv.t2s_sampling import SamplingConfig, decode_batch, decode_stream, make_generator
from anchorvoice.plugins.gsv.t2s_step import decode_step
from anchorvoice.plugins.gsv.t2s_step_weights import StepWeights, quantize_rows
from tests.gsv.t2s_models import perturbed_t2s

# head_dim 18 and FFN 288: row counts that are not multiples of the kernels' 4-row and 64-unit blocks
CFG = T2SConfig(hidden_dim=72, embedding_dim=72, head=4, n_layer=3)


@pytest.fixture(scope="module")
def model() -> Text2SemanticDecoder:
    return perturbed_t2s(CFG, seed=5)


def _layers(model: Text2SemanticDecoder) -> list[T2SLayer]:
    return [layer for layer in model.h.layers if isinstance(layer, T2SLayer)]


def _reference_step(
    weights: StepWeights, model: Text2SemanticDecoder, x: torch.Tensor, cache: KVCache, mask: torch.Tensor | None
) -> torch.Tensor:
    """Plain torch with the dequantized weights: x (B, D) -> last hidden (B, D); writes the cache at length."""
    b, d = x.shape
    h, hd, length = CFG.head, d // CFG.head, cache.length
    hidden = x[:, None]
    attn_mask = None if mask is None else mask[:, None, None]
    for i, layer in enumerate(_layers(model)):
        w = weights.dequantized(i)
        qkv = F.linear(hidden, w["in_proj_weight"], w["in_proj_bias"]).view(b, 1, 3, h, hd).transpose(1, 3)
        cache.keys[i, :, :, length] = qkv[:, :, 1, 0]
        cache.values[i, :, :, length] = qkv[:, :, 2, 0]
        keys, values = cache.keys[i, :, :, : length + 1], cache.values[i, :, :, : length + 1]
        a = F.scaled_dot_product_attention(qkv[:, :, 0], keys, values, attn_mask=attn_mask)
        hidden = layer.norm1(
            hidden + F.linear(a.transpose(1, 2).reshape(b, 1, d), w["out_proj.weight"], w["out_proj.bias"])
        )
        ffn = F.linear(
            F.relu(F.linear(hidden, w["linear1.weight"], w["linear1.bias"])), w["linear2.weight"], w["linear2.bias"]
        )
        hidden = layer.norm2(hidden + ffn)
    return hidden[:, 0]


def test_quantize_rows_rounds_to_nearest_per_row() -> None:
    torch.manual_seed(0)
    w = torch.randn(6, 40) * torch.tensor([0.01, 0.1, 1.0, 10.0, 3.0, 0.5])[:, None]
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (6,)
    assert q.abs().amax(dim=1).tolist() == [127] * 6  # each row uses the full range
    err = (q.float() * scale[:, None] - w).abs()
    assert bool((err <= 0.5 * scale[:, None] * (1 + 1e-5)).all())


@pytest.mark.parametrize("quantize", [True, False], ids=["int8", "float32"])
@pytest.mark.parametrize("batch", [1, 2])
def test_step_equals_dequantized_reference(model: Text2SemanticDecoder, batch: int, quantize: bool) -> None:
    """Several steps over a filled cache; with B = 2 a per-row mask hides some positions from row 1."""
    weights = StepWeights.from_layers(_layers(model), quantize=quantize)
    if not quantize:  # float32: the model's own weights, unscaled
        assert weights.qkv.dtype == np.float32
        torch.testing.assert_close(weights.dequantized(1)["linear2.weight"], _layers(model)[1].linear2.weight)
    torch.manual_seed(2)
    hd = CFG.hidden_dim // CFG.head
    cache = KVCache(CFG.n_layer, batch, CFG.head, hd, capacity=16)
    cache.keys.normal_()
    cache.values.normal_()
    cache.length = 9
    ref = KVCache(CFG.n_layer, batch, CFG.head, hd, capacity=16)
    ref.keys.copy_(cache.keys)
    ref.values.copy_(cache.values)
    ref.length = 9
    for _ in range(4):
        x = torch.randn(batch, CFG.hidden_dim)
        mask = None
        if batch > 1:
            mask = torch.ones(batch, cache.length + 1, dtype=torch.bool)
            mask[1, :5] = False  # left padding of a shorter item
        got = decode_step(weights, x, cache.keys, cache.values, cache.length, mask)
        expected = _reference_step(weights, model, x, ref, mask)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
        end = cache.length + 1
        torch.testing.assert_close(cache.keys[:, :, :, :end], ref.keys[:, :, :, :end], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cache.values[:, :, :, :end], ref.values[:, :, :, :end], atol=1e-5, rtol=1e-5)
        cache.advance(1)
        ref.advance(1)
    if batch > 1:  # the mask mattered: without it row 1 would differ
        x = torch.randn(batch, CFG.hidden_dim)
        mask = torch.ones(batch, cache.length + 1, dtype=torch.bool)
        mask[1, :5] = False
        masked = decode_step(weights, x, cache.keys, cache.values, cache.length, mask)
        unmasked = decode_step(weights, x, cache.keys, cache.values, cache.length, None)
        torch.testing.assert_close(masked[0], unmasked[0])
        assert float((masked[1] - unmasked[1]).abs().max()) > 1e-3


def test_runtime_int8_decode_step_uses_the_step_and_tracks_float32(model: Text2SemanticDecoder) -> None:
    torch.manual_seed(4)
    runtimes = {p: T2SRuntime(model, p) for p in ("float32", "int8")}  # type: ignore[arg-type]
    step_weights = runtimes["int8"].step_weights
    assert step_weights is not None
    xs = torch.randn(5, 1, 1, CFG.hidden_dim)
    prefill = torch.randn(1, 6, CFG.hidden_dim)
    with torch.inference_mode():
        caches = {p: rt.new_cache(1, 8) for p, rt in runtimes.items()}  # small: the cache grows mid-decode
        for p, rt in runtimes.items():
            rt.forward(prefill, caches[p])
        for x in xs:
            before = caches["int8"].keys.clone(), caches["int8"].values.clone()
            size = caches["int8"].capacity + 1
            check = KVCache(CFG.n_layer, 1, CFG.head, CFG.hidden_dim // CFG.head, size, int8=True)
            check.keys[:, :, :, : before[0].shape[3]] = before[0]
            check.values[:, :, :, : before[1].shape[3]] = before[1]
            check.length = caches["int8"].length
            check.sync_int8()  # the runtime attends over the int8 copy of the cache
            logits = {p: rt.forward(x, caches[p]) for p, rt in runtimes.items()}
            hidden = decode_step(step_weights, x[:, 0], check.keys, check.values, check.length, None, check.int8)
            torch.testing.assert_close(logits["int8"], F.linear(hidden, model.ar_predict_layer.weight))
            scale = float(logits["float32"].abs().max())
            assert float((logits["int8"] - logits["float32"]).abs().max()) < 0.05 * scale
    assert caches["int8"].length == caches["float32"].length == 11
    assert caches["int8"].int8 is not None and caches["int8"].int8_length == 11


def test_runtime_float32_decode_runs_the_step_and_equals_the_aten_layers(model: Text2SemanticDecoder) -> None:
    """float32 one-token steps go through the numba step (float32 weights); per-head masks take ATen."""
    fused, aten = T2SRuntime(model, "float32"), T2SRuntime(model, "float32", fused_step=False)
    assert fused.step_weights is not None and fused.step_weights.qkv.dtype == np.float32
    assert aten.step_weights is None
    torch.manual_seed(6)
    calls = 0

    def counting(*args: object) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return decode_step(*args)  # type: ignore[arg-type]

    with torch.inference_mode(), pytest.MonkeyPatch.context() as mp:
        mp.setattr("anchorvoice.plugins.gsv.kv_cache.decode_step", counting)
        caches = [rt.new_cache(1, 8) for rt in (fused, aten)]  # small: the cache grows mid-decode
        prefill = torch.randn(1, 6, CFG.hidden_dim)
        for rt, cache in zip((fused, aten), caches, strict=True):
            rt.forward(prefill, cache)
        for _ in range(5):
            x = torch.randn(1, 1, CFG.hidden_dim)
            got, expected = (rt.forward(x, cache) for rt, cache in zip((fused, aten), caches, strict=True))
            torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)
        assert calls == 5
        per_head = torch.ones(1, CFG.head, 1, caches[0].length + 1, dtype=torch.bool)
        per_head[:, 0, :, :3] = False
        x = torch.randn(1, 1, CFG.hidden_dim)
        got, expected = (rt.forward(x, cache, per_head) for rt, cache in zip((fused, aten), caches, strict=True))
        assert calls == 5  # not the step: its mask is per batch row
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)
        keys = [cache.keys[:, :, :, : cache.length] for cache in caches]
        torch.testing.assert_close(keys[0], keys[1], atol=2e-5, rtol=1e-5)


def test_runtime_int8_refuses_per_head_masks(model: Text2SemanticDecoder) -> None:
    runtime = T2SRuntime(model, "int8")
    with torch.inference_mode():
        cache = runtime.new_cache(1, 8)
        runtime.forward(torch.randn(1, 3, CFG.hidden_dim), cache)
        per_head = torch.ones(1, CFG.head, 1, 4, dtype=torch.bool)
        with pytest.raises(ValueError, match="per-head"):
            runtime.forward(torch.randn(1, 1, CFG.hidden_dim), cache, per_head)


def test_int8_decode_stream_and_batch_run_and_stop(model: Text2SemanticDecoder) -> None:
    runtime = T2SRuntime(model, "int8")
    phones, bert, prompt = torch.randint(0, 732, (5,)), torch.zeros(1024, 5), torch.randint(0, 1024, (4,))
    cfg = SamplingConfig(early_stop_num=20)
    tokens = list(decode_stream(runtime, phones, bert, prompt, cfg, make_generator(0)))
    assert 0 < len(tokens) <= 21 and all(0 <= t < CFG.eos for t in tokens)
    results = decode_batch(runtime, [phones, phones[:3]], [bert, bert[:, :3]], prompt, cfg, make_generator(0))
    assert len(results) == 2 and all(0 < len(r.generated) <= 21 for r in results)


def test_int8_decodes_from_two_threads_at_once_match_one_at_a_time(model: Text2SemanticDecoder) -> None:
    runtime = T2SRuntime(model, "int8")
    cfg = SamplingConfig(top_k=1, early_stop_num=30)
    inputs = [
        (torch.randint(0, 732, (n,), generator=torch.Generator().manual_seed(n)), torch.zeros(1024, n)) for n in (5, 7)
    ]
    prompt = torch.randint(0, 1024, (4,), generator=torch.Generator().manual_seed(1))

    def run(item: tuple[torch.Tensor, torch.Tensor]) -> list[int]:
        return list(decode_stream(runtime, item[0], item[1], prompt, cfg, make_generator(0)))

    alone = [run(item) for item in inputs]
    with ThreadPoolExecutor(max_workers=2) as pool:  # e.g. the speech queue and a second pipeline
        together = list(pool.map(run, inputs * 3))
    assert together == alone * 3


def test_resident_budget_sees_every_weight_copy_of_an_int8_runtime(model: Text2SemanticDecoder) -> None:
    """The model, the step's int8 arrays and fbgemm's packed prefill weights all count as loaded memory."""
    from anchorvoice.engine.store.resident import footprint

    runtime = T2SRuntime(model, "int8")
    assert runtime.step_weights is not None
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    step_bytes = sum(a.nbytes for a in vars(runtime.step_weights).values() if isinstance(a, np.ndarray))
    linears = [lin for layer in runtime.layers for lin in (layer.qkv, layer.out, layer.ff1, layer.ff2)]
    packed = sum(lin.hidden_host_bytes() for lin in linears)
    layer_weights = sum(p.numel() for p in model.h.parameters() if p.dim() == 2)  # the four matrices per layer
    assert packed >= layer_weights  # one int8 byte per weight at least
    assert footprint({"stage": {"runtime": runtime}}).host == model_bytes + step_bytes + packed
