"""Per-stage real-time factor of the embedded default (no model weights) on 1 and 2 threads.

Usage: ``.venv/bin/python bench/default_rtf.py [--repeats 5] [--threads 1 2] [--json]``

Stages timed, each on the same ~6 s English paragraph:

* ``espeak``: espeak-ng synthesis (an external program; wall time includes starting it);
* ``flite``: flite synthesis (the other base voice);
* ``dsp offline``: ``DspVoiceConverter.convert`` of the paragraph toward a reference voice;
* ``dsp live``: the same through ``process`` in 10 ms blocks, as the live loop feeds it; ``dsp live psola``
  the same with ``live = "psola"``;
* ``highpass`` / ``noise_gate`` / ``compressor`` / ``gain``: each effect at 48 kHz in 10 ms blocks;
* ``analyze_reference``: the one-off analysis run when a voice is added (per second of reference).

RTF = processing time / audio duration (lower is better; the live budget for the DSP converter
is 0.2 on one core). Each thread count runs in a fresh process with ``OMP/OPENBLAS/MKL/NUMBA``
thread variables set before numpy loads, and ``torch.set_num_threads``; numbers are the median
of ``--repeats`` runs after one warm-up, with the CPU-time RTF (all threads, and the external
programs) beside the wall one: on a shared machine the CPU figure is the one that measures the
stage, the wall figure also counts time spent waiting for a core.
The reference voice is a real human speaker (Debian's asterisk-core-sounds-en-g722) when
installed, else flite's ``slt`` (the script says which).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.machine import machine_line  # noqa: E402

TEXT = (
    "Welcome back to the stream, everybody. Today we are going to try the new voice, "
    "and if it sounds strange, please tell me in the chat. Thanks for the follow!"
)
ASTERISK = Path("/usr/share/asterisk/sounds/en/demo-congrats.g722")


def _reference(sr: int) -> tuple[Any, str]:
    import numpy as np

    from anchorvoice.audio_io import resample
    from anchorvoice.frames import AudioFrame, TextFrame

    if ASTERISK.exists():
        import av

        with av.open(str(ASTERISK), format="g722") as c:
            x = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]) / 32768.0
        return AudioFrame(resample(x.astype(np.float32), 16000, sr), sr), "asterisk demo-congrats (human)"
    from anchorvoice.plugins.base_voice import FliteConfig, FliteVoice

    ref = FliteVoice(FliteConfig(voice="slt")).synthesize(TextFrame(TEXT, "en"))
    return ref.with_samples(resample(ref.samples, ref.sample_rate, sr), sr), "flite slt (asterisk sounds not installed)"


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (espeak-ng / flite runs)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeats`` runs after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), _cpu()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(_cpu() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _blocks(stage: Any, frame: Any, block: int) -> None:
    stage.reset()
    x = frame.samples
    for i in range(0, len(x), block):
        stage.process(frame.with_samples(x[i : i + block]))


def worker(threads: int, repeats: int) -> dict[str, Any]:
    """Time every stage in this process (threads already limited by the parent)."""
    import numba
    import torch

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    from anchorvoice.audio_io import resample
    from anchorvoice.engine.voices import Voice
    from anchorvoice.frames import TextFrame
    from anchorvoice.plugins.base_voice import EspeakVoice, FliteVoice
    from anchorvoice.plugins.dsp.converter import DspConfig, DspVoiceConverter
    from anchorvoice.plugins.effects.compressor import CompressorEffect
    from anchorvoice.plugins.effects.gain import GainConfig, GainEffect
    from anchorvoice.plugins.effects.gate import NoiseGateEffect
    from anchorvoice.plugins.effects.highpass import HighPassEffect

    results: dict[str, Any] = {"threads": threads, "stages": {}}

    def record(name: str, seconds_of_audio: float, fn: Callable[[], Any]) -> None:
        wall, cpu = _time(fn, repeats)
        results["stages"][name] = {"rtf": wall / seconds_of_audio, "cpu_rtf": cpu / seconds_of_audio}

    text = TextFrame(TEXT, "en")
    espeak, flite = EspeakVoice(), FliteVoice()
    spoken = espeak.synthesize(text)
    record("espeak", spoken.duration, lambda: espeak.synthesize(text))
    record("flite", flite.synthesize(text).duration, lambda: flite.synthesize(text))

    sr = DspVoiceConverter.sample_rate
    ref, results["reference"] = _reference(sr)
    record("analyze_reference", ref.duration, lambda: DspVoiceConverter.analyze_reference(ref))
    voice = Voice("bench", REPO, [], analysis={"dsp": DspVoiceConverter.analyze_reference(ref)})
    conv = DspVoiceConverter()
    conv.prepare(voice)
    speech = spoken.with_samples(resample(spoken.samples, spoken.sample_rate, sr), sr)
    record("dsp offline", speech.duration, lambda: conv.convert(speech))
    record("dsp live (10 ms blocks)", speech.duration, lambda: _blocks(conv, speech, sr // 100))
    psola = DspVoiceConverter(DspConfig(live="psola"))
    psola.prepare(voice)
    record("dsp live psola (10 ms blocks)", speech.duration, lambda: _blocks(psola, speech, sr // 100))

    out_sr = 48000
    loud = spoken.with_samples(resample(spoken.samples, spoken.sample_rate, out_sr), out_sr)
    for effect in (HighPassEffect(), NoiseGateEffect(), CompressorEffect(), GainEffect(GainConfig(gain_db=-3))):
        record(f"{effect.name} (48 kHz, 10 ms)", loud.duration, lambda e=effect: _blocks(e, loud, out_sr // 100))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per stage (median reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.repeats)))
        return 0

    runs = []
    for n in args.threads:
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[var] = str(n)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n), "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"benchmark worker ({n} threads) failed:\n{proc.stderr}", file=sys.stderr)
            return 1
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    print(machine_line())
    print(f"embedded default, median of {args.repeats} runs; reference voice: {runs[0]['reference']}")
    labels = [f"{r['threads']} thread(s): RTF (cpu)" for r in runs]
    header = f"{'stage':<28}" + "".join(f"{label:>26}" for label in labels)
    print(header)
    print("-" * len(header))
    for stage in runs[0]["stages"]:
        cells = "".join(
            f"{r['stages'][stage]['rtf']:>16.4f} ({r['stages'][stage]['cpu_rtf']:.4f})" for r in runs
        )
        print(f"{stage:<28}{cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
