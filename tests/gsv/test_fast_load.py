"""Loading for a voice switch: models built on the ``meta`` device take the checkpoint's tensors as they
are (no random initialisation first), and come out equal, tensor for tensor, to the initialise-then-copy
load; the SoVITS prior stage leaves the HiFi-GAN out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from anchorvoice.engine.state_dicts import build_unset, load_assigned
from anchorvoice.errors import CorruptCheckpointError
from anchorvoice.plugins.gsv.checkpoints import load_gpt, load_sovits
from anchorvoice.plugins.gsv.rvq import SemanticTokenizerModel
from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder, load_t2s_weights
from tests.conformance.conftest import require_reference_dir


@pytest.fixture(scope="module")
def root() -> Path:
    return require_reference_dir()


@contextlib.contextmanager
def no_init() -> Iterator[None]:
    """Every torch.nn.init initialiser raises inside the block when it is given a tensor with memory (on the
    ``meta`` device it has nothing to fill and costs nothing): a load that still initialises fails the test."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                     "xavier_normal_", "zeros_", "ones_", "constant_", "trunc_normal_"):
            def boom(tensor: torch.Tensor, *_a: object, _n: str = name, **_k: object) -> torch.Tensor:
                if not tensor.is_meta:
                    raise AssertionError(f"torch.nn.init.{_n} ran on a real tensor while loading a checkpoint")
                return tensor

            mp.setattr(torch.nn.init, name, boom)
        yield


def _same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and sa[k].device == sb[k].device and torch.equal(sa[k], sb[k]), k


def test_sovits_loads_without_initialising_and_equals_the_copying_load(root: Path) -> None:
    ckpt = load_sovits(root / "s2_v2_small.pth")
    slow = SynthesizerTrn(SovitsConfig.from_checkpoint_config(ckpt.config, ckpt.version))  # initialise, then copy
    slow.load_official({k: v for k, v in ckpt.weights.items() if not k.startswith("enc_q.")})
    with no_init():
        fast = SynthesizerTrn.from_checkpoint(ckpt)
        prior = SynthesizerTrn.from_checkpoint(ckpt, decoder=False)
    _same(fast, slow)
    assert not fast.training and all(not p.requires_grad for p in fast.parameters())
    assert prior.dec is None
    assert prior.state_dict().keys() == {k for k in fast.state_dict() if not k.startswith("dec.")}
    for k, v in prior.state_dict().items():
        assert torch.equal(v, fast.state_dict()[k]), k
    with pytest.raises(ValueError, match="without its decoder"):
        prior.decode(torch.zeros(1, 1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long), [])


def test_t2s_and_rvq_load_without_initialising_and_equal_the_copying_load(root: Path) -> None:
    g = load_gpt(root / "s1_v2_small.ckpt")
    cfg = T2SConfig.from_checkpoint_config(g.config)
    slow = Text2SemanticDecoder(cfg)
    slow.load_state_dict({k.removeprefix("model."): v.float() for k, v in g.weights.items()}, strict=True)
    s = load_sovits(root / "s2_v2_small.pth")
    with no_init():
        fast = load_t2s_weights(cfg, g.weights)
        tok = SemanticTokenizerModel.from_checkpoint(s)
    _same(fast, slow.eval())
    assert all(not t.is_meta for t in [*tok.parameters(), *tok.buffers()])
    assert torch.equal(tok.ssl_proj.weight, s.weights["ssl_proj.weight"].float())


def test_a_tensor_the_checkpoint_cannot_give_is_refused_by_name() -> None:
    class WithTable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("table", torch.arange(3.0), persistent=False)  # not in any state dict

    m = build_unset(WithTable)
    with pytest.raises(CorruptCheckpointError, match="lacks table"):
        load_assigned(m, {"lin.weight": torch.ones(2, 2, dtype=torch.float16), "lin.bias": torch.zeros(2)})


def test_the_loaded_model_owns_its_tensors() -> None:
    w = {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}  # already float32: still copied
    m = build_unset(lambda: nn.Linear(2, 2))
    load_assigned(m, w)
    w["weight"].add_(1.0)
    assert torch.equal(m.weight, torch.ones(2, 2)) and m.weight.dtype == torch.float32
