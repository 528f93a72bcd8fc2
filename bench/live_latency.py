"""Live DSP path latency through PulseAudio: algorithmic (accounted) and measured loopback.

Usage: ``.venv/bin/python -m bench.live_latency [--repeats 5] [--block-ms 10] [--jitter-ms 20]
[--device-latency low] [--identity] [--json]`` (run from the repository root; needs pulseaudio,
pulseaudio-utils and libasound2-plugins, installed by ``make test`` as root).

A private PulseAudio daemon gets a fake microphone (null sink + remapped source) and the engine's
virtual microphone. ``anchorvoice live``'s session (``anchorvoice.streaming.live_session.LiveSession``) runs the
DSP converter from the fake microphone to the virtual one, toward a voice made from a real speech
prompt (asterisk-core-sounds) played 25 % faster. Each repeat plays one click into a combine sink
that feeds both the fake microphone and the virtual microphone's sink, and records the virtual
microphone: the click arrives twice, directly and through the engine, so the gap between the two
onsets is the engine path's delay alone (capture + queue + conversion + playback), independent of
paplay/parecord buffering. Reported: the median of ``--repeats`` gaps, beside the accounted
algorithmic latency (runner block scheme + converter + resamplers) and the accounted total
(+ jitter buffer + the device latencies PortAudio reports), and the underruns seen while measuring.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.streaming.backends.sounddevice_backend import SoundDeviceBackend
from anchorvoice.streaming.converter_stream import ConverterProcess
from anchorvoice.streaming.live_config import LiveConfig
from anchorvoice.streaming.live_session import LiveSession
from anchorvoice.streaming.virtual_mic import VirtualMic
from bench.machine import machine_line
from tests.integration.pulse import PulseDaemon, onset

RATE = 48000
REFERENCE = Path("/usr/share/asterisk/sounds/en/demo-thanks.g722")


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    daemon = PulseDaemon(root / "pulse").start()
    daemon.activate()
    try:
        daemon.add_microphone("bench_mic_sink", "bench_mic", RATE)
        vm = VirtualMic(env=daemon.env)
        vm.up()
        daemon.pactl("load-module", "module-combine-sink", "sink_name=probe", "slaves=bench_mic_sink,anchorvoice_sink",
                     f"rate={RATE}", "channels=1", "channel_map=mono")
        backend = SoundDeviceBackend()
        backend.refresh()
        cfg = LiveConfig(input="bench_mic", output="virtual", block_ms=args.block_ms, jitter_ms=args.jitter_ms,
                         device_latency=args.device_latency)
        block = cfg.samples(cfg.block_ms)
        engine = None
        if args.identity:
            process: Any = lambda frame: frame  # noqa: E731 - the path without a converter
            extra_ms = 0.0
        else:
            engine = Engine(EngineConfig(home=root / "home", third_party_plugins=False))
            ref = read_audio(REFERENCE, 16000)
            sf.write(root / "ref.wav", ref.samples, 20000)
            engine.add_voice("bench", [root / "ref.wav"])
            process = ConverterProcess(engine.pipeline("vc", "bench").converter, RATE, block)
            process.warm_up()
            extra_ms = process.latency_ms
        session = LiveSession(cfg, process, extra_latency_ms=extra_ms, backend=backend, virtual_mic=vm)
        click = np.zeros(int(0.6 * RATE), np.float32)
        click[RATE // 10 : RATE // 10 + 48] = 0.8
        sf.write(root / "click.wav", click, RATE, subtype="FLOAT")
        session.start()
        gaps: list[float] = []
        try:
            time.sleep(0.5)
            before = session.snapshot()
            for i in range(args.repeats):
                rec = daemon.record("anchorvoice_mic", root / f"rec{i}.wav")
                time.sleep(0.3)
                daemon.play("probe", root / "click.wav")
                time.sleep(0.4)
                x = PulseDaemon.stop_recording(rec, root / f"rec{i}.wav")
                direct = onset(x, RATE)
                through = onset(x, RATE, direct + RATE // 100) if direct is not None else None
                if direct is None or through is None:
                    raise RuntimeError(f"repeat {i}: the click was not found twice in the recording")
                gaps.append(1000.0 * (through - direct) / RATE)
            after = session.snapshot()
        finally:
            session.stop()
            vm.down()
            if engine is not None:
                engine.close()
    finally:
        daemon.stop()
    return {
        "converter": "identity" if args.identity else "dsp",
        "block_ms": cfg.block_ms, "jitter_ms": cfg.jitter_ms, "device_latency": cfg.device_latency,
        "algorithmic_ms": round(after.algorithmic_latency_ms, 1),
        "accounted_total_ms": round(after.total_latency_ms, 1),
        "measured_ms": [round(g, 1) for g in gaps],
        "measured_median_ms": round(statistics.median(gaps), 1),
        "underruns_while_measuring": after.underruns - before.underruns,
        "overruns_while_measuring": after.overruns - before.overruns,
        "rtf": round(after.rtf, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--block-ms", type=float, default=LiveConfig.block_ms)
    ap.add_argument("--jitter-ms", type=float, default=LiveConfig.jitter_ms)
    ap.add_argument("--device-latency", default=LiveConfig.device_latency)
    ap.add_argument("--identity", action="store_true", help="no converter: the I/O path alone")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not PulseDaemon.available():
        raise SystemExit("needs pulseaudio and pulseaudio-utils (apt install pulseaudio pulseaudio-utils)")
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(machine_line())
    print(f"live {result['converter']} path through PulseAudio (block {result['block_ms']} ms, jitter "
          f"{result['jitter_ms']} ms, device latency {result['device_latency']}):")
    print(f"  algorithmic {result['algorithmic_ms']} ms, accounted total {result['accounted_total_ms']} ms")
    print(f"  measured loopback median of {len(result['measured_ms'])}: {result['measured_median_ms']} ms "
          f"(runs {result['measured_ms']})")
    print(f"  underruns {result['underruns_while_measuring']}, overruns {result['overruns_while_measuring']} "
          f"while measuring; converter RTF {result['rtf']}")


if __name__ == "__main__":
    main()
