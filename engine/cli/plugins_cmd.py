"""`anchorvoice plugins`: every plugin, its hooks and stages, and the ones that failed to load.

Exits 1 when any plugin failed to load (with ``--json`` the whole list is still printed), so scripts and
CI can tell.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from anchorvoice.engine.cli.common import emit, make_engine
from anchorvoice.plugins.cpu_kernels import bf16_kernels, int8_reduce_range, linear_kernel, native_bf16


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list plugins, their stages, and load failures")
    p.set_defaults(func=run_plugins)


def run_plugins(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    pm = engine.plugins
    infos = sorted(pm.plugins.values(), key=lambda i: (i.origin != "builtin", i.name))
    lines = []
    for info in infos:
        lines.append(f"{info.name}  {info.version}  [{info.origin}]")
        lines.append(f"    hooks:  {', '.join(info.hooks) or '(none)'}")
        lines.append(f"    stages: {', '.join(info.stages) or '(none)'}")
    if pm.failures:
        lines.append("")
        lines.append("FAILED TO LOAD:")
        for f in pm.failures:
            hook = f" in {f.hook}" if f.hook else ""
            lines.append(f"  {f.name} [{f.origin}]{hook}: {f.error}")
    kernels = {"cpu_linear": linear_kernel(), "native_bf16": native_bf16(), "bf16_kernels": bf16_kernels(),
               "int8_activation_bits": 7 if int8_reduce_range() else 8}
    lines.append("")
    lines.append(f"CPU inference linears: {kernels['cpu_linear']} (float32 and bfloat16 GEMMs of the built-in models); "
                 "the GPT's one-token decode steps (float32 and int8): one numba call for all layers")
    lines.append(
        "CPU bfloat16: " + ("native (precision 'auto' runs bfloat16)" if kernels["native_bf16"]
                            else "emulated (precision 'auto' runs float32)" if kernels["bf16_kernels"]
                            else "unavailable: no AVX-512 (precision 'auto' runs float32, 'bfloat16' is refused)")
    )
    lines.append(f"CPU int8 GPT activations: {kernels['int8_activation_bits']} bits"
                 + (" (no VNNI: 8-bit activations would saturate)" if kernels["int8_activation_bits"] == 7 else ""))
    emit(
        args,
        {"plugins": [asdict(i) for i in infos], "failures": [asdict(f) for f in pm.failures], "kernels": kernels},
        "\n".join(lines),
    )
    return 1 if pm.failures else 0
