"""The virtual microphone: where the converted voice goes so that Discord / OBS can record it.

Linux (PulseAudio, or PipeWire's pulse server): ``module-null-sink`` named ``anchorvoice_sink``
(the engine plays into it) plus ``module-remap-source master=anchorvoice_sink.monitor`` named
``anchorvoice_mic``, described as "anchorvoice Virtual Mic". A remapped source rather than the
sink's ``.monitor`` because Electron apps (Discord) hide monitor sources, and rather than
``module-virtual-source`` because that one glitched in our tests (DESIGN.md).

Windows / macOS cannot create devices without a driver: we recognise VB-CABLE, VoiceMeeter and
BlackHole by name and otherwise say what to install.

``up`` and ``down`` are idempotent: ``up`` creates only what is missing, ``down`` unloads every
module that created our sink or source (also ones left over by a crashed run).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.devices import OUR_DESCRIPTION, OUR_SINK, OUR_SOURCE, DeviceInfo
from anchorvoice.streaming.backends.pulse import _json, pactl

INSTALL_HINT = {
    "win32": "install VB-CABLE (https://vb-audio.com/Cable/), then play into 'CABLE Input' and pick "
    "'CABLE Output' as the microphone in Discord/OBS (VoiceMeeter works too)",
    "darwin": "install BlackHole 2ch (https://existential.audio/blackhole/), then play into 'BlackHole 2ch' "
    "and pick it as the microphone in Discord/OBS",
}
"""What to tell users on platforms where we cannot create the device ourselves."""


@dataclass
class VirtualMicConfig:
    """Names and format of the Linux virtual microphone."""

    sink_name: str = OUR_SINK
    """Pulse sink the engine plays into."""
    source_name: str = OUR_SOURCE
    """Pulse source other applications record from."""
    description: str = OUR_DESCRIPTION
    """Name shown by Discord / OBS / pavucontrol for the source."""
    sample_rate: int = 48000
    """Sink rate in Hz; 48 kHz is what Discord's Opus and OBS use, so nothing resamples downstream."""
    channels: int = 1
    """Mono: a voice; apps that want stereo get it upmixed by the server."""


@dataclass
class VirtualMicStatus:
    """What exists now."""

    platform: str
    """sys.platform of this machine."""
    present: bool
    """A usable virtual microphone exists (ours on Linux, a recognised cable elsewhere)."""
    kind: str | None = None
    """'anchorvoice', 'VB-CABLE', 'VoiceMeeter', 'BlackHole' or None."""
    play_device: str | None = None
    """Device the engine plays into (``live --output virtual`` uses it)."""
    record_device: str | None = None
    """Device to pick as the microphone in Discord / OBS."""
    modules: list[int] = field(default_factory=list)
    """Pulse module indices that make up ours (Linux)."""
    message: str = ""
    """One line for the user."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VirtualMic:
    """Create, remove and inspect the virtual microphone.

    ``env`` is passed to ``pactl`` (tests point it at a private daemon); ``list_devices`` is used on
    Windows/macOS to find a cable driver (defaults to the sounddevice backend's list).
    """

    def __init__(
        self,
        config: VirtualMicConfig | None = None,
        *,
        env: Mapping[str, str] | None = None,
        platform: str | None = None,
        list_devices: Callable[[], list[DeviceInfo]] | None = None,
    ) -> None:
        self.config = config or VirtualMicConfig()
        self.env = env
        self.platform = platform or sys.platform
        self._list_devices = list_devices

    # -- Linux / Pulse ---------------------------------------------------------------------------
    def _modules(self) -> list[dict[str, Any]]:
        # `pactl --format=json list modules` (pactl 16.1) omits the module index, so read the short
        # form: "index<TAB>name<TAB>argument".
        rows = []
        for line in pactl("list", "short", "modules", env=self.env).splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0].strip().isdigit():
                rows.append({"index": int(parts[0]), "name": parts[1].strip(),
                             "argument": parts[2] if len(parts) > 2 else ""})
        return rows

    def _ours(self, modules: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
        """(sink module ids, source module ids) created for our names."""
        sink_ids, source_ids = [], []
        for m in modules:
            args = str(m.get("argument") or "").split()
            if m.get("name") == "module-null-sink" and f"sink_name={self.config.sink_name}" in args:
                sink_ids.append(int(m["index"]))
            if m.get("name") == "module-remap-source" and f"source_name={self.config.source_name}" in args:
                source_ids.append(int(m["index"]))
        return sink_ids, source_ids

    def _names(self, what: str) -> set[str]:
        data = _json(pactl("--format=json", "list", what, env=self.env), f"list {what}")
        return {str(d.get("name")) for d in data}

    def _pulse_status(self) -> VirtualMicStatus:
        sink_ids, source_ids = self._ours(self._modules())
        has_sink = self.config.sink_name in self._names("sinks")
        has_source = self.config.source_name in self._names("sources")
        present = has_sink and has_source
        if present:
            msg = (f"virtual mic is up: the engine plays into {self.config.sink_name!r}; pick "
                   f"{self.config.description!r} as the microphone in Discord/OBS")
        elif has_sink or has_source:
            msg = "virtual mic is half set up; run `anchorvoice virtual-mic up` to finish or `down` to remove"
        else:
            msg = "virtual mic is down (run `anchorvoice virtual-mic up`)"
        return VirtualMicStatus(
            platform=self.platform, present=present, kind="anchorvoice" if present else None,
            play_device=self.config.sink_name if has_sink else None,
            record_device=self.config.source_name if has_source else None,
            modules=sorted(sink_ids + source_ids), message=msg,
        )

    def _pulse_up(self) -> VirtualMicStatus:
        c = self.config
        if c.sample_rate <= 0 or c.channels <= 0:
            raise DeviceError(f"virtual mic needs a positive rate and channel count, got {c.sample_rate} Hz, "
                              f"{c.channels} ch")
        channel_map = "mono" if c.channels == 1 else ("front-left,front-right" if c.channels == 2 else None)
        fmt = [f"rate={c.sample_rate}", f"channels={c.channels}"]
        if channel_map:
            fmt.append(f"channel_map={channel_map}")
        if c.sink_name not in self._names("sinks"):
            pactl("load-module", "module-null-sink", f"sink_name={c.sink_name}", *fmt,
                  f"sink_properties=\"device.description='{c.description} (engine output)'\"", env=self.env)
        if c.source_name not in self._names("sources"):
            pactl("load-module", "module-remap-source", f"master={c.sink_name}.monitor",
                  f"source_name={c.source_name}", *fmt,
                  f"source_properties=\"device.description='{c.description}'\"", env=self.env)
        status = self._pulse_status()
        if not status.present:
            raise DeviceError("the sound server accepted the modules but the virtual mic did not appear; "
                              "check `pactl list short sources`")
        return status

    def _pulse_down(self) -> VirtualMicStatus:
        sink_ids, source_ids = self._ours(self._modules())
        # Source first: it reads from the sink's monitor.
        for idx in source_ids + sink_ids:
            pactl("unload-module", str(idx), env=self.env)
        return self._pulse_status()

    # -- Windows / macOS -------------------------------------------------------------------------
    def _cable_status(self) -> VirtualMicStatus:
        if self._list_devices is None:
            from anchorvoice.streaming.backends.sounddevice_backend import SoundDeviceBackend

            devices = SoundDeviceBackend().devices()
        else:
            devices = self._list_devices()
        play = next((d for d in devices if d.virtual and d.virtual != "anchorvoice" and d.max_output_channels), None)
        rec = next((d for d in devices if d.virtual and d.virtual != "anchorvoice" and d.max_input_channels), None)
        if play is not None:
            rec_name = rec.name if rec is not None else play.name
            return VirtualMicStatus(
                platform=self.platform, present=True, kind=play.virtual, play_device=play.name,
                record_device=rec_name,
                message=f"{play.virtual} found: the engine plays into {play.name!r}; pick {rec_name!r} "
                "as the microphone in Discord/OBS",
            )
        hint = INSTALL_HINT.get(self.platform, "no virtual audio cable found")
        return VirtualMicStatus(platform=self.platform, present=False, message=hint)

    # -- public ----------------------------------------------------------------------------------
    @property
    def uses_pulse(self) -> bool:
        return self.platform.startswith("linux")

    def status(self) -> VirtualMicStatus:
        """What exists now (never changes anything)."""
        return self._pulse_status() if self.uses_pulse else self._cable_status()

    def up(self) -> VirtualMicStatus:
        """Create what is missing (Linux) or find a cable driver; DeviceError says what to install."""
        if self.uses_pulse:
            return self._pulse_up()
        status = self._cable_status()
        if not status.present:
            raise DeviceError(f"no virtual microphone on this system: {status.message}")
        return status

    def down(self) -> VirtualMicStatus:
        """Remove ours (Linux). Elsewhere nothing is ours to remove."""
        if self.uses_pulse:
            return self._pulse_down()
        status = self._cable_status()
        status.message = "nothing to remove: the virtual cable is a driver (uninstall it to remove it)"
        return status

    def play_device(self) -> str:
        """The device name the engine plays into, creating the virtual microphone if it is missing.

        The one lookup every output that says "virtual" goes through (live sessions, the server's speech
        output, the ``virtual_mic`` sink). It never falls back to the default speakers: without a virtual
        microphone it raises DeviceError saying what to install or start.
        """
        status = self.up()
        if status.play_device is None:
            fix = INSTALL_HINT.get(self.platform, "start PulseAudio or PipeWire's pulse server "
                                   "(`pulseaudio --start`), then try again; `anchorvoice devices virtual-mic` "
                                   "shows what exists")
            raise DeviceError(f"virtual microphone unavailable: {status.message}; {fix}")
        return status.play_device
