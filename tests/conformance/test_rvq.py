"""RVQ against the official ResidualVectorQuantizer outputs (README section 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoints import load_state_dict
from plugins.gsv.rvq import ResidualVectorQuantizer

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
