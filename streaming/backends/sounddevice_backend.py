"""sounddevice (PortAudio) backend: the default.

Callbacks get numpy views of PortAudio's buffers; with one channel ``indata[:, 0]`` and
``outdata[:, 0]`` are contiguous views, so nothing is allocated on the audio thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from anchorvoice.errors import DeviceError
from anchorvoice.frames import FloatArray
from anchorvoice.streaming.backends.base import AudioBackend, DuplexCallback, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo, Direction
from anchorvoice.streaming.backends.pulse import ROUTE_PCM, install_alsa_route, list_pulse_devices, pulse_routing

PULSE_PCM = "pulse"
"""ALSA PCM of libasound2-plugins that forwards to the Pulse server (honours PULSE_SINK/SOURCE)."""


def _sd() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio shared library is missing
        raise DeviceError(f"PortAudio is not installed ({exc}); Debian/Ubuntu: apt install libportaudio2") from None
    return sounddevice


def portaudio_index(devices: list[DeviceInfo], name: str, direction: Direction) -> int:
    """Index of the PortAudio device called exactly ``name`` (for the 'pulse' PCM: our
    ``ROUTE_PCM`` when PortAudio lists it)."""
    names = (ROUTE_PCM, name) if name == PULSE_PCM else (name,)
    for wanted in names:
        for d in devices:
            if d.index is not None and d.name == wanted and d.supports(direction):
                return d.index
    raise DeviceError(
        f"PortAudio has no {direction} device {name!r}, needed to reach PulseAudio/PipeWire "
        "(Debian/Ubuntu: apt install libasound2-plugins)"
    )


class SoundDeviceStream(LiveStream):
    """Split input/output ``sounddevice`` streams around one callback."""

    open_count = 0
    """Streams of this class open in the process: PortAudio must not be re-initialised under them."""

    def __init__(self, spec: StreamSpec, callback: DuplexCallback, portaudio_devices: list[DeviceInfo]) -> None:
        super().__init__(spec, callback)
        self._pa_devices = portaudio_devices

    def _open(self, direction: Direction, device: DeviceInfo, role: str) -> Any:
        sd = _sd()
        index = device.index
        if device.pulse_name is not None:
            index = portaudio_index(self._pa_devices, PULSE_PCM, direction)
        cb: Callable[[Any, int, Any, Any], None]
        if role == "input":

            def cb_in(indata: Any, frames: int, time_info: Any, status: Any) -> None:
                self._on_input(indata[:, 0], bool(status.input_overflow))

            cls, cb = sd.InputStream, cb_in
        else:
            handler = self._on_output if role == "output" else self._on_monitor

            def cb_out(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
                out: FloatArray = outdata[:, 0]
                handler(out, bool(status.output_underflow))

            cls, cb = sd.OutputStream, cb_out
        sink = device.pulse_name if direction == "output" else None
        source = device.pulse_name if direction == "input" else None
        try:
            with pulse_routing(sink=sink, source=source):
                stream = cls(
                    device=index, samplerate=self.spec.sample_rate, blocksize=self.spec.block_size,
                    channels=1, dtype="float32", latency=self.spec.latency, callback=cb,
                )
            SoundDeviceStream.open_count += 1
        except sd.PortAudioError as exc:
            raise DeviceError(
                f"cannot open {role} device {device.name!r} at {self.spec.sample_rate} Hz: {exc} "
                "(try another --block-ms or device; `anchorvoice devices` lists them)"
            ) from None
        return stream

    def _latency(self, handle: Any, direction: Direction) -> float:
        return float(handle.latency)

    def _start(self, handle: Any) -> None:
        handle.start()

    def _stop(self, handle: Any) -> None:
        handle.stop()

    def _close(self, handle: Any) -> None:
        handle.close()
        SoundDeviceStream.open_count -= 1


class SoundDeviceBackend(AudioBackend):
    """PortAudio through python-sounddevice, plus Pulse sinks/sources reached via the ALSA pulse PCM."""

    name: ClassVar[str] = "sounddevice"

    def refresh(self) -> None:
        """Re-scan devices: PortAudio keeps the list it probed at initialisation (e.g. before the
        Pulse server started). Only call it while this process has no stream open."""
        sd = _sd()
        sd._terminate()
        sd._initialize()

    def portaudio_devices(self) -> list[DeviceInfo]:
        sd = _sd()
        apis = [a["name"] for a in sd.query_hostapis()]
        try:
            default_in, default_out = sd.default.device
        except Exception:
            default_in, default_out = -1, -1
        out = []
        for i, d in enumerate(sd.query_devices()):
            out.append(DeviceInfo(
                name=str(d["name"]), host_api=apis[d["hostapi"]],
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_samplerate=float(d["default_samplerate"]), index=i,
                is_default_input=i == default_in, is_default_output=i == default_out,
            ))
        return out

    def devices(self) -> list[DeviceInfo]:
        pa = self.portaudio_devices()
        # Pulse devices are only reachable when PortAudio has the ALSA pulse PCM.
        if not any(d.name == PULSE_PCM for d in pa):
            return pa
        if not any(d.name == ROUTE_PCM for d in pa) and SoundDeviceStream.open_count == 0 and install_alsa_route():
            self.refresh()
            pa = self.portaudio_devices()
        return list_pulse_devices() + pa

    def open_stream(self, spec: StreamSpec, callback: DuplexCallback) -> LiveStream:
        return SoundDeviceStream(spec, callback, self.portaudio_devices())
