"""Inference GEMMs on CPU through oneDNN, the library PyTorch already uses for its convolutions.

``F.linear`` on a CPU float32 tensor goes to MKL's sgemm. On the AMD EPYC (AVX-512) where most of our benches
ran, oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``, the op PyTorch's own CPU compiler
emits for linears) does the same product about 2x faster for one row (the GPT's token-by-token
decode: 15.7 vs 30 ms over 302 MB of weights) and 1.1-1.3x faster for 200-800 rows (HuBERT, SoVITS),
with the same float32 arithmetic in another summation order (differences at rounding level, ~1e-6
relative). It can also apply GELU to the output in the same pass. (On an AMX Intel Xeon MKL's one-row
products were the faster ones, 7.1 against 10.8 ms; the GPT's one-token decode steps, float32 and int8,
now run all layers in one numba call instead: :mod:`anchorvoice.plugins.gsv.t2s_step`.)

:func:`linear` takes that path only where it is exact in meaning: CPU tensors of one float dtype,
no gradient to record (training keeps ``F.linear``, whose backward autograd knows), and a PyTorch
build whose oneDNN op gives the right answer on a probe; otherwise it is ``F.linear``.
:func:`linear_kernel` names the kernel in use, for ``anchorvoice plugins`` and the benches.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_DTYPES = (torch.float32, torch.bfloat16)

InferencePrecision = Literal["float32", "bfloat16"]
"""What a model with a reduced-precision inference mode runs in; ``float32`` is the exact mode."""

Activation = Literal["none", "gelu", "relu"]
_ALGORITHM = {"none": "", "gelu": "none", "relu": ""}
"""The op's algorithm argument per activation ("none" for GELU = the exact erf form, as ``F.gelu``)."""


@functools.cache
def onednn_linear_ok() -> bool:
    """Whether this PyTorch has the oneDNN linear op and it computes x W^T + b (probed once per process)."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=gen) for s in ((3, 5), (4, 5), (4,)))
    try:
        with torch.no_grad():
            got = op(x, w, b, "none", [], "")
            fused = op(x, w, b, "gelu", [], "none")
            added = op.binary(x, b.expand(3, 4).contiguous(), w, b, "add")
    except (RuntimeError, TypeError, NotImplementedError):
        return False
    want = F.linear(x, w, b)
    return bool(
        torch.allclose(got, want, atol=1e-5)
        and torch.allclose(fused, F.gelu(want), atol=1e-5)
        and torch.allclose(added, want + b, atol=1e-5)
    )


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux; empty elsewhere), read once per process."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16() -> bool:
    """Whether the CPU computes bfloat16 products natively (AVX512-bf16 or AMX), where oneDNN's bf16
    convolutions and GEMMs run 2-2.6x faster than float32. Without it bf16 is emulated and slower."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.cache
def bf16_kernels() -> bool:
    """Whether PyTorch's oneDNN runs bfloat16 convolutions on this CPU at all. It needs AVX512-BW/VL/DQ,
    AVX-NE-CONVERT or AMX (emulated, slower than float32, without :func:`native_bf16`); on an AVX2-only
    CPU it refuses them, and ``precision = "bfloat16"`` cannot run there."""
    probe = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def int8_reduce_range() -> bool:
    """Whether fbgemm's dynamic int8 linears must quantize activations to 7 bits (``reduce_range``).

    Without VNNI, x86 int8 products go through ``vpmaddubsw``, which adds two u8 x s8 products into a
    saturating int16: full-range activations overflow it (measured on an AVX2-only AMD EPYC: logits of a
    small T2S 9% off float32, against 2% on AVX512-VNNI). With AVX512-VNNI, AVX-VNNI or AMX the products
    accumulate in int32 and the full 8 bits are kept."""
    return not (cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def resolve_precision(precision: str, device: str = "cpu") -> InferencePrecision:
    """A stage's ``precision`` option -> the one its model runs in: ``"auto"`` is ``"bfloat16"`` on a CPU
    with :func:`native_bf16`, else ``"float32"``; anything but float32/bfloat16/auto is refused, and so is
    ``"bfloat16"`` on a CPU without :func:`bf16_kernels`."""
    if precision == "auto":
        return "bfloat16" if device == "cpu" and native_bf16() else "float32"
    chosen = check_precision(precision, "'float32', 'bfloat16' or 'auto'")
    if chosen == "bfloat16" and device == "cpu" and not bf16_kernels():
        raise ValueError("precision 'bfloat16' needs a CPU with AVX512-BW/VL/DQ, AVX-NE-CONVERT or AMX, which "
                         "this one lacks (oneDNN refuses bf16 convolutions here): use 'auto' (float32 on this "
                         "CPU) or 'float32'")
    return chosen


def check_precision(precision: str, allowed: str = "'float32' or 'bfloat16'") -> InferencePrecision:
    """``precision`` if it is one a model runs in (``"float32"``, ``"bfloat16"``), else ValueError."""
    if precision == "float32":
        return "float32"
    if precision == "bfloat16":
        return "bfloat16"
    raise ValueError(f"precision must be {allowed}, got {precision!r}")


def linear_kernel() -> str:
    """The kernel :func:`linear` uses for CPU inference: ``"oneDNN"`` or ``"ATen"`` (MKL sgemm)."""
    return "oneDNN" if onednn_linear_ok() else "ATen"


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None, add: Tensor | None) -> bool:
    """Whether this call can take the oneDNN op: CPU tensors of one float dtype, a contiguous weight, and
    nothing for autograd to record (the op has no backward). Cheap first: it runs per call, per token."""
    dtype = x.dtype
    if x.device.type != "cpu" or dtype not in _DTYPES or weight.dtype != dtype or not weight.is_contiguous():
        return False
    if dtype == torch.bfloat16 and not bf16_kernels():  # oneDNN has no bf16 inner product on this CPU
        return False
    if (bias is not None and bias.dtype != dtype) or (add is not None and (add.dtype != dtype or add.is_cuda)):
        return False
    if torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return False
    return onednn_linear_ok()


def linear(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, act: Activation = "none", add: Tensor | None = None
) -> Tensor:
    """``act(x @ weight.T + bias)``, plus ``add`` when given (a residual, same shape as the result; only
    with ``act="none"``), x (..., K), weight (N, K): one oneDNN pass for CPU inference, ``F.linear`` and
    separate ops otherwise. The result is a new tensor."""
    if add is not None and act != "none":
        raise ValueError("linear(): add= (a residual) goes with act='none' only")
    if _onednn(x, weight, bias, add):
        if not x.is_contiguous():
            x = x.contiguous()
        op = torch.ops.mkldnn._linear_pointwise
        if add is None:
            return op(x, weight, bias, act, [], _ALGORITHM[act])  # type: ignore[no-any-return]
        return op.binary(x, add if add.is_contiguous() else add.contiguous(), weight, bias, "add")  # type: ignore[no-any-return]
    y = F.linear(x, weight, bias)
    if act == "gelu":
        y = F.gelu(y)
    elif act == "relu":
        y = F.relu(y)
    return y if add is None else y + add


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state-dict names) whose inference forward is :func:`linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)
