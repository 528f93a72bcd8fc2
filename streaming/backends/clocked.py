"""Audio files and 'null' as live devices: the same stream interface as a sound card, paced by a clock thread.

``anchorvoice live --input speech.wav --output out.wav`` (or ``--output null``) runs the real runner,
converter and effects without a sound card. :func:`file_device` turns such a name into a
:class:`~anchorvoice.streaming.backends.devices.DeviceInfo` with ``host_api == FILE_API``; a
:class:`~anchorvoice.streaming.backends.base.LiveStream` opens those with :class:`ClockedFile` instead of
its device API, and :class:`~anchorvoice.streaming.backends.file_backend.FileStream` is the stream for
runs with no sound device at all.

A :class:`ClockedFile` calls the stream's input or output handler once per device block from its own
thread, at the block's real-time pace, like a device callback. An input file is read (and resampled) in
full when the stream opens; at its end the input goes on delivering silence, so the converted tail
drains without underruns, and ``ended_at`` records when the file ran out (the session's ``finished``).
An output file records only the blocks played while the stream runs (not the start-up silence).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.devices import DeviceInfo, Direction
from anchorvoice.streaming.backends.files import FileSink, FileSource, NullSink

if TYPE_CHECKING:
    from anchorvoice.streaming.backends.base import LiveStream

FILE_API = "File"
"""``DeviceInfo.host_api`` of audio files and the null sink."""
NULL_NAME = "null"
"""Output name that discards the converted audio."""
READ_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".g722", ".aiff", ".aif", ".au")
"""Names ending like this are files, not device names, as ``--input`` (anchorvoice.audio_io reads them)."""
WRITE_SUFFIXES = (".wav", ".flac", ".ogg")
"""Names ending like this are files, not device names, as ``--output`` / ``--monitor``."""


def file_device(name: str | None, direction: Direction) -> DeviceInfo | None:
    """The file (or, for output, 'null') device ``name`` stands for, or None when it names a sound device.

    A name is a file when it ends in an audio suffix; DeviceError when it cannot be used: an input
    file missing or unreadable, an output folder that cannot be written.
    """
    if name is None:
        return None
    if direction == "output" and name.strip().lower() == NULL_NAME:
        return DeviceInfo(NULL_NAME, FILE_API, 0, 1, 0.0, description="discards the audio")
    path = Path(name).expanduser()
    if direction == "input":
        if path.suffix.lower() not in READ_SUFFIXES:
            return None
        if not path.is_file():
            raise DeviceError(f"input file {str(path)!r} not found (give the path of a {'/'.join(READ_SUFFIXES)} "
                              "file, or part of a microphone's name: `anchorvoice devices` lists them)")
        return DeviceInfo(str(path), FILE_API, 1, 0, 0.0, description="audio file")
    if path.suffix.lower() not in WRITE_SUFFIXES:
        return None
    folder = path.resolve().parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    if not existing.is_dir() or not _writable(existing):
        raise DeviceError(f"cannot write the output file {str(path)!r}: {existing} is not a writable folder")
    return DeviceInfo(str(path), FILE_API, 0, 1, 0.0, description="audio file")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def is_file_device(device: DeviceInfo | None) -> bool:
    return device is not None and device.host_api == FILE_API


class ClockedFile:
    """One file or null 'device' of a stream: a thread calling ``handler`` once per block at real-time pace."""

    def __init__(self, stream: LiveStream, device: DeviceInfo, role: str) -> None:
        spec = stream.spec
        self.stream = stream
        self.role = role
        self.block = spec.block_size
        self.period_s = spec.block_size / spec.sample_rate
        self.ended_at: float | None = None
        """perf_counter time the input file ran out (None: not yet, or not an input)."""
        self._source: FileSource | None = None
        self._sink: FileSink | NullSink | None = None
        try:
            if role == "input":
                self._source = FileSource(device.name, spec.sample_rate, spec.block_size)
            elif device.name == NULL_NAME:
                self._sink = NullSink()
            else:
                self._sink = FileSink(device.name, spec.sample_rate)
        except (OSError, sf.LibsndfileError) as exc:
            raise DeviceError(f"cannot open {role} file {device.name!r}: {exc}") from None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"anchorvoice-{self.role}-clock", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        s = self.stream
        buf = np.zeros(self.block, np.float32)
        silence = np.zeros(self.block, np.float32)
        t0 = time.perf_counter()
        n = 0
        while not self._stop.is_set():
            n += 1
            delay = t0 + n * self.period_s - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            if self._source is not None:
                block = self._source.read()
                if block is None:
                    if self.ended_at is None:
                        self.ended_at = time.perf_counter()
                    block = silence
                s._on_input(block, False)
                continue
            running = s._running
            if self.role == "monitor":
                s._on_monitor(buf, False)
            else:
                s._on_output(buf, False)
            if running and self._sink is not None:
                self._sink.write(buf.copy())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def close(self) -> None:
        self.stop()
        if self._sink is not None:
            self._sink.close()

    @property
    def samples_written(self) -> int:
        return self._sink.samples_written if self._sink is not None else 0


