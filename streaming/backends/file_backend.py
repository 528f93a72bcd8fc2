"""The backend of live runs with no sound device: every end is an audio file or 'null'.

``LiveSession`` uses it when input, output and monitor all resolve to files (``--input speech.wav
--output null``), so such a run needs neither PortAudio nor a sound server. Streams of any backend
open file ends the same way (:mod:`anchorvoice.streaming.backends.clocked`); this one just has no others.
"""

from __future__ import annotations

from typing import Any, ClassVar

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.base import AudioBackend, DuplexCallback, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo, Direction


class FileStream(LiveStream):
    """A stream whose ends are all files or 'null' (clock threads, no device API)."""

    def _open(self, direction: Direction, device: DeviceInfo, role: str) -> Any:
        raise DeviceError(f"{device.name!r} is a sound device; the file backend opens only audio files and 'null'")

    def _latency(self, handle: Any, direction: Direction) -> float:
        return 0.0

    def _start(self, handle: Any) -> None:
        pass

    def _stop(self, handle: Any) -> None:
        pass

    def _close(self, handle: Any) -> None:
        pass


class FileBackend(AudioBackend):
    """Audio files and 'null' only (no devices to list)."""

    name: ClassVar[str] = "file"

    def devices(self) -> list[DeviceInfo]:
        return []

    def open_stream(self, spec: StreamSpec, callback: DuplexCallback) -> LiveStream:
        return FileStream(spec, callback)
