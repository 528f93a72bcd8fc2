"""PyAudio (PortAudio) backend, selected with ``--backend pyaudio``.

Same PortAudio underneath as sounddevice; useful where a distribution ships PyAudio but not
sounddevice's PortAudio lookup. PyAudio's callback contract forces one allocation per block (it
must return a ``bytes`` object), so sounddevice stays the default.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from anchorvoice.errors import DeviceError
from anchorvoice.frames import FloatArray
from anchorvoice.streaming.backends.base import AudioBackend, DuplexCallback, LiveStream, StreamSpec
from anchorvoice.streaming.backends.devices import DeviceInfo, Direction
from anchorvoice.streaming.backends.pulse import install_alsa_route, list_pulse_devices, pulse_routing, server_available
from anchorvoice.streaming.backends.sounddevice_backend import PULSE_PCM, portaudio_index

# PortAudio status flags (portaudio.h: paInputOverflow 0x2, paOutputUnderflow 0x4).
_INPUT_OVERFLOW = 0x2
_OUTPUT_UNDERFLOW = 0x4


def _pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError:
        raise DeviceError("PyAudio is not installed: `pip install anchorvoice[pyaudio]` "
                          "(or use the default --backend sounddevice)") from None
    return pyaudio


class PyAudioStream(LiveStream):
    """Split input/output PyAudio streams around one callback."""

    def __init__(self, spec: StreamSpec, callback: DuplexCallback, pa: Any, devices: list[DeviceInfo]) -> None:
        super().__init__(spec, callback)
        self._pa = pa
        self._pa_devices = devices
        self._out_buf: FloatArray = np.zeros(spec.block_size, np.float32)

    def _open(self, direction: Direction, device: DeviceInfo, role: str) -> Any:
        pyaudio = _pyaudio()
        index = device.index
        if device.pulse_name is not None:
            index = portaudio_index(self._pa_devices, PULSE_PCM, direction)
        out_buf = np.zeros(self.spec.block_size, np.float32) if role == "monitor" else self._out_buf

        def cb(in_bytes: bytes | None, frames: int, time_info: Any, status: int) -> tuple[bytes | None, int]:
            if role == "input":
                self._on_input(np.frombuffer(in_bytes or b"", dtype=np.float32), bool(status & _INPUT_OVERFLOW))
                return None, pyaudio.paContinue
            buf = out_buf[:frames]
            handler = self._on_output if role == "output" else self._on_monitor
            handler(buf, bool(status & _OUTPUT_UNDERFLOW))
            return buf.tobytes(), pyaudio.paContinue

        kwargs: dict[str, Any] = {"format": pyaudio.paFloat32, "channels": 1, "rate": self.spec.sample_rate,
                                  "frames_per_buffer": self.spec.block_size, "stream_callback": cb,
                                  "start": False}
        kwargs["input" if direction == "input" else "output"] = True
        kwargs["input_device_index" if direction == "input" else "output_device_index"] = index
        sink = device.pulse_name if direction == "output" else None
        source = device.pulse_name if direction == "input" else None
        try:
            with pulse_routing(sink=sink, source=source):
                return self._pa.open(**kwargs)
        except (OSError, ValueError) as exc:
            raise DeviceError(f"cannot open {role} device {device.name!r} at {self.spec.sample_rate} Hz: {exc} "
                              "(`anchorvoice devices --backend pyaudio` lists them)") from None

    def _latency(self, handle: Any, direction: Direction) -> float:
        return float(handle.get_input_latency() if direction == "input" else handle.get_output_latency())

    def _start(self, handle: Any) -> None:
        handle.start_stream()

    def _stop(self, handle: Any) -> None:
        handle.stop_stream()

    def _close(self, handle: Any) -> None:
        handle.close()


class PyAudioBackend(AudioBackend):
    """PortAudio through PyAudio, plus Pulse sinks/sources via the ALSA pulse PCM."""

    name: ClassVar[str] = "pyaudio"

    def __init__(self) -> None:
        pyaudio = _pyaudio()
        if server_available():
            install_alsa_route()  # before PortAudio initialises, so that it lists the route PCM
        self._pa = pyaudio.PyAudio()

    def portaudio_devices(self) -> list[DeviceInfo]:
        pa = self._pa
        try:
            default_in = int(pa.get_default_input_device_info()["index"])
        except OSError:
            default_in = -1
        try:
            default_out = int(pa.get_default_output_device_info()["index"])
        except OSError:
            default_out = -1
        out = []
        for i in range(pa.get_device_count()):
            d = pa.get_device_info_by_index(i)
            api = pa.get_host_api_info_by_index(d["hostApi"])["name"]
            out.append(DeviceInfo(
                name=str(d["name"]), host_api=str(api), max_input_channels=int(d["maxInputChannels"]),
                max_output_channels=int(d["maxOutputChannels"]),
                default_samplerate=float(d["defaultSampleRate"]), index=i,
                is_default_input=i == default_in, is_default_output=i == default_out,
            ))
        return out

    def devices(self) -> list[DeviceInfo]:
        pa = self.portaudio_devices()
        if any(d.name == PULSE_PCM for d in pa):
            return list_pulse_devices() + pa
        return pa

    def open_stream(self, spec: StreamSpec, callback: DuplexCallback) -> LiveStream:
        return PyAudioStream(spec, callback, self._pa, self.portaudio_devices())

    def close(self) -> None:
        self._pa.terminate()
