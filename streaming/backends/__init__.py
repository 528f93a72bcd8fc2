"""Thin audio I/O backends: devices (sounddevice, PyAudio), files, null; device lookup by name."""

from __future__ import annotations

from anchorvoice.streaming.backends.base import AudioBackend, LiveStream, StreamCounters, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo, find_device, recognise_virtual

BACKENDS = ("sounddevice", "pyaudio")
"""Names accepted by ``--backend``."""


def get_backend(name: str = "sounddevice") -> AudioBackend:
    """A backend by name; imports it lazily so that a missing optional library only hurts its user."""
    from anchorvoice.errors import ConfigError

    if name == "sounddevice":
        from anchorvoice.streaming.backends.sounddevice_backend import SoundDeviceBackend

        return SoundDeviceBackend()
    if name == "pyaudio":
        from anchorvoice.streaming.backends.pyaudio_backend import PyAudioBackend

        return PyAudioBackend()
    raise ConfigError(f"unknown audio backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "AudioBackend", "DeviceInfo", "LiveStream", "StreamCounters", "StreamSpec",
           "find_device", "get_backend", "recognise_virtual"]
