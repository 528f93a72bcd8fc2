"""Backend base: open device streams around one callback, count device-level glitches.

The callback contract (what ``anchorvoice.streaming.runner.LiveRunner.callback`` implements) is
``callback(indata, outdata)``: ``indata`` is the newest captured block, mono float32; ``outdata``
is a mono float32 array the callback must fill completely. The callback runs on the device's
real-time thread: it must only copy to and from ring buffers (no allocation, locks, I/O, logging;
python-sounddevice ``Stream`` docs).

Capture and playback run as two PortAudio streams ("split" mode): the ALSA ``pulse`` PCM stalls
for seconds when one duplex stream drives both directions (measured on this project's CI machine:
0.26 s of audio in 3 s), and two streams also let input and output sit on different host APIs.
In split mode the input stream calls ``callback(indata, None)`` and the output stream calls
``callback(None, outdata)``, as ``LiveRunner.callback`` allows.

Start-up: the output stream is started first and given time to settle (the ALSA pulse PCM stalls
1-1.7 s after its first callback on a null sink, measured here); only then does capture start, so
the stall does not fill the input queue with stale audio. ``start`` returns once capture runs at
real-time pace too, so that counters read after it describe the steady state.

Audio files and 'null' (:mod:`anchorvoice.streaming.backends.clocked`) are devices of every stream:
``open`` gives them a :class:`~anchorvoice.streaming.backends.clocked.ClockedFile` that calls the same
handlers from a clock thread, and ``AudioBackend.resolve`` returns them before asking the device API.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from anchorvoice.errors import DeviceError
from anchorvoice.frames import FloatArray
from anchorvoice.streaming.backends.clocked import ClockedFile, file_device, is_file_device
from anchorvoice.streaming.backends.devices import DeviceInfo, Direction, default_device, find_device
from anchorvoice.streaming.ring import RingBuffer

DuplexCallback = Callable[[FloatArray | None, FloatArray | None], None]


@dataclass
class StreamSpec:
    """What to open."""

    sample_rate: int
    """Device rate in Hz (48000 is what Pulse, Discord and OBS use)."""
    block_size: int
    """Samples per callback (10 ms at 48 kHz = 480 keeps the device share of latency small)."""
    input: DeviceInfo | None = None
    """Capture device; None: output only."""
    output: DeviceInfo | None = None
    """Playback device; None: input only."""
    monitor: DeviceInfo | None = None
    """Second playback device that hears a copy of the output (headphones)."""
    latency: float | str = "low"
    """PortAudio suggested latency: seconds, or 'low' / 'high'."""
    settle_timeout_s: float = 4.0
    """Longest wait for each direction to run at real-time pace (``start`` returns after both)."""


@dataclass
class StreamCounters:
    """Device-level events; written by the callbacks, read by anyone (plain ints)."""

    input_blocks: int = 0
    """Capture callbacks served."""
    output_blocks: int = 0
    """Playback callbacks served."""
    input_overflows: int = 0
    """Callbacks whose status flagged lost capture samples (the callback was too late)."""
    output_underflows: int = 0
    """Callbacks whose status flagged a playback gap (the device ran dry)."""
    settle_s: float = 0.0
    """How long playback, then capture, took to reach real-time pace at start."""
    monitor_underruns: int = 0
    """Monitor ring ran dry (monitor device faster than the main output)."""


class LiveStream(ABC):
    """Open streams; ``start()`` / ``stop()`` / ``close()``; usable as a context manager."""

    def __init__(self, spec: StreamSpec, callback: DuplexCallback) -> None:
        if spec.input is None and spec.output is None:
            raise DeviceError("a live stream needs an input or an output device")
        if spec.sample_rate <= 0 or spec.block_size <= 0:
            raise DeviceError(f"bad stream format: {spec.sample_rate} Hz, block {spec.block_size}")
        self.spec = spec
        self.counters = StreamCounters()
        self._callback = callback
        self._running = False  # output side calls the callback only once capture is live
        self._handles: dict[str, Any] = {}
        # Monitor copy: drop oldest so a slow monitor device never delays the main output.
        self._monitor_ring = RingBuffer(spec.block_size * 8, overflow="drop_oldest") if spec.monitor else None

    # -- callbacks (real-time threads) -----------------------------------------------------------
    def _on_input(self, block: FloatArray, overflow: bool) -> None:
        c = self.counters
        c.input_blocks += 1
        if overflow:
            c.input_overflows += 1
        if self._running:
            self._callback(block, None)

    def _on_output(self, out: FloatArray, underflow: bool) -> None:
        c = self.counters
        c.output_blocks += 1
        if underflow and self._running:
            c.output_underflows += 1
        if self._running:
            self._callback(None, out)
        else:
            out[:] = 0.0
        if self._monitor_ring is not None:
            self._monitor_ring.write(out)

    def _on_monitor(self, out: FloatArray, underflow: bool) -> None:
        ring = self._monitor_ring
        if ring is None:
            out[:] = 0.0
            return
        if ring.read_into(out, pad=True) < len(out) and self._running:
            self.counters.monitor_underruns += 1

    # -- backend specifics ---------------------------------------------------------------------
    @abstractmethod
    def _open(self, direction: Direction, device: DeviceInfo, role: str) -> Any:
        """Open (not start) one stream for ``role`` in 'input', 'output', 'monitor'."""

    @abstractmethod
    def _latency(self, handle: Any, direction: Direction) -> float:
        """Device latency of one open stream in seconds."""

    @abstractmethod
    def _start(self, handle: Any) -> None: ...

    @abstractmethod
    def _stop(self, handle: Any) -> None: ...

    @abstractmethod
    def _close(self, handle: Any) -> None: ...

    # -- lifecycle ---------------------------------------------------------------------------------
    def _wait_settled(self, counter: str) -> float:
        """Poll until ``counters.<counter>`` grows at real-time pace for 0.25 s (or the timeout
        passes); returns the seconds waited."""
        sr, bs = self.spec.sample_rate, self.spec.block_size
        t0 = time.perf_counter()
        history: list[tuple[float, int]] = []
        window = 0.25
        while True:
            now = time.perf_counter()
            blocks = getattr(self.counters, counter)
            history.append((now, blocks))
            old = [h for h in history if now - h[0] >= window]
            if old:
                t_old, n_old = old[-1]
                if (blocks - n_old) * bs / (now - t_old) >= 0.9 * sr:
                    break
            if now - t0 > self.spec.settle_timeout_s:
                break
            time.sleep(0.02)
        return time.perf_counter() - t0

    def _open_any(self, direction: Direction, device: DeviceInfo, role: str) -> Any:
        if is_file_device(device):
            return ClockedFile(self, device, role)
        return self._open(direction, device, role)

    def _start_any(self, handle: Any) -> None:
        if isinstance(handle, ClockedFile):
            handle.start()
        else:
            self._start(handle)

    def _stop_any(self, handle: Any) -> None:
        if isinstance(handle, ClockedFile):
            handle.stop()
        else:
            self._stop(handle)

    def _close_any(self, handle: Any) -> None:
        if isinstance(handle, ClockedFile):
            handle.close()
        else:
            self._close(handle)

    def _latency_any(self, handle: Any, direction: Direction) -> float:
        return 0.0 if isinstance(handle, ClockedFile) else self._latency(handle, direction)

    @property
    def input_ended_at(self) -> float | None:
        """``time.perf_counter()`` when an input file ran out (None: not yet, or a live microphone)."""
        handle = self._handles.get("input")
        return handle.ended_at if isinstance(handle, ClockedFile) else None

    def open(self) -> None:
        """Open every stream (not started); afterwards ``device_latency_ms`` is known. Idempotent."""
        if self._handles:
            return
        try:
            if self.spec.output is not None:
                self._handles["output"] = self._open_any("output", self.spec.output, "output")
            if self.spec.monitor is not None:
                self._handles["monitor"] = self._open_any("output", self.spec.monitor, "monitor")
            if self.spec.input is not None:
                self._handles["input"] = self._open_any("input", self.spec.input, "input")
        except Exception:
            self.close()
            raise

    def device_latency_ms(self) -> tuple[float, float]:
        """(input, output) latency PortAudio reports for the open streams, in ms (0 if absent)."""
        i, o = self._handles.get("input"), self._handles.get("output")
        return (1000.0 * self._latency_any(i, "input") if i is not None else 0.0,
                1000.0 * self._latency_any(o, "output") if o is not None else 0.0)

    def start(self) -> None:
        """Open everything, start playback, wait for it to settle, then start capture."""
        self.open()
        try:
            for role in ("output", "monitor"):
                if role in self._handles:
                    self._start_any(self._handles[role])
            settle = 0.0
            if "output" in self._handles:
                settle += self._wait_settled("output_blocks")
            self._running = True
            if "input" in self._handles:
                self._start_any(self._handles["input"])
                settle += self._wait_settled("input_blocks")
            self.counters.settle_s = settle
        except Exception:
            self.close()
            raise

    def stop(self) -> None:
        """Stop capture first, then playback (so the last converted audio can drain)."""
        self._running = False
        for role in ("input", "output", "monitor"):
            h = self._handles.get(role)
            if h is not None:
                try:
                    self._stop_any(h)
                except Exception:  # stopping a dead device must not hide the original problem
                    pass

    def close(self) -> None:
        self.stop()
        for role in list(self._handles):
            try:
                self._close_any(self._handles.pop(role))
            except Exception:
                pass

    def __enter__(self) -> LiveStream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AudioBackend(ABC):
    """A device API: lists devices, resolves names, opens live streams."""

    name: ClassVar[str] = ""

    @abstractmethod
    def devices(self) -> list[DeviceInfo]:
        """Every input and output device this backend can open (Pulse ones included on Linux)."""

    @abstractmethod
    def open_stream(self, spec: StreamSpec, callback: DuplexCallback) -> LiveStream:
        """A stream for ``spec`` (not started)."""

    def resolve(self, query: str | None, direction: Direction) -> DeviceInfo:
        """Device by name substring, the default device when ``query`` is None/'default', or the audio
        file (or, for output, 'null') that ``query`` names (``clocked.file_device``)."""
        as_file = file_device(query, direction)
        if as_file is not None:
            return as_file
        devs = self.devices()
        if query is None or query.lower() == "default":
            return default_device(devs, direction)
        return find_device(devs, query, direction)
