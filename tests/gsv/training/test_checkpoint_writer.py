"""The shared s2/s1 writer: files official loaders accept (config fields, version tag, inited = 1), atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.plugins.gsv.checkpoint_writer import write_sovits
from anchorvoice.plugins.gsv.checkpoints import load_sovits
from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn


def test_fresh_model_is_written_with_what_official_loaders_need(gsv_reference: Path, tmp_path: Path) -> None:
    ck = load_sovits(gsv_reference / "s2_v2_small.pth")
    config = {"data": dict(ck.config["data"]), "model": {k: v for k, v in ck.config["model"].items()
                                                           if k != "version"}}
    del config["data"]["n_speakers"]
    model = SynthesizerTrn(SovitsConfig.from_checkpoint_config(config))  # random init: codebook inited == 0
    assert float(model.quantizer.vq.layers[0]._codebook.inited) == 0.0
    out = write_sovits(tmp_path / "x.pth", model, config, "0epoch_0iteration")
    assert out.read_bytes()[:2] == b"01"
    box, _ = load_pickled(out)
    assert box["config"]["data"]["n_speakers"] == 300
    assert box["config"]["model"]["version"] == box["config"]["version"] == "v2"
    assert [float(v) for k, v in box["weight"].items() if k.endswith("._codebook.inited")] == [1.0]
    assert "model" in config and "version" not in config["model"]  # the caller's config is left as it was
    SynthesizerTrn.from_checkpoint(load_sovits(out))  # and our strict loader takes it


@pytest.mark.slow
def test_benchmark_fullsize_file_uses_the_shared_writer(tmp_path: Path) -> None:
    from bench.fullsize import write_sovits as bench_write

    box, _ = load_pickled(bench_write(tmp_path / "full.pth"))
    assert box["config"]["data"]["n_speakers"] == 300 and box["config"]["model"]["version"] == "v2"
    assert all(float(v) == 1.0 for k, v in box["weight"].items() if k.endswith("inited"))
    assert (tmp_path / "full.pth").read_bytes()[:2] == b"01"

