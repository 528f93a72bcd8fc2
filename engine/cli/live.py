"""`anchorvoice live`: convert the microphone in real time into the virtual microphone."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import fields
from typing import Any

from anchorvoice.audio_io import speech_like_signal
from anchorvoice.engine.cli.common import emit, make_engine, progress
from anchorvoice.engine.config import from_dict
from anchorvoice.engine.stages import VoiceConverter
from anchorvoice.errors import DeviceError
from anchorvoice.frames import AudioFrame
from anchorvoice.streaming.backends import BACKENDS
from anchorvoice.streaming.converter_stream import ConverterProcess
from anchorvoice.streaming.live_session import LiveConfig, LiveSession

STATUS_HZ = 4.0
"""Status line refreshes per second (the brief: about 4 per second)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    lp = sub.add_parser("live", help="convert the microphone in real time into the virtual microphone")
    lp.add_argument("--voice", required=True, help="voice name (see `anchorvoice voices list`)")
    lp.add_argument("--input", default=None, help="microphone: part of a device name (default: system default)")
    lp.add_argument("--output", default=None,
                    help="'virtual' (the virtual mic, created if missing; default) or part of a device name")
    lp.add_argument("--monitor", default=None, help="also play the converted voice on this device (headphones)")
    lp.add_argument("--backend", choices=BACKENDS, default=None, help="audio API (default sounddevice)")
    lp.add_argument("--preset", default="vc", help="VC preset name or .toml path; its [live] table sets defaults")
    lp.add_argument("--block-ms", type=float, default=None, help="audio per converter call (default 10)")
    lp.add_argument("--context-ms", type=float, default=None, help="past audio re-sent with each block (default 0)")
    lp.add_argument("--crossfade-ms", type=float, default=None, help="SOLA crossfade between blocks (default 0)")
    lp.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    lp.add_argument("--force", action="store_true", help="start even when the converter measures slower than real time")
    lp.set_defaults(func=run_live)


def live_config(preset_live: dict[str, Any], args: argparse.Namespace, source: str) -> LiveConfig:
    """Defaults < the preset's [live] table < command-line options."""
    cfg = from_dict(LiveConfig, preset_live, source=source, prefix="live")
    overrides = {"input": args.input, "output": args.output, "monitor": args.monitor, "backend": args.backend,
                 "block_ms": args.block_ms, "context_ms": args.context_ms, "crossfade_ms": args.crossfade_ms}
    names = {f.name for f in fields(LiveConfig)}
    for key, value in overrides.items():
        if value is not None and key in names:
            setattr(cfg, key, value)
    cfg.validate()
    return cfg


NEURAL_BLOCK_MS = 250.0
"""Default block for neural converters: RVC's realtime default (DESIGN.md); 10 ms blocks suit only DSP."""
MAX_LIVE_RTF = 0.8
"""Above this compute/audio ratio a live stream degrades within seconds, leaving no headroom."""


def measure_rtf(converter: VoiceConverter, block_ms: float, seconds: float = 2.0) -> float:
    """Compute seconds per audio second of ``converter.process`` on speech-like blocks of ``block_ms``."""
    rate = converter.sample_rate
    sig = speech_like_signal(rate, seconds)
    n = max(1, int(rate * block_ms / 1000))
    converter.reset()
    t0 = time.perf_counter()
    for i in range(0, len(sig.samples) - n + 1, n):
        converter.process(sig.with_samples(sig.samples[i : i + n]))
    rtf = (time.perf_counter() - t0) / seconds
    converter.reset()
    return rtf


def run_live(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    preset = engine.load_preset(args.preset)
    progress(args, f"loading voice {args.voice!r}")
    pipe = engine.pipeline(args.preset, args.voice)
    if pipe.neural and args.block_ms is None:
        args.block_ms = NEURAL_BLOCK_MS
    cfg = live_config(dict(preset.live), args, str(engine.preset_path(args.preset)))
    progress(args, f"measuring the converter at {cfg.block_ms:.0f} ms blocks")
    pipe.converter.process(speech_like_signal(pipe.converter.sample_rate, 0.1))  # first-call compile/load
    rtf = measure_rtf(pipe.converter, cfg.block_ms)
    if rtf > MAX_LIVE_RTF and not args.force:
        raise DeviceError(
            f"voice {args.voice!r} is too slow for live conversion on this machine: {pipe.converter.name!r} "
            f"measured RTF {rtf:.2f} at {cfg.block_ms:.0f} ms blocks (needs <= {MAX_LIVE_RTF}); try a larger "
            f"--block-ms, fewer --threads competitors, a GPU, or --force to start anyway"
        )
    progress(args, f"converter RTF {rtf:.2f} at {cfg.block_ms:.0f} ms blocks")
    runner_cfg = cfg.runner_config()
    process = ConverterProcess(pipe.converter, cfg.sample_rate, runner_cfg.samples(cfg.block_ms),
                               runner_cfg.samples(runner_cfg.lookahead_ms))
    progress(args, "warming up the converter")
    process.warm_up()
    events: list[dict[str, Any]] = []
    tty = sys.stderr.isatty()

    def on_event(event: dict[str, Any]) -> None:
        events.append(event)
        if not getattr(args, "json", False):
            print(("\n" if tty else "") + f"[{event.get('event')}] {event}", file=sys.stderr, flush=True)

    effects, fx_latency_ms = pipe.live_effects(cfg.sample_rate)

    def converted(frame: AudioFrame) -> AudioFrame:
        return effects(process(frame))

    session = LiveSession(cfg, converted, extra_latency_ms=process.latency_ms + fx_latency_ms, on_event=on_event)
    progress(args, "opening devices")
    session.start()
    in_name = session.input_device.name if session.input_device else "?"
    out_name = session.output_device.name if session.output_device else "?"
    progress(args, f"live: {in_name!r} -> {args.voice!r} -> {out_name!r} (Ctrl-C stops)")
    t0 = time.perf_counter()
    stop = threading.Event()
    last_print = 0.0
    try:
        while not stop.wait(1.0 / STATUS_HZ):
            now = time.perf_counter()
            if args.duration is not None and now - t0 >= args.duration:
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
         f"converter errors {final.errors}, degraded {summary['degraded_events']}x")
    engine.close()
    return 0
