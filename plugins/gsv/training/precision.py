"""Which autocast a training step runs under.

``fp32`` is the exact mode (the conformance oracle's). On CUDA, ``fp16`` (with a gradient scaler) and
``bf16`` are the official trainer's mixed precision. On CPU, ``bf16`` autocast runs the convolutions and
GEMMs in bfloat16 through oneDNN: on a CPU that computes bf16 natively (AVX512-bf16 or AMX) that is the
fast mode; with AVX-512 but no bf16 it is emulated and slower, which the trainer says; on an AVX2-only CPU
it is refused (PyTorch falls back to reference kernels there). ``fp16`` on CPU is refused:
PyTorch has no fast fp16 CPU kernels and a gradient scaler is needed where no GPU is.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch

from anchorvoice.errors import TrainingError
from anchorvoice.plugins.cpu_kernels import bf16_kernels, native_bf16

PRECISIONS = ("fp32", "fp16", "bf16")


def training_precision(precision: str, device: torch.device) -> str:
    """``precision`` checked for ``device``: one of :data:`PRECISIONS`, fp16 on CUDA only."""
    if precision not in PRECISIONS:
        raise TrainingError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if device.type == "cpu" and precision == "fp16":
        raise TrainingError("--precision fp16 needs a CUDA GPU; on CPU use --precision bf16 (fast where the CPU "
                            "has AVX512-bf16 or AMX) or fp32 (exact)")
    if device.type == "cpu" and precision == "bf16" and not bf16_kernels():
        raise TrainingError("--precision bf16 on this CPU would leave oneDNN for PyTorch's reference bf16 "
                            "convolutions (measured 10x slower than fp32 on an AVX2 CPU): it needs AVX512-BW/VL/DQ, "
                            "AVX-NE-CONVERT or AMX. Use --precision fp32 here")
    if device.type == "cpu" and precision == "bf16" and not native_bf16():
        warnings.warn("this CPU has no native bf16 (AVX512-bf16/AMX): --precision bf16 is emulated and slower "
                      "than fp32 here", RuntimeWarning, stacklevel=3)
    return precision


def autocast(device: torch.device, precision: str) -> Any:
    """The autocast context of a training forward (nothing for fp32)."""
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
