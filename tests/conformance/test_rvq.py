"""RVQ against the official ResidualVectorQuantizer outputs (README section 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anchorvoice.engine.state_dicts import load_state_dict
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.rvq import ResidualVectorQuantizer, kmeans
from tests.conformance.conftest import case_params

pytestmark = pytest.mark.gsv_kind("rvq")


def _quantizer(case) -> ResidualVectorQuantizer:
    p = case.params
    rvq = ResidualVectorQuantizer(dimension=p["dimension"], n_q=p["n_q"], bins=p["bins"])
    rvq.load_state_dict(load_state_dict(case.checkpoint), strict=True)
    return rvq.eval()


def test_rvq_every_output(gsv_case) -> None:
    rvq = _quantizer(gsv_case)
    x = torch.from_numpy(gsv_case.input("x"))
    layers = list(rvq.vq.layers)
    gsv_case.check("codebooks", torch.stack([layer._codebook.embed for layer in layers]))
    with torch.no_grad():
        codes = rvq.encode(x)
        gsv_case.check("codes", codes)
        gsv_case.check("codes_nq2", rvq.encode(x, n_q=2))
        gsv_case.check("codes_st1", rvq.encode(x, st=1))
        gsv_case.check("decoded", rvq.decode(torch.from_numpy(gsv_case.expected("codes"))))
        gsv_case.check("decoded_st1", rvq.decode(torch.from_numpy(gsv_case.expected("codes"))[1:], st=1))
        quantized, fwd_codes, loss, picked = rvq(x, layers=[0])
    gsv_case.check("fwd_quantized", quantized)
    gsv_case.check("fwd_codes", fwd_codes)
    gsv_case.check("fwd_layer0_quantized", picked[0])
    assert len(picked) == 1 and float(loss) == 0.0


def test_rvq_state_dict_keys_match_official(gsv_case) -> None:
    """The module tree yields the official state_dict keys (so SoVITS `quantizer.*` loads strictly)."""
    rvq = _quantizer(gsv_case)
    assert set(rvq.state_dict()) == set(load_state_dict(gsv_case.checkpoint))


def test_full_size_quantizer_matches_s2_key_listing(gsv_reference: Path) -> None:
    rows = (gsv_reference / "keys_s2_v2.tsv").read_text().splitlines()[1:]
    want = {
        name.removeprefix("quantizer."): tuple(json.loads(shape))
        for name, shape, _ in (r.split("\t") for r in rows)
        if name.startswith("quantizer.")
    }
    got = {k: tuple(v.shape) for k, v in ResidualVectorQuantizer(dimension=768, n_q=1, bins=1024).state_dict().items()}
    assert got == want and np.prod(got["vq.layers.0._codebook.embed"]) == 1024 * 768


# --- training mode (no fixtures needed) -------------------------------------------------------------


def _blobs(n_per: int, centres: torch.Tensor, spread: float = 0.05, seed: int = 0) -> torch.Tensor:
    """(B=1, D, N) samples around ``centres`` (K, D)."""
    g = torch.Generator().manual_seed(seed)
    pts = centres.repeat_interleave(n_per, 0) + spread * torch.randn(
        len(centres) * n_per, centres.shape[1], generator=g
    )
    return pts[torch.randperm(len(pts), generator=g)].t()[None]


def test_kmeans_init_runs_once_on_first_training_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import anchorvoice.plugins.gsv.rvq as rvq_mod

    calls = []
    real = rvq_mod.kmeans

    def counting(samples, k, iters):
        calls.append((samples.shape, k, iters))
        return real(samples, k, iters)

    monkeypatch.setattr(rvq_mod, "kmeans", counting)
    torch.manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0], [0.0, -4.0]])
    # forward() initialises in eval mode too (the official forward always calls init_embed_).
    rvq = ResidualVectorQuantizer(dimension=2, n_q=1, bins=4, kmeans_iters=20).eval()
    cb = rvq.vq.layers[0]._codebook
    assert float(cb.inited) == 0.0 and torch.count_nonzero(cb.embed) == 0
    x = _blobs(200, centres)
    rvq(x)
    assert calls == [(torch.Size([800, 2]), 4, 20)]
    assert float(cb.inited) == 1.0 and float(cb.cluster_size.sum()) == 500
    # Lloyd's fixed point on the first 500 vectors: each used code is the mean of its vectors, and
    # the codebook explains most of the variance (random starts may merge two blobs, never more).
    first = x[0].t()[:500]
    nearest = torch.cdist(first, cb.embed).argmin(1)
    for k in nearest.unique():
        assert torch.allclose(cb.embed[k], first[nearest == k].mean(0), atol=1e-4)
    err = float(((first - cb.embed[nearest]) ** 2).sum(1).mean())
    assert err < 0.5 * float(first.var(0).sum())
    rvq.train()
    rvq(x)
    rvq(_blobs(50, centres * 2, seed=1))
    assert len(calls) == 1


def test_kmeans_looks_at_the_first_500_vectors_only() -> None:
    torch.manual_seed(0)
    near = torch.randn(500, 2) * 0.1
    far = torch.full((300, 2), 1000.0)  # beyond core_vq.kmeans' 500-sample cap: must be ignored
    means, counts = kmeans(torch.cat([near, far]), 2, 10)
    assert float(means.abs().max()) < 1.0 and int(counts.sum()) == 500


def test_eval_mode_never_changes_buffers() -> None:
    rvq = ResidualVectorQuantizer(dimension=3, n_q=2, bins=8, kmeans_init=False).eval()
    before = {k: v.clone() for k, v in rvq.state_dict().items()}
    rvq(torch.randn(2, 3, 40))
    assert all(torch.equal(before[k], v) for k, v in rvq.state_dict().items())


def test_ema_update_follows_the_official_formula_and_moves_codes_towards_data() -> None:
    cb_embed = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    rvq = ResidualVectorQuantizer(dimension=2, n_q=1, bins=3, kmeans_init=False).train()
    cb = rvq.vq.layers[0]._codebook
    cb.embed.copy_(cb_embed)
    cb.cluster_size.fill_(10.0)
    cb.embed_avg.copy_(cb_embed * 10.0)
    target = torch.tensor([1.0, 2.0])
    x = target.repeat(10, 1).t()[None]  # 10 vectors at `target`, all nearest to code 0
    _, codes, loss, _ = rvq(x)
    assert codes.unique().tolist() == [0]
    cs = torch.tensor([10.0 * 0.99 + 0.01 * 10, 10.0 * 0.99, 10.0 * 0.99])
    avg = cb_embed * 10.0 * 0.99
    avg[0] += 0.01 * 10 * target
    smoothed = (cs + 1e-5) / (cs.sum() + 3 * 1e-5) * cs.sum()
    assert torch.allclose(cb.cluster_size, cs) and torch.allclose(cb.embed_avg, avg)
    assert torch.allclose(cb.embed, avg / smoothed[:, None], atol=1e-5)
    assert float(loss) == pytest.approx(float(((target - 0.0) ** 2).mean()), rel=1e-5)  # commitment loss
    gaps = [float((cb.embed[0] - target).norm())]
    for _ in range(120):  # EMA time constant 1 / (1 - 0.99) = 100 steps
        rvq(x)
        gaps.append(float((cb.embed[0] - target).norm()))
    assert all(b < a for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 0.4 * gaps[0]
    assert torch.allclose(cb.embed[1:], cb_embed[1:], atol=1e-3)  # unused codes stay put


def _dead_code_setup(reset: bool) -> tuple[ResidualVectorQuantizer, torch.Tensor]:
    rvq = ResidualVectorQuantizer(dimension=2, n_q=1, bins=4, kmeans_init=False, reset_dead_code_stats=reset)
    cb = rvq.vq.layers[0]._codebook
    embed = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [100.0, 100.0]])
    cb.embed.copy_(embed)
    cb.embed_avg.copy_(embed * 50.0)
    cb.cluster_size.copy_(torch.tensor([50.0, 50.0, 50.0, 1.0]))  # code 3 is below threshold 2
    return rvq.train(), torch.tensor([[0.1, 0.2], [4.9, 0.1], [0.2, 5.1], [0.0, 0.1]]).t()[None]


def test_dead_code_is_replaced_by_a_batch_vector() -> None:
    torch.manual_seed(0)
    rvq, x = _dead_code_setup(reset=True)
    cb = rvq.vq.layers[0]._codebook
    rvq(x)
    batch = x[0].t()
    assert float(torch.cdist(cb.embed[3:4], batch).min()) < 1e-3  # now one of the batch vectors
    assert float(cb.cluster_size[3]) == pytest.approx(2.0 * 0.99)
    assert torch.allclose(cb.embed[:3], torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]), atol=0.1)


def test_official_dynamics_option_keeps_the_overwrite() -> None:
    torch.manual_seed(0)
    rvq, x = _dead_code_setup(reset=False)
    cb = rvq.vq.layers[0]._codebook
    rvq(x)
    # The official step recomputes embed from embed_avg, undoing the replacement.
    assert torch.allclose(cb.embed[3], cb.embed_avg[3] / float(cb.cluster_size[3]), rtol=1e-3)
    assert float(cb.embed[3].norm()) > 100.0


def test_forward_rejects_layers_beyond_n_q() -> None:
    rvq = ResidualVectorQuantizer(dimension=2, n_q=2, bins=4, kmeans_init=False).eval()
    with pytest.raises(ValueError, match="layers"):
        rvq(torch.randn(1, 2, 5), n_q=1, layers=[1])


# --- the `gsv-rvq` tokenizer stage --------------------------------------------------------------------


@pytest.mark.parametrize("case", case_params("sovits_extract_latent"))
def test_extract_latent_from_sovits_checkpoint(case) -> None:
    from anchorvoice.plugins.gsv.rvq import SemanticTokenizerModel

    model = SemanticTokenizerModel.from_checkpoint(load_sovits(case.checkpoint))
    ssl = torch.from_numpy(case.input("ssl_content"))
    with torch.no_grad():
        case.check("ssl_proj_out", model.ssl_proj(ssl))
        case.check("codes", model(ssl))


def _tiny_sovits(path: Path, dim: int = 12, bins: int = 16) -> Path:
    """A SoVITS-format file with what the tokenizer reads (plus the embedding the loader checks)."""
    g = torch.Generator().manual_seed(3)
    weights = {
        "enc_p.text_embedding.weight": torch.randn(732, 4, generator=g),
        "ssl_proj.weight": torch.randn(dim, dim, 2, generator=g) * 0.3,
        "ssl_proj.bias": torch.randn(dim, generator=g) * 0.1,
        "quantizer.vq.layers.0._codebook.inited": torch.ones(1),
        "quantizer.vq.layers.0._codebook.cluster_size": torch.ones(bins),
        "quantizer.vq.layers.0._codebook.embed": torch.randn(bins, dim, generator=g),
        "quantizer.vq.layers.0._codebook.embed_avg": torch.randn(bins, dim, generator=g),
    }
    torch.save({"weight": {k: v.half() for k, v in weights.items()}, "config": {"model": {}}, "info": "t"}, path)
    return path


def test_tokenizer_stage_contract_and_tokens(tmp_path: Path) -> None:
    from anchorvoice.engine.testing import check_stage
    from anchorvoice.engine.voices import Voice
    from anchorvoice.frames import FeatureFrame
    from anchorvoice.plugins.gsv.rvq import GsvTokenizer

    pth = _tiny_sovits(tmp_path / "v.pth")
    feats = torch.randn(12, 41)
    voice = Voice(name="t", path=tmp_path, references=[], models={"sovits": pth})
    stage = check_stage(GsvTokenizer, voice=voice, inputs={"features": FeatureFrame(feats, 50.0)})
    out = stage.encode(FeatureFrame(feats, 50.0, timestamp=1.0))
    assert out.tokens.dtype == np.int64 and out.tokens.shape == (20,)  # odd length floors, as extract_latent
    assert out.frame_rate == 25.0 and out.timestamp == 1.0
    sd = load_sovits(pth).weights
    proj = torch.nn.functional.conv1d(feats[None], sd["ssl_proj.weight"].float(), sd["ssl_proj.bias"].float(), stride=2)
    embed = sd["quantizer.vq.layers.0._codebook.embed"].float()
    want = torch.cdist(proj[0].t(), embed).argmin(1)
    assert out.tokens.tolist() == want.tolist()


def test_tokenizer_stage_errors(tmp_path: Path) -> None:
    from anchorvoice.errors import CheckpointError, CorruptCheckpointError, StageError
    from anchorvoice.frames import FeatureFrame
    from anchorvoice.plugins.gsv.rvq import GsvTokenizer

    with pytest.raises(CheckpointError, match="sovits_path"):
        GsvTokenizer().prepare(None)
    stage = GsvTokenizer(GsvTokenizer.Config(sovits_path=str(_tiny_sovits(tmp_path / "v.pth"))))
    with pytest.raises(StageError, match="prepare"):
        stage.encode(FeatureFrame(torch.zeros(12, 4), 50.0))
    stage.prepare(None)
    with pytest.raises(StageError, match=r"\(12, T>=2\)"):
        stage.encode(FeatureFrame(torch.zeros(768, 40), 50.0))
    with pytest.raises(StageError, match="50 Hz"):
        stage.encode(FeatureFrame(torch.zeros(12, 40), 100.0))
    bad = torch.load(tmp_path / "v.pth", weights_only=True)
    del bad["weight"]["quantizer.vq.layers.0._codebook.embed_avg"]
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CorruptCheckpointError, match="missing keys: quantizer.vq.layers.0._codebook.embed_avg"):
        GsvTokenizer(GsvTokenizer.Config(sovits_path=str(tmp_path / "bad.pth"))).prepare(None)


def test_hubert_to_tokens_chain_on_the_reference_sovits_file(gsv_reference: Path, tmp_path: Path) -> None:
    """hubert (768-d, a tiny random model) -> gsv-rvq with the fixture SoVITS file: 50 Hz -> 25 Hz tokens."""
    from anchorvoice.engine.voices import Voice
    from anchorvoice.frames import AudioFrame
    from anchorvoice.plugins.gsv.rvq import GsvTokenizer
    from anchorvoice.plugins.gsv.stages_hubert import HubertExtractor
    from tests.gsv_voice import make_hubert_768

    hub = make_hubert_768(tmp_path / "hubert")
    voice = Voice(
        name="t", path=tmp_path, references=[], models={"hubert": hub, "sovits": gsv_reference / "s2_v2_small.pth"}
    )
    fx, tok = HubertExtractor(), GsvTokenizer()
    fx.prepare(voice)
    tok.prepare(voice)
    t = np.arange(int(1.3 * 16000)) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 150 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    feats = fx.extract(AudioFrame(wav, 16000, timestamp=0.5))
    tokens = tok.encode(feats)
    assert feats.features.shape == (768, 64) and feats.frame_rate == 50.0
    assert tokens.tokens.shape == (32,) and tokens.frame_rate == 25.0 and tokens.timestamp == 0.5
    assert tokens.tokens.min() >= 0 and tokens.tokens.max() < 1024 and len(set(tokens.tokens.tolist())) > 1
