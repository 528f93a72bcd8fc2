"""The line every benchmark prints first: CPU model, the ISA flags that decide speed, cores, load."""

from __future__ import annotations

import os
import platform
from pathlib import Path

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
"""CPU flags that change which kernels (fp32 / int8 VNNI / bf16 / AMX) are fastest."""


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """(model name, the :data:`FLAGS` this CPU has) from /proc/cpuinfo (platform's name elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU", []
    model, have = platform.processor() or "unknown CPU", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("", "unknown CPU", platform.processor()):
            model = value.strip()
        elif key.strip() == "flags" and not have:
            have = set(value.split())
    return model, [f for f in FLAGS if f in have]


def machine_line(threads: int | None = None) -> str:
    """``CPU: <model> [flags]; N cores; load average a/b/c`` (+ the threads the bench uses)."""
    model, flags = cpu_model_and_flags()
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    used = f"; {threads} threads used" if threads else ""
    isa = " ".join(flags) or "none of " + ",".join(FLAGS)
    return f"CPU: {model} [{isa}]; {os.cpu_count()} cores; load average {load}{used}"
