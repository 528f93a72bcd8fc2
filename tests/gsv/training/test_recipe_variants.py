"""The fine-tune's variants end to end on tiny runs: unfrozen quantizer (tokens re-extracted), SoVITS LoRA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorvoice.plugins.gsv.checkpoint_writer import write_discriminator
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
from anchorvoice.plugins.gsv.training.dataset import GsvDataset
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.options import TrainOptions
from anchorvoice.plugins.gsv.training.recipe import FineTune


def _opts(tmp: Path, ds: Path, ref: Path, **kw) -> TrainOptions:
    torch.manual_seed(0)
    disc = write_discriminator(tmp / "d.pth", MultiPeriodDiscriminator())
    return TrainOptions(name="mira", dataset=str(ds), run_dir=str(tmp / "run"), base_gpt=str(ref / "s1_v2_small.ckpt"),
                        base_sovits=str(ref / "s2_v2_small.pth"), base_disc=str(disc), batch_size=2,
                        sovits_epochs=1, gpt_epochs=1, segment_size=2560, max_steps=1, **kw)


@pytest.mark.slow
def test_unfrozen_quantizer_moves_the_codebook_and_the_gpt_gets_new_tokens(
    tmp_path: Path, small_dataset: Path, gsv_reference: Path
) -> None:
    job = FineTune(_opts(tmp_path, small_dataset, gsv_reference, unfreeze_quantizer=True, lr_scale=100.0))
    result = job.run()
    base = load_sovits(gsv_reference / "s2_v2_small.pth").weights["ssl_proj.weight"].float()
    trained = load_sovits(result.sovits).weights["ssl_proj.weight"].float()
    assert not torch.equal(base, trained)  # ssl_proj trained
    tsv = tmp_path / "run" / "6-name2semantic.tsv"
    assert tsv.is_file()
    model = SynthesizerTrn.from_checkpoint(load_sovits(result.sovits))
    data = GsvDataset.open(small_dataset)
    lines = dict(line.split("\t") for line in tsv.read_text().splitlines()[1:])
    with torch.no_grad():
        want = model.extract_latent(data.hubert(0)[None])[0, 0].tolist()
    assert [int(t) for t in lines[data.items[0].name].split()] == want
    assert job.data.items[0].semantic == want  # the GPT stage trained on the re-extracted tokens


@pytest.mark.slow
def test_sovits_lora_exports_an_ordinary_official_file(tmp_path: Path, small_dataset: Path,
                                                      gsv_reference: Path) -> None:
    result = FineTune(_opts(tmp_path, small_dataset, gsv_reference, lora=4, stages=("sovits",))).run()
    ck = load_sovits(result.sovits)
    base = load_sovits(gsv_reference / "s2_v2_small.pth")
    assert set(ck.weights) == set(base.weights)
    assert torch.equal(ck.weights["enc_p.text_embedding.weight"], base.weights["enc_p.text_embedding.weight"])  # frozen
    assert not torch.equal(ck.weights["dec.conv_pre.weight"], base.weights["dec.conv_pre.weight"])  # adapter merged
    SynthesizerTrn.from_checkpoint(ck)


def _effective(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every weight as the model uses it: weight-normed pairs folded into ``g * v / |v|``."""
    out = {}
    for k, v in weights.items():
        if k.endswith("weight_g"):
            continue
        if k.endswith("weight_v"):
            g = weights[k[:-1] + "g"].float()
            out[k[:-2]] = g * v.float() / torch.norm_except_dim(v.float(), 2, 0)
        else:
            out[k] = v.float()
    return out


@pytest.mark.slow
def test_lora_adapters_become_a_small_store_delta_that_composes_to_the_trained_model(
    tmp_path: Path, small_dataset: Path, gsv_reference: Path
) -> None:
    """What a LoRA voice costs over its base: the run writes each stage's adapters as a voice-store "lora"
    delta, which the store composes onto the base into the same weights as the merged official file."""
    from safetensors.torch import load_file

    from anchorvoice.engine.store.blobs import BlobStore, read_blob
    from anchorvoice.plugins.gsv.checkpoints import load_gpt

    opts = _opts(tmp_path, small_dataset, gsv_reference, lora=4, lr_scale=100.0)
    opts.max_steps = 3  # the GPT's warm-up starts near zero
    result = FineTune(opts).run()
    assert set(result.lora) == {"sovits", "gpt"}
    store = BlobStore(tmp_path / "blobs")
    for kind, base_file, trained_file, load in (
        ("sovits", gsv_reference / "s2_v2_small.pth", result.sovits, load_sovits),
        ("gpt", gsv_reference / "s1_v2_small.ckpt", result.gpt, load_gpt),
    ):
        base, trained = load(base_file).weights, load(trained_file).weights
        delta = load_file(str(result.lora[kind]))
        assert any(k.endswith(".lora_A") for k in delta)
        assert result.lora[kind].stat().st_size < base_file.stat().st_size / 4
        sha = store.put_delta(store.put(base, {"kind": kind}), delta, fmt="lora")
        composed = _effective(read_blob(store.path(sha))[0])
        want = _effective(trained)
        moved = 0
        for k, w in want.items():
            scale = float(w.abs().max()) + 1e-3
            assert torch.allclose(composed[k], w, atol=2e-3 * scale, rtol=2e-3), k
            moved += not torch.allclose(w, _effective(base)[k])
        assert moved > 0, kind  # the adapters did change weights
