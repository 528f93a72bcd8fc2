"""`anchorvoice speak` and `anchorvoice convert`: offline TTS and voice conversion to a file."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.audio_io import read_audio, write_audio
from engine.cli.common import emit, format_timings, make_engine, progress, timing_rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("speak", help="text -> speech in a voice, written to a file")
    sp.add_argument("text", help="what to say")
    sp.add_argument("--voice", required=True, help="voice name (see `anchorvoice voices list`)")
    sp.add_argument("-o", "--output", default="out/speak.wav", help="output audio file (default %(default)s)")
    sp.add_argument("--lang", default=None, help="language code (default: the preset's, usually en)")
    sp.add_argument("--preset", default="tts", help="pipeline preset name or .toml path (default %(default)s)")
    sp.set_defaults(func=run_speak)

    cp = sub.add_parser("convert", help="speech file -> the same speech in a voice")
    cp.add_argument("input", help="input audio file (wav/flac/ogg/g722)")
    cp.add_argument("--voice", required=True, help="voice name (see `anchorvoice voices list`)")
    cp.add_argument("-o", "--output", default="out/convert.wav", help="output audio file (default %(default)s)")
    cp.add_argument("--preset", default="vc", help="pipeline preset name or .toml path (default %(default)s)")
    cp.set_defaults(func=run_convert)


def run_speak(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    progress(args, f"loading pipeline {args.preset!r} for voice {args.voice!r}")
    pipe = engine.pipeline(args.preset, args.voice)
    t0 = time.perf_counter()
    progress(args, "synthesizing")
    audio = pipe.speak(args.text, args.lang)
    elapsed = time.perf_counter() - t0
    out = write_audio(Path(args.output), audio)
    rows = timing_rows(pipe.timings)
    emit(
        args,
        {"output": str(out), "seconds": audio.duration, "elapsed": elapsed, "stages": rows},
        f"wrote {out} ({audio.duration:.2f} s of audio in {elapsed:.2f} s, RTF {elapsed / audio.duration:.3f})\n"
        + format_timings(rows),
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
    out = write_audio(Path(args.output), out_audio)
    rows = timing_rows(pipe.timings)
    emit(
        args,
        {"output": str(out), "seconds": out_audio.duration, "elapsed": elapsed, "stages": rows},
        f"wrote {out} ({out_audio.duration:.2f} s in {elapsed:.2f} s, RTF {elapsed / max(audio.duration, 1e-9):.3f})\n"
        + format_timings(rows),
    )
    return 0
