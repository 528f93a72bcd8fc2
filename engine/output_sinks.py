"""Where generated speech is played: an output name -> one of the registered ``audio_sink`` stages.

``virtual`` -> ``virtual_mic`` (the anchorvoice virtual microphone; never the speakers as a fallback),
``none`` -> ``null`` (nothing is played), ``default`` -> ``device`` on the system's default output,
anything else -> ``device`` whose name contains it. The stages come from the plugin manager like every
other stage, so the server's ``--speech-output`` and ``anchorvoice speak --output`` play the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anchorvoice.engine.pipeline_config import StageSpec, build_stage
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import AudioSink


@dataclass
class OutputConfig:
    """A speech output (``[speech]`` in configs/server.toml)."""

    output: str = "virtual"
    """'virtual' (the virtual microphone, created if missing), 'none' (events only), 'default' (the default
    playback device) or part of a playback device name (`anchorvoice devices`)."""
    backend: str = "sounddevice"
    """Audio API: 'sounddevice' or 'pyaudio'."""
    queue_ms: float = 200.0
    """Audio queued ahead of the device; a write waits beyond this (bounds how late an interrupt is heard)."""

    @property
    def plays(self) -> bool:
        """False for 'none': nothing paces the writer, so callers keep real time themselves."""
        return self.output.lower() != "none"


def output_spec(config: OutputConfig) -> StageSpec:
    """The registered sink stage (and its parameters) that ``config.output`` names."""
    name = config.output.strip()
    device_params: dict[str, Any] = {"backend": config.backend, "queue_ms": config.queue_ms}
    if name.lower() == "none":
        return StageSpec("null")
    if name.lower() == "virtual":
        return StageSpec("virtual_mic", device_params)
    if name.lower() == "default":
        return StageSpec("device", {**device_params, "device": None})
    return StageSpec("device", {**device_params, "device": name})


def output_sink(plugins: PluginManager, config: OutputConfig) -> AudioSink:
    """A closed sink for ``config`` (``open(sample_rate, block_size)`` starts it)."""
    sink: AudioSink = build_stage(plugins, "audio_sink", output_spec(config), source="speech output",
                                  key="speech")
    return sink


def check_output(config: OutputConfig) -> None:
    """Raise DeviceError now if ``config.output`` names a playback device there is none of (rather than at the
    first ``speak``). 'none' needs nothing; 'virtual' is created when first opened (see ``VirtualMicSink``)."""
    spec = output_spec(config)
    if spec.plugin != "device":
        return
    from anchorvoice.errors import DeviceError
    from anchorvoice.streaming.backends import get_backend

    try:
        get_backend(config.backend).resolve(spec.params["device"], "output")
    except DeviceError as exc:
        raise DeviceError(f"speech output {config.output!r}: {exc}; pick one with --speech-output "
                          "(virtual, none, default or part of a device name)") from None
