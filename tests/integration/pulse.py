"""A private PulseAudio daemon for tests and benchmarks, plus recording/playing helpers.

The daemon runs with its own HOME / XDG_RUNTIME_DIR under a temporary folder and anonymous auth
on its unix socket, so it never touches a user's sound server. ``PulseDaemon.env`` is what a
subprocess (pactl, paplay, parecord) needs; ``activate()`` points this process's libpulse (the
ALSA ``pulse`` PCM that PortAudio opens) at it through ``PULSE_SERVER``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

STARTUP_TIMEOUT_S = 10.0


class PulseDaemon:
    """Start with ``start()``, stop with ``stop()`` (also a context manager)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.home = self.root / "home"
        self.runtime = self.root / "run"
        self.socket = self.runtime / "native"
        self.log = self.root / "pulseaudio.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}

    @staticmethod
    def available() -> bool:
        return all(shutil.which(x) for x in ("pulseaudio", "pactl", "paplay", "parecord"))

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HOME=str(self.home), XDG_RUNTIME_DIR=str(self.runtime), PULSE_SERVER=f"unix:{self.socket}")
        for k in ("PULSE_SINK", "PULSE_SOURCE"):
            env.pop(k, None)
        return env

    def start(self) -> PulseDaemon:
        self.home.mkdir(parents=True, exist_ok=True)
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        env = self.env
        env.pop("PULSE_SERVER")
        cmd = [
            "pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--disallow-exit",
            "--use-pid-file=no", "--log-target=stderr", "--disable-shm=yes",
            f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
        ]
        self._log_fh = self.log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log_fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pulseaudio did not answer in {STARTUP_TIMEOUT_S} s: {self.log.read_text()[-2000:]}")

    def pactl(self, *args: str) -> str:
        out = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def add_microphone(self, sink: str = "test_mic_sink", source: str = "test_mic", rate: int = 48000) -> None:
        """A fake microphone: a null sink to play speech into and a remapped source reading it."""
        self.pactl("load-module", "module-null-sink", f"sink_name={sink}", f"rate={rate}", "channels=1",
                   "channel_map=mono")
        self.pactl("load-module", "module-remap-source", f"master={sink}.monitor", f"source_name={source}",
                   f"rate={rate}", "channels=1", "channel_map=mono")

    def activate(self) -> None:
        """Point this process's pulse clients at the daemon (undone by ``stop``)."""
        for k, v in (("PULSE_SERVER", f"unix:{self.socket}"),):
            self._saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def stop(self) -> None:
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if hasattr(self, "_log_fh"):
            self._log_fh.close()

    def __enter__(self) -> PulseDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- audio helpers -------------------------------------------------------------------------
    # paplay / parecord keep their default (large) buffers: with 10 ms ones they dropped or
    # inserted ~40 ms of audio on a loaded 2-core CI machine, which the engine was then blamed for.
    def record(self, source: str, path: Path, rate: int = 48000) -> subprocess.Popen[bytes]:
        """Start recording ``source`` to a float WAV; stop with ``stop_recording``."""
        return subprocess.Popen(
            ["parecord", "-d", source, f"--rate={rate}", "--channels=1", "--format=float32le",
             "--file-format=wav", str(path)],
            env=self.env,
        )

    @staticmethod
    def stop_recording(proc: subprocess.Popen[bytes], path: Path) -> np.ndarray:
        proc.terminate()
        proc.wait(timeout=5)
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
        return data[:, 0]

    def play(self, sink: str, path: Path) -> None:
        """Play a file into ``sink`` and wait until it has been played."""
        subprocess.run(["paplay", "-d", sink, str(path)], env=self.env, check=True, timeout=120)


def private_pulse_with_mic(tmp: Path, mic_sink: str, mic: str, rate: int) -> Iterator[PulseDaemon]:
    """Body of a module fixture: a private daemon with a test "microphone", stopped afterwards."""
    if not PulseDaemon.available():
        pytest.skip("pulseaudio / pulseaudio-utils not installed (apt install pulseaudio pulseaudio-utils)")
    daemon = PulseDaemon(tmp).start()
    daemon.activate()
    try:
        daemon.add_microphone(mic_sink, mic, rate)
        yield daemon
    finally:
        daemon.stop()


def onset(x: np.ndarray, rate: int, start: int = 0, frac: float = 0.3) -> int | None:
    """First sample at/after ``start`` whose 1 ms envelope exceeds ``frac`` of the peak after ``start``."""
    win = max(1, rate // 1000)
    env = np.convolve(np.abs(x[start:]), np.ones(win) / win, mode="same")
    if len(env) == 0 or env.max() <= 0:
        return None
    idx = np.nonzero(env >= frac * env.max())[0]
    return int(start + idx[0]) if len(idx) else None
