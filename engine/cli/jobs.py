"""`anchorvoice speak` and `anchorvoice convert`: offline TTS and voice conversion to a file.

One meaning per flag name across commands: ``-o/--out`` is a file (or the demo's folder), ``--output`` a
device ('virtual' or part of a device name), as in ``live``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from anchorvoice.audio_io import read_audio, write_audio
from anchorvoice.engine.cli.common import emit, format_timings, make_engine, progress, timing_rows
from anchorvoice.engine.output_sinks import OutputConfig, output_sink
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import AudioSink
from anchorvoice.frames import AudioFrame


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("speak", help="text -> speech in a voice, written to a file")
    sp.add_argument("text", help="what to say")
    sp.add_argument("--voice", required=True, help="voice name (see `anchorvoice voices list`)")
    sp.add_argument("-o", "--out", default=None, help="write the audio to this file (default out/speak.wav "
                    "unless --play/--output is given)")
    sp.add_argument("--output", default=None, metavar="virtual|DEVICE",
                    help="stream into a device while generating: 'virtual' (the virtual microphone) or part of "
                         "a playback device name")
    sp.add_argument("--play", action="store_true", help="stream into the default playback device")
    sp.add_argument("--backend", default="sounddevice", choices=["sounddevice", "pyaudio"], help="audio API")
    sp.add_argument("--lang", default=None, help="language code (default: the preset's, usually en)")
    sp.add_argument("--preset", default="tts", help="pipeline preset name or .toml path (default %(default)s)")
    sp.add_argument("--style", default=None, help="speak with the voice's reference of this style or tag (e.g. "
                    "excited, fast); the default reference when it has none (see `anchorvoice voices show`)")
    sp.set_defaults(func=run_speak)

    cp = sub.add_parser("convert", help="speech file -> the same speech in a voice")
    cp.add_argument("input", help="input audio file (wav/flac/ogg/g722)")
    cp.add_argument("--voice", required=True, help="voice name (see `anchorvoice voices list`)")
    cp.add_argument("-o", "--out", default="out/convert.wav", help="write the audio to this file (default %(default)s)")
    cp.add_argument("--preset", default="vc", help="pipeline preset name or .toml path (default %(default)s)")
    cp.set_defaults(func=run_convert)


def _open_player(args: argparse.Namespace, plugins: PluginManager, sample_rate: int) -> AudioSink | None:
    if not args.play and not args.output:
        return None
    sink = output_sink(plugins, OutputConfig(output=args.output or "default", backend=args.backend))
    sink.open(sample_rate, sample_rate // 100)
    return sink


def _play(sink: AudioSink, samples: np.ndarray, rate: int) -> None:
    step = rate // 10  # 100 ms writes: the sink paces them to real time
    for i in range(0, len(samples), step):
        sink.write(samples[i : i + step])


def run_speak(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    progress(args, f"loading pipeline {args.preset!r} for voice {args.voice!r}")
    pipe = engine.pipeline(args.preset, args.voice)
    rate = pipe.config.pipeline.sample_rate
    player = _open_player(args, engine.plugins, rate)
    out_path = args.out or (None if player else "out/speak.wav")
    progress(args, "synthesizing" + (f" and playing on {args.output or 'the default device'}" if player else ""))
    t0 = time.perf_counter()
    parts: list[np.ndarray] = []
    try:
        for chunk in pipe.speak_iter(args.text, args.lang, args.style):
            parts.append(chunk.samples)
            if player is not None:
                _play(player, chunk.samples, rate)
    finally:
        if player is not None:
            player.close()  # plays what is queued first
    elapsed = time.perf_counter() - t0
    audio = AudioFrame(np.concatenate(parts), rate)
    out = write_audio(Path(out_path), audio) if out_path else None
    rows = timing_rows(pipe.timings)
    first = pipe.first_audio_s or 0.0
    compute = sum(t.seconds for t in pipe.timings.values())
    summary = (
        f"{'wrote ' + str(out) if out else 'played'} ({audio.duration:.2f} s of audio; first audio after "
        f"{first:.2f} s; compute {compute:.2f} s, RTF {compute / max(audio.duration, 1e-9):.3f})"
    )
    if args.style:
        summary += f"\nstyle: {pipe.style_used}" + ("" if pipe.style_used != "default" else
                                                     f" (the voice has no style or tag {args.style!r})")
    emit(
        args,
        {"output": str(out) if out else None, "seconds": audio.duration, "elapsed": elapsed,
         "first_audio_s": first, "rtf": compute / max(audio.duration, 1e-9), "stages": rows,
         "style": pipe.style_used},
        summary + "\n" + format_timings(rows),
    )
    return 0


def run_convert(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    progress(args, f"reading {args.input}")
    audio = read_audio(args.input)
    pipe = engine.pipeline(args.preset, args.voice)
    t0 = time.perf_counter()
    progress(args, f"converting {audio.duration:.1f} s toward {args.voice!r}")
    out_audio = pipe.convert(audio)
    elapsed = time.perf_counter() - t0
    out = write_audio(Path(args.out), out_audio)
    rows = timing_rows(pipe.timings)
    emit(
        args,
        {"output": str(out), "seconds": out_audio.duration, "elapsed": elapsed, "stages": rows},
        f"wrote {out} ({out_audio.duration:.2f} s in {elapsed:.2f} s, RTF {elapsed / max(audio.duration, 1e-9):.3f})\n"
        + format_timings(rows),
    )
    return 0
