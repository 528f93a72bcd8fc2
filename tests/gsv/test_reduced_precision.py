"""bfloat16 inference modes of the HiFi-GAN generator and HuBERT: close to float32, float32 in and out,
the choice per CPU (``auto``), and refusals of combinations that cannot run."""

from __future__ import annotations

import pytest
import torch

from anchorvoice.errors import StageError
from anchorvoice.plugins import cpu_kernels
from anchorvoice.plugins.gsv.hifigan import Generator, HiFiGANConfig
from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel
from anchorvoice.plugins.gsv.stages_sovits import GsvHifiganConfig, GsvHifiganVocoder
from bench.metrics import si_snr_db
from tests.conftest import needs_bf16_kernels


@needs_bf16_kernels
def test_generator_bfloat16_agrees_with_float32_and_switches_back() -> None:
    torch.manual_seed(3)
    cfg = HiFiGANConfig(initial_channel=8, upsample_initial_channel=64, gin_channels=4)
    gen = Generator(cfg).eval()
    z, g = torch.randn(1, 8, 40), torch.randn(1, 4, 1)
    with torch.inference_mode():
        exact = gen(z, g)
        gen.use_precision("bfloat16")
        low = gen(z, g)
        gen.use_precision("float32")
        again = gen(z, g)
    assert low.dtype == torch.float32 and low.shape == exact.shape
    assert 0 < float((low - exact).abs().max())  # really ran in another precision
    assert si_snr_db(exact[0, 0], low[0, 0]) > 25
    torch.testing.assert_close(again, exact, rtol=0, atol=0)


def test_generator_refuses_bfloat16_on_the_plain_layout() -> None:
    cfg = HiFiGANConfig(initial_channel=8, upsample_initial_channel=32, gin_channels=0)
    with pytest.raises(ValueError, match="channels_last"):
        Generator(cfg, channels_last=False, precision="bfloat16")
    with pytest.raises(ValueError, match="precision"):
        Generator(cfg).use_precision("float16")  # type: ignore[arg-type]


def test_vocoder_auto_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    voc = GsvHifiganVocoder(GsvHifiganConfig(precision="auto"))
    monkeypatch.setattr(cpu_kernels, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert voc.precision == "bfloat16"
    monkeypatch.setattr(cpu_kernels, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert voc.precision == "float32"
    monkeypatch.setattr(cpu_kernels, "bf16_kernels", lambda: True)
    assert GsvHifiganVocoder(GsvHifiganConfig(precision="bfloat16")).precision == "bfloat16"
    monkeypatch.setattr(cpu_kernels, "bf16_kernels", lambda: False)  # an AVX2-only CPU: refused, not a oneDNN crash
    with pytest.raises(StageError, match="AVX512-BW.*use 'auto'"):
        _ = GsvHifiganVocoder(GsvHifiganConfig(precision="bfloat16")).precision
    monkeypatch.setattr(cpu_kernels, "bf16_kernels", lambda: True)
    with pytest.raises(StageError, match="channels_last"):
        _ = GsvHifiganVocoder(GsvHifiganConfig(precision="bfloat16", channels_last=False)).precision


@needs_bf16_kernels
def test_hubert_bfloat16_agrees_with_float32() -> None:
    torch.manual_seed(0)
    small = {"conv_dim": [32] * 7, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
    model = HubertModel(HubertConfig.from_json(small)).eval()
    wav = torch.randn(1, 16000) * 0.3
    with torch.inference_mode():
        exact = model(wav)
        model.use_precision("bfloat16")
        low = model(wav)
        model.use_precision("float32")
        again = model(wav)
    assert low.dtype == torch.float32 and low.shape == exact.shape
    assert 0 < float((low - exact).abs().max())
    cos = torch.nn.functional.cosine_similarity(low[0], exact[0], dim=-1)
    assert float(cos.min()) > 0.99
    torch.testing.assert_close(again, exact, rtol=0, atol=0)
    with pytest.raises(ValueError, match="precision"):
        model.use_precision("int8")


def test_hubert_training_ignores_the_inference_precision() -> None:
    model = HubertModel(HubertConfig.from_json({"conv_dim": [16] * 7, "hidden_size": 16, "num_hidden_layers": 1,
                                                "num_attention_heads": 2, "intermediate_size": 32,
                                                "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 2}))
    model.use_precision("bfloat16")
    out = model(torch.randn(1, 4000))
    assert out.dtype == torch.float32 and out.grad_fn is not None
