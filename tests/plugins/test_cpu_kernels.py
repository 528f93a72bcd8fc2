"""plugins/cpu_kernels.py: the oneDNN inference linear against F.linear, and where it must not be used."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anchorvoice.plugins import cpu_kernels
from anchorvoice.plugins.cpu_kernels import Linear, linear, linear_kernel, onednn_linear_ok

needs_onednn = pytest.mark.skipif(not onednn_linear_ok(), reason="this PyTorch has no working oneDNN linear")


def _operands(shape: tuple[int, ...], k: int = 48, n: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(*shape, k, generator=gen), torch.randn(n, k, generator=gen), torch.randn(n, generator=gen)


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4), (16,), (4, 8), (2, 9, 3)])
def test_matches_f_linear_in_every_mode(shape: tuple[int, ...]) -> None:
    x, w, b = _operands(shape)
    want = F.linear(x, w, b)
    with torch.inference_mode():
        torch.testing.assert_close(linear(x, w, b), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(linear(x, w), F.linear(x, w), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(linear(x, w, b, act="gelu"), F.gelu(want), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(linear(x, w, b, act="relu"), F.relu(want), rtol=1e-5, atol=1e-5)
        res = torch.randn_like(want)
        torch.testing.assert_close(linear(x, w, b, add=res), want + res, rtol=1e-5, atol=1e-5)


def test_non_contiguous_input_and_residual() -> None:
    x, w, b = _operands((9,))
    xt = x.t().contiguous().t()  # same values, column-major
    res = torch.randn(40, 9).t()
    with torch.no_grad():
        torch.testing.assert_close(linear(xt, w, b, add=res), F.linear(x, w, b) + res, rtol=1e-5, atol=1e-5)


def test_bfloat16_inputs() -> None:
    x, w, b = (t.to(torch.bfloat16) for t in _operands((6,)))
    with torch.no_grad():
        got = linear(x, w, b)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), F.linear(x, w, b).float(), rtol=2e-2, atol=2e-2)


@needs_onednn
def test_inference_does_not_go_through_f_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, b = _operands((1,))
    want = F.linear(x, w, b)

    def refuse(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("F.linear called on the inference path")

    monkeypatch.setattr(cpu_kernels.F, "linear", refuse)
    with torch.inference_mode():
        torch.testing.assert_close(linear(x, w, b), want, rtol=1e-5, atol=1e-5)
    assert linear_kernel() == "oneDNN"


def test_training_keeps_autograd() -> None:
    x, w, b = _operands((5,))
    w.requires_grad_(True)
    y = linear(x, w, b, act="gelu")
    assert y.grad_fn is not None
    y.sum().backward()
    w2 = w.detach().clone().requires_grad_(True)
    F.gelu(F.linear(x, w2, b)).sum().backward()
    assert w.grad is not None and w2.grad is not None
    torch.testing.assert_close(w.grad, w2.grad)


def test_residual_with_an_activation_is_refused() -> None:
    x, w, b = _operands((2,))
    with pytest.raises(ValueError, match="act='none'"):
        linear(x, w, b, act="relu", add=torch.zeros(2, 40))


def test_linear_module_keeps_nn_linear_state_dict() -> None:
    plain, ours = torch.nn.Linear(48, 40), Linear(48, 40)
    assert list(ours.state_dict()) == list(plain.state_dict())
    ours.load_state_dict(plain.state_dict())
    x = torch.randn(3, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), plain(x), rtol=1e-5, atol=1e-5)


def test_int8_activations_keep_8_bits_only_where_products_accumulate_in_int32(monkeypatch: pytest.MonkeyPatch) -> None:
    """AVX2 without VNNI sums u8 x s8 pairs in a saturating int16: fbgemm needs 7-bit activations there."""
    for flags, reduce in ((set(), True), ({"avx2", "fma"}, True), ({"avx2", "avx512_vnni"}, False),
                          ({"avx2", "avx_vnni"}, False), ({"amx_int8"}, False)):
        monkeypatch.setattr(cpu_kernels, "cpu_flags", lambda f=flags: frozenset(f))
        assert cpu_kernels.int8_reduce_range() is reduce, flags
