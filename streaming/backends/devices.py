"""Audio device records, name matching and virtual-microphone recognition (no device I/O here).

Every backend describes its devices as :class:`DeviceInfo`. Users pick a device by a
case-insensitive substring of its name (``--input "usb"``); an exact name wins over a substring,
several substring hits are refused (the message lists them), and no hit gets close matches from
:mod:`difflib` plus the command that lists every device.

On Linux, PortAudio (which both sounddevice and PyAudio wrap) only has ALSA on Debian, so
PulseAudio/PipeWire sinks and sources are reached through the ALSA ``pulse`` PCM with
``PULSE_SINK``/``PULSE_SOURCE`` set while the stream opens (DESIGN.md, "Virtual microphone").
They are listed here with ``host_api == "PulseAudio"`` and ``pulse_name`` set.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from anchorvoice.errors import DeviceError

Direction = Literal["input", "output"]

OUR_SINK = "anchorvoice_sink"
"""Pulse sink the engine plays into (the virtual microphone's speaker side)."""
OUR_SOURCE = "anchorvoice_mic"
"""Pulse source that Discord / OBS record from (remapped monitor of ``OUR_SINK``)."""
OUR_DESCRIPTION = "anchorvoice Virtual Mic"
"""Human-readable name the desktop shows for ``OUR_SOURCE``."""

# Third-party virtual cables, matched by a lower-case substring of the device name. Names as the
# drivers register them: VB-Audio "CABLE Input"/"CABLE Output (VB-Audio Virtual Cable)",
# VoiceMeeter "VoiceMeeter Input"/"VoiceMeeter Output", Existential Audio "BlackHole 2ch".
_VIRTUAL_PATTERNS: tuple[tuple[str, str], ...] = (
    ("anchorvoice", "anchorvoice"),
    ("voicemeeter", "VoiceMeeter"),  # before "vb-audio": VoiceMeeter devices name VB-Audio too
    ("vb-audio", "VB-CABLE"),
    ("cable input", "VB-CABLE"),
    ("cable output", "VB-CABLE"),
    ("blackhole", "BlackHole"),
)


def recognise_virtual(name: str) -> str | None:
    """Which virtual microphone ``name`` belongs to ('anchorvoice', 'VB-CABLE', ...), or None."""
    low = name.lower()
    for pattern, kind in _VIRTUAL_PATTERNS:
        if pattern in low:
            return kind
    return None


@dataclass(frozen=True)
class DeviceInfo:
    """One input and/or output device as a backend sees it."""

    name: str
    """Name the backend (or the Pulse server) gives the device."""
    host_api: str
    """PortAudio host API ('ALSA', 'MME', 'Core Audio', ...) or 'PulseAudio' for pactl-listed ones."""
    max_input_channels: int
    """Capture channels (0: output only)."""
    max_output_channels: int
    """Playback channels (0: input only)."""
    default_samplerate: float
    """The device's preferred rate in Hz."""
    index: int | None = None
    """PortAudio device index (None for Pulse devices, which open through the ALSA 'pulse' PCM)."""
    pulse_name: str | None = None
    """Pulse sink/source name when the device is reached through Pulse."""
    description: str = ""
    """Longer human-readable name (Pulse description), if any."""
    is_default_input: bool = False
    """The system default capture device."""
    is_default_output: bool = False
    """The system default playback device."""

    @property
    def virtual(self) -> str | None:
        """Recognised virtual microphone kind, or None."""
        return recognise_virtual(f"{self.name} {self.description}")

    def supports(self, direction: Direction) -> bool:
        return (self.max_input_channels if direction == "input" else self.max_output_channels) > 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["virtual"] = self.virtual
        return d


def find_device(devices: Iterable[DeviceInfo], query: str, direction: Direction) -> DeviceInfo:
    """The one device of ``direction`` whose name (or description) matches ``query``.

    Exact (case-insensitive) name matches win; otherwise the query must be a substring of exactly
    one device. Raises DeviceError listing ambiguous hits or close matches.
    """
    if not query.strip():
        raise DeviceError(f"empty {direction} device name (run `anchorvoice devices` to list devices)")
    candidates = [d for d in devices if d.supports(direction)]
    q = query.lower().strip()
    for keys in ((lambda d: (d.name.lower(),)), (lambda d: (d.name.lower(), d.description.lower()))):
        exact = [d for d in candidates if q in keys(d)]
        if len(exact) >= 1:
            # The same device may appear through two host APIs; prefer a Pulse route, then the first.
            exact.sort(key=lambda d: d.pulse_name is None)
            return exact[0]
    hits = [d for d in candidates if q in d.name.lower() or q in d.description.lower()]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        listed = "; ".join(sorted({repr(d.name) for d in hits}))
        raise DeviceError(
            f"{direction} device {query!r} is ambiguous: it matches {listed} (give more of the name)"
        )
    if not candidates:
        raise DeviceError(
            f"no {direction} device matches {query!r}: there are no {direction} devices at all "
            "(is a sound server running? see `anchorvoice devices`)"
        )
    names = sorted({d.name for d in candidates} | {d.description for d in candidates if d.description})
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[c] for c in difflib.get_close_matches(q, list(by_lower), n=3, cutoff=0.4)]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise DeviceError(f"no {direction} device matches {query!r}{hint} (run `anchorvoice devices` to list them)")


def default_device(devices: Iterable[DeviceInfo], direction: Direction) -> DeviceInfo:
    """The system default device of ``direction``; DeviceError if there is none."""
    devs = [d for d in devices if d.supports(direction)]
    for d in devs:
        if (d.is_default_input if direction == "input" else d.is_default_output):
            return d
    if devs:
        return devs[0]
    raise DeviceError(
        f"no {direction} device found (is a sound server running? run `anchorvoice devices`)"
    )
