"""`anchorvoice devices` and `anchorvoice virtual-mic up|down|status`."""

from __future__ import annotations

import argparse
from typing import Any

from anchorvoice.engine.cli.common import emit
from anchorvoice.streaming.backends import BACKENDS, get_backend
from anchorvoice.streaming.backends.devices import DeviceInfo
from anchorvoice.streaming.virtual_mic import VirtualMic


def add_parser(sub: argparse._SubParsersAction) -> None:
    dp = sub.add_parser("devices", help="list audio input/output devices and recognised virtual microphones")
    dp.add_argument("--backend", choices=BACKENDS, default="sounddevice", help="audio API (default %(default)s)")
    # SUPPRESS: do not overwrite the global --json given before the command name.
    dp.set_defaults(func=run_devices)

    vp = sub.add_parser("virtual-mic", help="create / remove / inspect the virtual microphone")
    vp.add_argument("action", choices=["up", "down", "status"], help="up: create (idempotent); down: remove")
    vp.set_defaults(func=run_virtual_mic)


def _row(d: DeviceInfo) -> str:
    io = []
    if d.max_input_channels:
        io.append(f"in {d.max_input_channels}ch")
    if d.max_output_channels:
        io.append(f"out {d.max_output_channels}ch")
    marks = []
    if d.is_default_input or d.is_default_output:
        marks.append("default")
    if d.virtual:
        marks.append(f"virtual mic: {d.virtual}")
    desc = f" ({d.description})" if d.description and d.description != d.name else ""
    mark = f"  [{', '.join(marks)}]" if marks else ""
    return f"  {d.name}{desc}\n      {d.host_api}, {', '.join(io)}, {d.default_samplerate:.0f} Hz{mark}"


def run_devices(args: argparse.Namespace) -> int:
    devices = get_backend(args.backend).devices()
    inputs = [d for d in devices if d.max_input_channels]
    outputs = [d for d in devices if d.max_output_channels]
    data: dict[str, Any] = {
        "backend": args.backend,
        "inputs": [d.to_dict() for d in inputs],
        "outputs": [d.to_dict() for d in outputs],
    }
    lines = [f"Input devices ({args.backend}):"] + ([_row(d) for d in inputs] or ["  (none)"])
    lines += ["Output devices:"] + ([_row(d) for d in outputs] or ["  (none)"])
    if not devices:
        lines.append("No devices: is a sound server (PulseAudio/PipeWire) running, and libasound2-plugins installed?")
    lines.append("Pick one with a case-insensitive part of its name, e.g. `anchorvoice live --input usb`.")
    emit(args, data, "\n".join(lines))
    return 0


def run_virtual_mic(args: argparse.Namespace) -> int:
    vm = VirtualMic()
    status = {"up": vm.up, "down": vm.down, "status": vm.status}[args.action]()
    emit(args, status.to_dict(), status.message)
    return 0
