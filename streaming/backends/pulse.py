"""Talking to a PulseAudio / PipeWire-pulse server through ``pactl`` (thin I/O layer).

PortAudio on Debian has only ALSA, so the engine reaches Pulse sinks and sources through the ALSA
``pulse`` PCM (package ``libasound2-plugins``). The pulse client library reads ``PULSE_SINK`` and
``PULSE_SOURCE`` when a stream connects, so :func:`pulse_routing` sets them only around the call
that opens a stream and restores them afterwards (DESIGN.md, "Virtual microphone").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.devices import DeviceInfo

ROUTE_PCM = "anchorvoice_pulse"
"""ALSA PCM we define: type pulse with ``handle_underrun false``. The stock ``pulse`` PCM handles
an underrun by restarting its stream, which stalled playback for ~1.9 s after every underflow
(measured: an 80 ms late callback -> a 1.96 s gap; with handle_underrun false -> none)."""
SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")

PACTL_TIMEOUT_S = 10.0
"""A healthy server answers in milliseconds; a hung one must not hang the CLI."""

# Opening a stream under changed PULSE_* variables must not interleave with another open.
_ENV_LOCK = threading.Lock()


def pactl_path() -> str | None:
    """Path of ``pactl`` or None when pulseaudio-utils is not installed."""
    return shutil.which("pactl")


def pactl(*args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
    """Run ``pactl args...`` and return stdout; DeviceError (with what to do) on failure."""
    exe = pactl_path()
    if exe is None:
        raise DeviceError(
            "`pactl` not found: install pulseaudio-utils (Debian/Ubuntu: apt install pulseaudio-utils); "
            "it talks to both PulseAudio and PipeWire's pulse server"
        )
    try:
        proc = subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=PACTL_TIMEOUT_S,
            env=dict(env) if env is not None else None,
        )
    except subprocess.TimeoutExpired:
        raise DeviceError(f"`pactl {' '.join(args)}` did not answer in {PACTL_TIMEOUT_S:.0f} s "
                          "(is the sound server hung? restart it)") from None
    if check and proc.returncode != 0:
        msg = " ".join((proc.stderr or proc.stdout).strip().splitlines()[:1])
        if "Connection refused" in msg or "Connection failure" in msg:
            raise DeviceError(
                f"no PulseAudio/PipeWire server is running ({msg}); start it (e.g. `pulseaudio --start` "
                "or `systemctl --user start pipewire-pulse`)"
            )
        raise DeviceError(f"`pactl {' '.join(args)}` failed: {msg}")
    return proc.stdout


def server_info(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``pactl info`` as a dict (keys such as 'server_name', 'default_sink_name')."""
    return _json(pactl("--format=json", "info", env=env), "info")


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise DeviceError(
            f"`pactl --format=json {what}` did not return JSON; pactl 16 or newer is needed"
        ) from None


def server_available(env: Mapping[str, str] | None = None) -> bool:
    """True when pactl exists and a server answers."""
    if pactl_path() is None:
        return False
    try:
        server_info(env)
    except DeviceError:
        return False
    return True


def _rate_of(spec: str) -> float:
    # "s16le 2ch 44100Hz" -> 44100.0
    for part in spec.split():
        if part.endswith("Hz") and part[:-2].isdigit():
            return float(part[:-2])
    return 48000.0


def _channels_of(spec: str) -> int:
    for part in spec.split():
        if part.endswith("ch") and part[:-2].isdigit():
            return int(part[:-2])
    return 2


def list_pulse_devices(env: Mapping[str, str] | None = None) -> list[DeviceInfo]:
    """Sinks (outputs) and sources (inputs) of the running Pulse server; [] when none runs."""
    if not server_available(env):
        return []
    info = server_info(env)
    out: list[DeviceInfo] = []
    for sink in _json(pactl("--format=json", "list", "sinks", env=env), "list sinks"):
        spec = str(sink.get("sample_specification", ""))
        out.append(DeviceInfo(
            name=str(sink["name"]), host_api="PulseAudio", max_input_channels=0,
            max_output_channels=_channels_of(spec), default_samplerate=_rate_of(spec),
            pulse_name=str(sink["name"]), description=str(sink.get("description", "")),
            is_default_output=sink["name"] == info.get("default_sink_name"),
        ))
    for src in _json(pactl("--format=json", "list", "sources", env=env), "list sources"):
        spec = str(src.get("sample_specification", ""))
        out.append(DeviceInfo(
            name=str(src["name"]), host_api="PulseAudio", max_input_channels=_channels_of(spec),
            max_output_channels=0, default_samplerate=_rate_of(spec),
            pulse_name=str(src["name"]), description=str(src.get("description", "")),
            is_default_input=src["name"] == info.get("default_source_name"),
        ))
    return out


def install_alsa_route() -> bool:
    """Make ALSA (hence PortAudio, after its next initialisation) list ``ROUTE_PCM``.

    Writes a small ALSA config that includes the one ALSA would have read (``ALSA_CONFIG_PATH`` if
    the user set it, else the system ``alsa.conf``) and defines ``ROUTE_PCM``, and points
    ``ALSA_CONFIG_PATH`` at it for this process. Returns False where there is no ALSA config to
    include (not Linux), so callers keep the stock ``pulse`` PCM.
    """
    ours = Path(tempfile.gettempdir()) / f"anchorvoice-alsa-{os.getuid() if hasattr(os, 'getuid') else 0}.conf"
    current = os.environ.get("ALSA_CONFIG_PATH")
    if current == str(ours) and ours.exists():
        return True
    base = [Path(p) for p in current.split(":")] if current else [SYSTEM_ALSA_CONF]
    if not all(p.exists() for p in base):
        return False
    includes = "".join(f"<{p}>\n" for p in base)
    text = (
        f"{includes}pcm.{ROUTE_PCM} {{\n    type pulse\n    handle_underrun false\n"
        f'    hint {{ show on description "anchorvoice route to PulseAudio/PipeWire" }}\n}}\n'
    )
    if not ours.exists() or ours.read_text() != text:
        tmp = ours.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(ours)
    os.environ["ALSA_CONFIG_PATH"] = str(ours)
    return True


@contextmanager
def pulse_routing(sink: str | None = None, source: str | None = None) -> Iterator[None]:
    """Set PULSE_SINK / PULSE_SOURCE while a stream opens through the ALSA ``pulse`` PCM.

    Not for the audio callback: it takes a lock and touches the process environment.
    """
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in ("PULSE_SINK", "PULSE_SOURCE")}
        try:
            if sink is not None:
                os.environ["PULSE_SINK"] = sink
            if source is not None:
                os.environ["PULSE_SOURCE"] = source
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
