"""Issue 17, live under load: the DSP live path (``build_live``, as ``anchorvoice live`` runs it) through a
private PulseAudio into the virtual microphone for 20 s (``--load-seconds``; ``make load-test
LOAD_SECONDS=600`` is issue 17's 10-minute soak) while two busy processes at normal priority keep
both cores loaded: no underrun after a settling period (``SETTLE_S``) in which the adaptive jitter buffer
may grow to what this machine's load needs.

Marked ``pulse`` and ``slow``; skipped when the pulseaudio programs are missing. The underrun counts, the
jitter buffer's peak, the threads' priorities and the load average are recorded as properties (and printed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from anchorvoice.audio_io import read_audio, write_audio
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.live import build_live
from anchorvoice.frames import AudioFrame
from anchorvoice.streaming.backends.sounddevice_backend import SoundDeviceBackend
from anchorvoice.streaming.virtual_mic import VirtualMic
from bench.soak import rss_bytes
from tests.conftest import asterisk_clip
from tests.integration.pulse import PulseDaemon, private_pulse_with_mic

# `load`: run by `make load-test`, not by `make test`. A virtualised 2-core host pauses its vCPUs now and then
# (steal time): one such pause gave 1 underrun in 20 s on an otherwise idle CI-like machine, so a strict
# 0-underrun check cannot gate every commit. It measures the goal when the host is quiet.
pytestmark = [pytest.mark.pulse, pytest.mark.slow, pytest.mark.load]

RATE = 48000
MIC_SINK, MIC = "load_mic_sink", "load_mic"
SETTLE_S = 5.0
HOGS = 2
HOG_CODE = "while True:\n    pass\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    yield from private_pulse_with_mic(tmp_path_factory.mktemp("pulse"), MIC_SINK, MIC, RATE)


def _speech(seconds: float) -> AudioFrame:
    """``seconds`` of real speech: asterisk prompts one after another."""
    names = ["demo-enterkeywords", "demo-thanks", "demo-congrats", "demo-instruct"]
    parts = [read_audio(asterisk_clip(n), RATE).samples for n in names]
    one = np.concatenate(parts)
    reps = int(np.ceil(seconds * RATE / len(one)))
    return AudioFrame(np.tile(one, reps)[: int(seconds * RATE)], RATE, 0.0)


def test_live_dsp_path_does_not_underrun_with_both_cores_busy(pulse: PulseDaemon, engine: Engine, tmp_path: Path,
                                                               record_property: pytest.RecordProperty,
                                                               request: pytest.FixtureRequest) -> None:
    import soundfile as sf

    seconds = float(request.config.getoption("--load-seconds"))
    ref = read_audio(asterisk_clip("demo-thanks"), 16000)
    sf.write(tmp_path / "ref.wav", ref.samples, 20000)
    engine.add_voice("higher", [tmp_path / "ref.wav"])
    write_audio(tmp_path / "speech.wav", _speech(seconds + SETTLE_S + 3.0))
    backend = SoundDeviceBackend()
    backend.refresh()  # PortAudio probed ALSA before the daemon existed
    vm = VirtualMic(env=pulse.env)
    run = build_live(engine, "higher", overrides={"input": MIC, "output": "virtual"},
                     session_kwargs={"backend": backend, "virtual_mic": vm})
    session = run.session
    hogs = [subprocess.Popen([sys.executable, "-c", HOG_CODE]) for _ in range(HOGS)]
    player: subprocess.Popen[bytes] | None = None
    probe: subprocess.Popen[bytes] | None = None
    try:
        session.start()
        player = subprocess.Popen(["paplay", "-d", MIC_SINK, str(tmp_path / "speech.wav")], env=pulse.env)
        rec = pulse.record("anchorvoice_mic", tmp_path / "rec.wav")
        time.sleep(SETTLE_S)  # start-up: devices open, the jitter buffer fills and adapts to the load
        # How long the host stops running this VM meanwhile (a SCHED_FIFO 99 process; see bench/host_pauses.py).
        probe = subprocess.Popen([sys.executable, "-m", "bench.host_pauses", "--seconds", str(seconds + 120),
                                  "--out", str(tmp_path / "pauses.json")], cwd=REPO)
        before, rss_before = session.snapshot(), rss_bytes()
        time.sleep(seconds)
        after, rss_after = session.snapshot(), rss_bytes()
        probe.send_signal(signal.SIGTERM)
        probe.wait(timeout=10)
        assert session.stream is not None and session.runner is not None
        device_underflows = session.stream.counters.output_underflows
        ring_underruns = session.runner.stats().underruns
        overrun_parts = (session.runner.input_ring.overrun_events, session.runner.output_ring.overrun_events,
                         session.stream.counters.input_overflows)
        load = os.getloadavg()
        recorded = PulseDaemon.stop_recording(rec, tmp_path / "rec.wav")
    finally:
        if probe is not None and probe.poll() is None:
            probe.kill()
        for h in hogs:
            h.terminate()
        for h in hogs:
            h.wait(timeout=10)
        if player is not None and player.poll() is None:
            player.terminate()
            player.wait(timeout=10)
        session.stop()
        vm.down()

    underruns = after.underruns - before.underruns
    pauses = json.loads((tmp_path / "pauses.json").read_text(encoding="utf-8"))
    record_property("host_pauses", pauses)
    growth = (rss_after - rss_before) / rss_before
    record_property("rss_growth", round(growth, 4))
    for key, value in (("underruns", underruns), ("underruns_total", after.underruns),
                       ("jitter_peak_ms", after.jitter_peak_ms), ("audio_priority", after.audio_priority),
                       ("worker_priority", after.worker_priority), ("helper_priority", after.helper_priority),
                       ("load_avg_1min", round(load[0], 2))):
        record_property(key, value)
    print(f"\nunder {HOGS} CPU hogs for {seconds:.0f} s: {underruns} underruns ({after.underruns} since start), "
          f"{after.overruns - before.overruns} overruns, jitter buffer {after.jitter_buffer_ms:.0f} ms "
          f"(peak {after.jitter_peak_ms:.0f}), audio thread {after.audio_priority}, worker {after.worker_priority}, "
          f"sound stack threads {after.helper_priority}, "
          f"load {load[0]:.1f}; since start ({SETTLE_S:.0f} s more): {ring_underruns} in the runner, "
          f"{device_underflows} device underflows; "
          f"overruns (input ring, output ring, device) {overrun_parts}; "
          f"resident memory {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB ({100 * growth:+.1f}%); "
          f"note: {after.priority_note}; host pauses seen by a {pauses['priority']} probe: gaps over 5/10/20/50 ms "
          f"{list(pauses['gaps_over_ms'].values())}, longest {pauses['longest_gap_ms']} ms, "
          f"steal {pauses['steal_s']} s")
    assert after.blocks - before.blocks >= 0.9 * seconds * 1000 / run.config.block_ms, "the worker fell behind"
    assert after.errors == 0 and not after.degraded
    assert growth < 0.05, f"resident memory grew {100 * growth:.1f}% while streaming (goal < 5%)"
    assert np.sqrt(np.mean(np.square(recorded))) > 0.01, "nothing reached the virtual microphone"
    assert underruns == 0, (
        f"{underruns} underruns in {seconds:.0f} s at load {load[0]:.1f}: beyond the {HOGS} hogs, other work on "
        f"this machine competes for the cores (run it when it is quiet); {after}")
