"""The live path through a real (private) PulseAudio server: fake microphone -> engine -> virtual mic.

Marked ``pulse`` and ``slow``; skipped only when the pulseaudio programs are missing (`make test`
installs them as root).
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss
import soundfile as sf

from anchorvoice.audio_io import read_audio, write_audio
from anchorvoice.engine.engine import Engine
from anchorvoice.errors import DeviceError
from anchorvoice.streaming.backends.sounddevice_backend import SoundDeviceBackend
from anchorvoice.streaming.converter_stream import ConverterProcess
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.live_session import LiveSession
from anchorvoice.streaming.virtual_mic import VirtualMic
from tests.conftest import asterisk_clip
from tests.integration.pulse import PulseDaemon, onset, private_pulse_with_mic

pytestmark = [pytest.mark.pulse, pytest.mark.slow]

RATE = 48000
MIC_SINK, MIC = "test_mic_sink", "test_mic"
JITTER_MS = 80.0
DEVICE_LATENCY_S = "low"


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    yield from private_pulse_with_mic(tmp_path_factory.mktemp("pulse"), MIC_SINK, MIC, RATE)


@pytest.fixture(scope="module")
def backend(pulse: PulseDaemon) -> SoundDeviceBackend:
    b = SoundDeviceBackend()
    b.refresh()  # PortAudio probed ALSA before the daemon existed
    return b


def test_virtual_mic_up_down_idempotent(pulse: PulseDaemon) -> None:
    vm = VirtualMic(env=pulse.env)
    assert not vm.status().present
    first = vm.up()
    second = vm.up()
    assert first.present and second.present
    assert first.modules == second.modules and len(first.modules) == 2  # nothing loaded twice
    sources = json.loads(pulse.pactl("--format=json", "list", "sources"))
    ours = [s for s in sources if s["name"] == "anchorvoice_mic"]
    assert ours and ours[0]["description"] == "anchorvoice Virtual Mic"
    assert vm.down().present is False
    assert vm.down().present is False
    assert "anchorvoice_mic" not in pulse.pactl("list", "short", "sources")


def test_devices_lists_and_matches_pulse_devices(pulse: PulseDaemon, backend: SoundDeviceBackend,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from anchorvoice.engine.cli.devices import run_devices

    VirtualMic(env=pulse.env).up()
    try:
        run_devices(argparse.Namespace(backend="sounddevice", json=True))
        data = json.loads(capsys.readouterr().out)
        inputs = {d["name"]: d for d in data["inputs"]}
        assert inputs["anchorvoice_mic"]["virtual"] == "anchorvoice"
        assert inputs[MIC]["host_api"] == "PulseAudio" and inputs[MIC]["virtual"] is None
        assert backend.resolve("TEST_MIC", "input").pulse_name == MIC  # case-insensitive
        with pytest.raises(DeviceError, match="did you mean 'test_mic'"):
            backend.resolve("tset_mic", "input")
    finally:
        VirtualMic(env=pulse.env).down()


def _envelope(x: np.ndarray, hop: int) -> np.ndarray:
    n = len(x) // hop
    return np.sqrt(np.mean(np.square(x[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))


def _align(rec: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The part of ``rec`` that lines up with ``ref``, found by cross-correlating 1 ms envelopes
    (waveforms of two phase-vocoder runs do not correlate sample by sample)."""
    hop = RATE // 1000
    a, b = _envelope(rec, hop), _envelope(ref, hop)
    c = ss.fftconvolve(a - a.mean(), (b - b.mean())[::-1])
    lag = (int(np.argmax(c)) - (len(b) - 1)) * hop
    assert lag >= 0, "the recording must start before the speech"
    return rec[lag : lag + len(ref)]


def _band_corr(x: np.ndarray, ref: np.ndarray) -> float:
    """Correlation of 32 log band energies (80 Hz-8 kHz, 10 ms hop) over frames within 40 dB of the
    loudest: high for the same voice saying the same thing, lower for another pitch/timbre."""
    n = min(len(x), len(ref))

    def bands(sig: np.ndarray) -> np.ndarray:
        f, _, spec = ss.stft(sig[:n], RATE, nperseg=2048, noverlap=2048 - 480)
        power = np.abs(spec) ** 2
        edges = np.geomspace(80, 8000, 33)
        return 10 * np.log10(np.stack([power[(f >= lo) & (f < hi)].sum(0) for lo, hi in zip(edges[:-1], edges[1:])])
                             + 1e-10)

    bx, br = bands(x), bands(ref)
    loud = br.max(0) > br.max() - 40
    return float(np.corrcoef(bx[:, loud].ravel(), br[:, loud].ravel())[0, 1])


def test_live_dsp_path_matches_offline_conversion(pulse: PulseDaemon, backend: SoundDeviceBackend,
                                                  engine: Engine, tmp_path: Path,
                                                  record_property: pytest.RecordProperty) -> None:
    # Target voice: another prompt played 25 % faster, i.e. pitch and formants 25 % higher.
    ref = read_audio(asterisk_clip("demo-thanks"), 16000)
    sf.write(tmp_path / "ref.wav", ref.samples, 20000)
    engine.add_voice("higher", [tmp_path / "ref.wav"])
    speech = read_audio(asterisk_clip("demo-enterkeywords"), RATE)
    write_audio(tmp_path / "speech.wav", speech)
    offline = engine.convert(speech, "higher").samples

    vm = VirtualMic(env=pulse.env)
    # Default block/crossfade/device buffers (the <= 50 ms algorithmic latency under test), but an
    # 80 ms jitter buffer instead of 20: CI runs this on 2 shared cores (load 7-9 measured), where
    # the default underran once in 3 runs when the worker was descheduled (80 ms: 0 in 6 runs).
    cfg = LiveConfig(input=MIC, output="virtual", jitter_ms=JITTER_MS, input_queue_ms=300.0,
                     device_latency=DEVICE_LATENCY_S)
    converter = engine.pipeline("vc", "higher").converter
    process = ConverterProcess(converter, RATE, cfg.samples(cfg.block_ms))
    process.warm_up()
    session = LiveSession(cfg, process, extra_latency_ms=process.latency_ms, backend=backend, virtual_mic=vm)
    session.start()
    try:
        assert session.output_device is not None and session.output_device.pulse_name == "anchorvoice_sink"
        assert gc.get_freeze_count() > 0  # no full-heap GC pauses while the stream runs
        time.sleep(0.5)
        before = session.snapshot()
        rec = pulse.record("anchorvoice_mic", tmp_path / "rec.wav")
        time.sleep(0.3)
        pulse.play(MIC_SINK, tmp_path / "speech.wav")
        time.sleep(0.5)
        recorded = PulseDaemon.stop_recording(rec, tmp_path / "rec.wav")
        after = session.snapshot()

        # Loopback delay: one click reaches the virtual mic directly and through the engine (a
        # combine sink feeds both null sinks on the same clock), so the gap is the engine path alone.
        pulse.pactl("load-module", "module-combine-sink", "sink_name=probe",
                    f"slaves={MIC_SINK},anchorvoice_sink", f"rate={RATE}", "channels=1", "channel_map=mono")
        click = np.zeros(int(0.6 * RATE), np.float32)
        click[RATE // 10 : RATE // 10 + 48] = 0.8
        sf.write(tmp_path / "click.wav", click, RATE, subtype="FLOAT")
        rec = pulse.record("anchorvoice_mic", tmp_path / "click_rec.wav")
        time.sleep(0.3)
        pulse.play("probe", tmp_path / "click.wav")
        time.sleep(0.4)
        clicks = PulseDaemon.stop_recording(rec, tmp_path / "click_rec.wav")
    finally:
        session.stop()
        vm.down()
    assert gc.get_freeze_count() == 0

    # Zero underruns in the steady state (after start-up), none in the device either. Input overruns:
    # on 2 shared cores with the PulseAudio daemon, paplay and parecord beside the engine, the capture
    # callback is sometimes late for a moment (21-32 of ~750 blocks in 2 of ~10 full slow runs, with a
    # converter at RTF 0.2); a converter that cannot keep up overruns on most blocks.
    assert after.underruns == before.underruns, (before, after)
    assert after.overruns - before.overruns <= 0.05 * (after.blocks - before.blocks), (before, after)
    assert after.errors == 0 and not after.degraded
    assert after.algorithmic_latency_ms <= 50.0

    # The first second is left out: offline, the DSP converter seeds its input statistics from the
    # whole clip; live, it adapts from scratch during the first syllables (plugins/dsp/converter.py).
    skip = RATE
    aligned = _align(recorded, offline[skip:])
    assert len(aligned) > 0.95 * len(offline[skip:]), "the recording lost part of the speech"
    envelope_corr = float(np.corrcoef(_envelope(aligned, 480), _envelope(offline[skip:], 480))[0, 1])
    to_offline = _band_corr(aligned, offline[skip:])
    to_dry = _band_corr(_align(recorded, speech.samples[skip:]), speech.samples[skip:])
    record_property("band_corr_offline", round(to_offline, 3))
    record_property("band_corr_dry", round(to_dry, 3))
    assert envelope_corr > 0.9, envelope_corr  # same speech, same timing, nothing dropped
    assert to_offline > 0.85, to_offline
    assert to_offline > to_dry + 0.1, (to_offline, to_dry)  # it was converted, not passed through

    direct = onset(clicks, RATE)
    assert direct is not None
    converted = onset(clicks, RATE, direct + RATE // 100)
    assert converted is not None
    delay_ms = 1000.0 * (converted - direct) / RATE
    record_property("loopback_ms", round(delay_ms, 1))
    print(f"\nloopback delay through PulseAudio: {delay_ms:.1f} ms measured; reported "
          f"{after.algorithmic_latency_ms:.1f} ms algorithmic, {after.total_latency_ms:.1f} ms total; "
          f"band-energy correlation {to_offline:.3f} with the offline conversion, {to_dry:.3f} with the dry "
          f"input; envelope correlation {envelope_corr:.3f}")
    # The engine path cannot be faster than its algorithmic latency, and should stay near its account.
    assert after.algorithmic_latency_ms - 5 <= delay_ms <= after.total_latency_ms + 100


def test_pyaudio_backend_carries_a_tone_to_the_virtual_mic(pulse: PulseDaemon, tmp_path: Path) -> None:
    pytest.importorskip("pyaudio", reason="PyAudio is optional (pip install anchorvoice[pyaudio])")
    from anchorvoice.streaming.backends import get_backend

    backend = get_backend("pyaudio")
    vm = VirtualMic(env=pulse.env)
    cfg = LiveConfig(input=MIC, backend="pyaudio", jitter_ms=JITTER_MS, device_latency=DEVICE_LATENCY_S)
    session = LiveSession(cfg, lambda frame: frame, backend=backend, virtual_mic=vm)
    t = np.arange(2 * RATE) / RATE
    sf.write(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), RATE)
    session.start()
    try:
        rec = pulse.record("anchorvoice_mic", tmp_path / "rec.wav")
        time.sleep(0.3)
        pulse.play(MIC_SINK, tmp_path / "tone.wav")
        time.sleep(0.3)
        x = PulseDaemon.stop_recording(rec, tmp_path / "rec.wav")
    finally:
        session.stop()
        vm.down()
    x = x[: len(x) // 480 * 480]  # whole 10 ms blocks (the recording's length is arbitrary)
    loud = x[_envelope(x, 480).repeat(480) > 0.1]
    assert len(loud) > RATE, "less than 1 s of the 2 s tone came through"
    peak_hz = np.argmax(np.abs(np.fft.rfft(loud))) * RATE / len(loud)
    assert abs(peak_hz - 1000) < 3
    assert np.sqrt(np.mean(loud**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_cli_live_runs_until_ctrl_c_and_prints_a_summary(pulse: PulseDaemon, tmp_path: Path) -> None:
    """`anchorvoice live` as a user runs it: status lines, monitor copy, SIGINT, summary, exit 0."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    env = dict(pulse.env, ANCHORVOICE_HOME=str(tmp_path / "home"), ANCHORVOICE_PLUGINS="")
    ref = read_audio(asterisk_clip("demo-thanks"), 16000)
    sf.write(tmp_path / "ref.wav", ref.samples, 20000)
    subprocess.run([sys.executable, "-m", "anchorvoice.engine.cli.main", "voices", "add", "higher", "--ref",
                    str(tmp_path / "ref.wav")], env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    pulse.pactl("load-module", "module-null-sink", "sink_name=headphones", f"rate={RATE}", "channels=1",
                "channel_map=mono")
    speech = read_audio(asterisk_clip("demo-enterkeywords"), RATE)
    write_audio(tmp_path / "speech.wav", speech)
    proc = subprocess.Popen(
        [sys.executable, "-m", "anchorvoice.engine.cli.main", "live", "--voice", "higher", "--input", MIC,
         "--monitor", "headphones"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # wait for the first status line: devices are running
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "dBFS" in line:
                break
        assert any("dBFS" in x for x in lines), "".join(lines)
        rec = pulse.record("headphones.monitor", tmp_path / "monitor.wav")
        time.sleep(0.3)
        pulse.play(MIC_SINK, tmp_path / "speech.wav")
        time.sleep(0.3)
        heard = PulseDaemon.stop_recording(rec, tmp_path / "monitor.wav")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        VirtualMic(env=pulse.env).down()
    status = [x for x in lines + err.splitlines() if "dBFS" in x]
    assert proc.returncode == 0, err
    assert "stopped after" in out and "underruns" in out
    # 10 ms block + 32 ms DSP + ~2 ms resampling + 1.5 ms look-ahead of the preset's limiter
    assert any("latency 46 ms alg" in x for x in status), status
    assert any(x.split("|")[0].strip() not in ("in -inf dBFS",) for x in status), "input level never moved"
    assert np.sqrt(np.mean(heard**2)) > 0.01, "the monitor device heard nothing"
    assert os.environ.get("PULSE_SINK") is None  # routing variables never leak out of a stream open


def test_device_stages_read_the_mic_and_write_the_virtual_mic(pulse: PulseDaemon, backend: SoundDeviceBackend,
                                                              tmp_path: Path) -> None:
    from anchorvoice.plugins.audio_io import DeviceAudioSource, VirtualMicSink

    t = np.arange(RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", tone, RATE)
    sink = VirtualMicSink()  # creates the virtual mic through pactl (PULSE_SERVER points at the daemon)
    sink.open(RATE, 480)
    try:
        rec = pulse.record("anchorvoice_mic", tmp_path / "vm.wav")
        time.sleep(0.3)
        for i in range(0, len(tone), 480):
            sink.write(tone[i : i + 480])  # blocks at the device's pace
        sink.drain()
        time.sleep(0.3)
        heard = PulseDaemon.stop_recording(rec, tmp_path / "vm.wav")
    finally:
        sink.close()
        VirtualMic(env=pulse.env).down()
    loud = heard[np.abs(heard) > 0.1]
    # |0.5 sin| > 0.1 for 87 % of a 1 s tone (41 800 samples); nearly all of it must arrive.
    assert len(loud) > 0.8 * 0.87 * RATE, len(loud)

    source = DeviceAudioSource(DeviceAudioSource.Config(device=MIC))
    source.open(RATE, 480)
    try:
        player = threading.Thread(target=pulse.play, args=(MIC_SINK, tmp_path / "tone.wav"))
        player.start()
        blocks = [source.read() for _ in range(150)]  # 1.5 s at the device's pace
        player.join()
    finally:
        source.close()
    got = np.concatenate([b for b in blocks if b is not None])
    assert np.max(np.abs(got)) > 0.3
    peak_hz = np.argmax(np.abs(np.fft.rfft(got))) * RATE / len(got)
    assert abs(peak_hz - 1000) < 3
