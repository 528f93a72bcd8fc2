"""`anchorvoice demo`: the main job on the embedded default, no model weights needed.

1. makes a reference voice ("demo") from a flite voice (a different speaker from the base voice),
2. speaks a built-in sentence with the base voice (Piper `joe`; espeak-ng where Piper is not installed) and
   converts it toward that voice,
3. converts a real recorded human speech clip (Debian's asterisk prompts) toward the same voice,
4. writes everything to ``out/`` and prints per-stage timings and the pitch it reached.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from anchorvoice.audio_io import read_audio, write_audio
from anchorvoice.engine.cli.common import emit, format_timings, progress, timing_rows
from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.errors import AudioInputError
from anchorvoice.frames import AudioFrame, TextFrame

SENTENCE = "Hello chat, thanks for the follow! Tonight we are testing my new voice, live on stream."
REFERENCE_TEXT = (
    "This is the voice of your virtual anchor. I speak clearly, a little slowly, and always with a smile."
)
REAL_CLIP = Path("/usr/share/asterisk/sounds/en/demo-instruct.g722")
REAL_CLIP_SECONDS = 8.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the embedded-default demo (TTS + voice conversion) into out/")
    p.add_argument("--out", default="out", help="output folder (default %(default)s)")
    p.add_argument("--reference-voice", default="rms", help="flite voice used as the target (default %(default)s)")
    p.set_defaults(func=run_demo)


def _median_f0(audio: AudioFrame) -> float | None:
    """Median f0 of a clip as the DSP converter measures it (probabilistic YIN), checked against subharmonic
    summation: where they differ by more than half an octave, YIN has locked onto a harmonic of speech whose
    fundamental is weak (as a converted Piper voice's can be) and the summation's value is reported."""
    from anchorvoice.audio_io import resample
    from anchorvoice.plugins.dsp.analysis import SAMPLE_RATE, voiced_frames
    from anchorvoice.plugins.dsp.harmonic_pitch import harmonic_sum_f0

    x = resample(audio.samples, audio.sample_rate, SAMPLE_RATE)
    f0, voiced = voiced_frames(x)
    yin = float(np.median(f0[voiced])) if voiced.any() else None
    shs = harmonic_sum_f0(x, SAMPLE_RATE)
    if yin is None or (shs is not None and abs(np.log2(yin / shs)) > 0.5):
        return shs
    return yin


def _real_clip(args: argparse.Namespace) -> tuple[AudioFrame, str]:
    try:
        clip = read_audio(REAL_CLIP)
    except AudioInputError as exc:
        raise AudioInputError(
            f"{exc}; the demo's real speech clip comes from Debian's asterisk-core-sounds-en-g722 "
            "(`make demo` installs it when run as root)"
        ) from None
    n = int(REAL_CLIP_SECONDS * clip.sample_rate)
    return clip.with_samples(clip.samples[:n]), f"{REAL_CLIP.name} (first {REAL_CLIP_SECONDS:.0f} s, human speech)"


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    home = Path(args.home) if args.home else out / "home"
    t_start = time.perf_counter()
    engine = Engine(EngineConfig(home=home, threads=args.threads, third_party_plugins=False))
    if engine.plugins.failures:
        for f in engine.plugins.failures:
            progress(args, f"plugin {f.name} failed to load: {f.error}")
    report: dict[str, Any] = {"outputs": {}, "stages": {}}

    progress(args, f"1/3 making the reference voice with flite ({args.reference_voice})")
    flite_cls = engine.plugins.get("base_voice", "flite")
    flite = flite_cls(flite_cls.Config(voice=args.reference_voice))  # type: ignore[call-arg]
    ref_audio = flite.synthesize(TextFrame(REFERENCE_TEXT, "en"))  # type: ignore[attr-defined]
    ref_path = write_audio(out / "reference.wav", ref_audio)
    voice = engine.add_voice("demo", [ref_path], ref_text=REFERENCE_TEXT, ref_lang="en", overwrite=True)
    report["outputs"]["reference"] = str(ref_path)

    tts = engine.pipeline("demo", voice)
    base, _ = tts.base_voice_for("en")
    report["base_voice"] = base.name
    progress(args, f"2/3 speaking the demo sentence ({base.name} base voice -> DSP conversion)")
    tts.warm_up()  # numba compiles the DSP kernels on first use; keep that out of the RTF figures
    spoken = tts.speak(SENTENCE, "en")
    report["outputs"]["speak"] = str(write_audio(out / "speak_demo.wav", spoken))
    report["stages"]["speak"] = timing_rows(tts.timings)

    progress(args, "3/3 converting a real recorded speech clip")
    clip, clip_name = _real_clip(args)
    report["outputs"]["real_input"] = str(write_audio(out / "real_input.wav", clip))
    vc = engine.pipeline("vc", voice)
    vc.warm_up()
    converted = vc.convert(clip)
    report["outputs"]["convert"] = str(write_audio(out / "convert_demo.wav", converted))
    report["stages"]["convert"] = timing_rows(vc.timings)

    report["median_f0_hz"] = {
        "reference": _median_f0(ref_audio),
        "speak_output": _median_f0(spoken),
        "real_input": _median_f0(clip),
        "convert_output": _median_f0(converted),
    }
    report["total_seconds"] = round(time.perf_counter() - t_start, 2)

    f0 = report.get("median_f0_hz", {})

    def hz(x: float | None) -> str:
        return "n/a" if x is None or not np.isfinite(x) else f"{x:.0f} Hz"

    text = "\n".join(
        [
            f"anchorvoice demo: outputs in {out}/",
            f"  reference voice 'demo' from flite/{args.reference_voice}: {ref_path} "
            f"(median f0 {hz(f0.get('reference'))})",
            f"  TTS   {SENTENCE!r}",
            f"        -> {report['outputs']['speak']} ({spoken.duration:.1f} s, "
            f"median f0 {hz(f0.get('speak_output'))})",
            format_timings(report["stages"]["speak"]),
            f"  VC    {clip_name}: median f0 {hz(f0.get('real_input'))}",
            f"        -> {report['outputs']['convert']} ({converted.duration:.1f} s, "
            f"median f0 {hz(f0.get('convert_output'))})",
            format_timings(report["stages"]["convert"]),
            f"  total {report['total_seconds']:.1f} s",
        ]
    )
    emit(args, report, text)
    engine.close()
    return 0
