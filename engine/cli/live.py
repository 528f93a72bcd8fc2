"""`anchorvoice live`: convert the microphone in real time into the virtual microphone.

``--input speech.wav`` plays an audio file through the same runner, converter and effects in real time
(resampled to the live rate) instead of a microphone and stops after the end of the file and its converted
tail; ``--output out.wav`` / ``--output null`` record or discard the result, so live runs without a sound card.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from typing import Any

from anchorvoice.engine.cli.common import emit, make_engine, progress
from anchorvoice.engine.live import MAX_LIVE_RTF, NEURAL_BLOCK_MS, build_live, check_overrides
from anchorvoice.errors import ConfigError
from anchorvoice.streaming.backends import BACKENDS
from anchorvoice.streaming.backends.clocked import is_file_device
from anchorvoice.streaming.live_config import BLOCK_MS_RANGE

STATUS_HZ = 4.0
"""Status line refreshes per second (the brief: about 4 per second)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    lp = sub.add_parser("live", help="convert the microphone in real time into the virtual microphone")
    lp.add_argument("--voice", required=True, help="voice name (see `anchorvoice voices list`)")
    lp.add_argument("--input", default=None,
                    help="microphone: part of a device name (default: system default), or an audio file "
                    "(.wav/.flac/.ogg/...) played in real time instead; live stops after its end")
    lp.add_argument("--output", default=None,
                    help="'virtual' (the virtual mic, created if missing; default), part of a device name, "
                    "an audio file to record to (.wav/.flac/.ogg) or 'null' (discard)")
    lp.add_argument("--monitor", default=None,
                    help="also play the converted voice on this device (headphones), file or 'null'")
    lp.add_argument("--backend", choices=BACKENDS, default=None, help="audio API (default sounddevice)")
    lp.add_argument("--preset", default="vc", help="VC preset name or .toml path; its [live] table sets defaults")
    lp.add_argument("--block-ms", type=float, default=None,
                    help=f"audio per converter call (default: the preset's [live] block_ms; "
                    f"{NEURAL_BLOCK_MS:.0f} for neural voices; {BLOCK_MS_RANGE[0]:g}-{BLOCK_MS_RANGE[1]:g})")
    lp.add_argument("--duration", type=float, default=None,
                    help="stop after this many seconds, > 0 (default: Ctrl-C, or the end of an --input file)")
    lp.add_argument("--force", action="store_true",
                    help=f"start even when the converter measures an RTF above {MAX_LIVE_RTF}")
    lp.set_defaults(func=run_live)


def check_duration(duration: float | None) -> None:
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ConfigError(f"--duration must be a number of seconds above 0 (leave it out to run until Ctrl-C), "
                          f"got {duration}")


def run_live(args: argparse.Namespace) -> int:
    overrides = {"input": args.input, "output": args.output, "monitor": args.monitor, "backend": args.backend,
                 "block_ms": args.block_ms}
    check_duration(args.duration)
    check_overrides(overrides)  # out-of-range numbers fail before the engine or any model loads
    engine = make_engine(args)
    events: list[dict[str, Any]] = []
    tty = sys.stderr.isatty()

    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        if not getattr(args, "json", False):
            print(("\n" if tty else "") + f"[{event.get('event')}] {event}", file=sys.stderr, flush=True)

    run = build_live(engine, args.voice, preset=args.preset, overrides=overrides, force=args.force,
                     on_event=on_event, progress=lambda msg: progress(args, msg))
    session = run.session
    progress(args, "opening devices")
    session.start()
    in_name = session.input_device.name if session.input_device else "?"
    out_name = session.output_device.name if session.output_device else "?"
    ends = "the file's end or Ctrl-C stops" if is_file_device(session.input_device) else "Ctrl-C stops"
    progress(args, f"live: {in_name!r} -> {args.voice!r} -> {out_name!r} ({ends})")
    t0 = time.perf_counter()
    stop = threading.Event()
    last_print = 0.0
    try:
        while not stop.wait(1.0 / STATUS_HZ):
            now = time.perf_counter()
            if args.duration is not None and now - t0 >= args.duration:
                break
            if session.finished():
                break
            if getattr(args, "json", False) or getattr(args, "quiet", False):
                continue
            snap = session.snapshot()
            if tty:
                print("\r" + snap.line() + " " * 4, end="", file=sys.stderr, flush=True)
            elif now - last_print >= 1.0:
                print(snap.line(), file=sys.stderr, flush=True)
                last_print = now
    except KeyboardInterrupt:
        pass
    finally:
        final = session.snapshot()
        session.stop()
        run.remember()  # the speaker's pitch, for the first words of the next run
    elapsed = time.perf_counter() - t0
    if tty and not getattr(args, "json", False):
        print(file=sys.stderr)
    summary = {"seconds": round(elapsed, 2), **final.to_dict(),
               "degraded_events": sum(1 for e in events if e.get("event") == "degraded"),
               "input": in_name, "output": out_name}
    emit(args, summary,
         f"stopped after {elapsed:.1f} s: {final.blocks} blocks, compute {final.compute_ms:.2f} ms/block "
         f"(RTF {final.rtf:.2f}), latency {final.algorithmic_latency_ms:.0f} ms algorithmic / "
         f"{final.total_latency_ms:.0f} ms total, underruns {final.underruns}, overruns {final.overruns}, "
         f"converter errors {final.errors}, degraded {summary['degraded_events']}x; jitter buffer "
         f"{final.jitter_buffer_ms:.0f} ms (peak {final.jitter_peak_ms:.0f} ms); audio thread {final.audio_priority}, "
         f"worker {final.worker_priority}"
         + (f", {final.helper_priority}" if final.helper_priority else "")
         + (f"\nnote: {final.priority_note}" if final.priority_note else ""))
    engine.close()
    return 0
