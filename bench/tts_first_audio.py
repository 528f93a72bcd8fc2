"""Time to first audio and RTF of the whole streaming GPT-SoVITS TTS path, full-size random weights.

Builds full-size v2 s1/s2/HuBERT files in the official layouts (bench/fullsize.py), adds a voice
through the real loaders, then speaks a 20-word sentence through the `tts` preset: frontend ->
GPT (KV cache, chunks of ``--chunk-tokens``) -> SoVITS prior on the growing sequence -> chunked
HiFi-GAN -> 48 kHz. Reports the median over ``--repeats`` runs (after one warm-up that also computes
the prompt) of the time to the first audio chunk and of compute seconds per audio second. The GPT
is capped at ``--max-sec`` seconds of tokens (random weights rarely emit EOS).

``--hog N`` runs N busy processes at normal priority beside it (a streamer's game and OBS), and
``--fixed-threads`` turns the stages' thread governor off (always ``--threads``), for the comparison
under load; ``--vocoder-precision`` overrides ``gsv-hifigan``'s precision.

Usage: ``python bench/tts_first_audio.py [--repeats 5] [--threads 2] [--chunk-tokens 24] [--max-sec 4]
[--precision int8] [--vocoder-precision bfloat16] [--hog 2] [--fixed-threads] [--set SLOT.KEY=VALUE ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anchorvoice.audio_io import speech_like_signal  # noqa: E402
from anchorvoice.engine.engine import Engine, EngineConfig  # noqa: E402
from anchorvoice.engine.pipeline import Pipeline  # noqa: E402
from bench.fullsize import write_gpt, write_hubert, write_sovits  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from bench.soak import start_hogs, stop_hogs  # noqa: E402

SENTENCE = ("Thanks so much for the follow everyone, tonight we are going to play something new "
            "and I hope you enjoy it")  # 20 words
REF_TEXT = "This is the voice of your virtual anchor speaking clearly."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk-tokens", type=int, default=24)
    ap.add_argument("--max-sec", type=int, default=4)
    ap.add_argument("--precision", default="", help="gsv-t2s precision (default: the preset's)")
    ap.add_argument("--vocoder-precision", default="", help="gsv-hifigan precision (default: the preset's)")
    ap.add_argument("--hog", type=int, default=0, help="busy processes at normal priority beside the bench")
    ap.add_argument("--fixed-threads", action="store_true", help="thread governor off: always --threads")
    ap.add_argument("--set", action="append", default=[], metavar="SLOT.KEY=VALUE",
                    help="override a stage parameter of the preset (repeatable), e.g. prosody.max_chunk_tokens=192")
    args = ap.parse_args()
    print(machine_line(args.threads))
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="av-bench-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        s2, s1 = write_sovits(tmp / "s2.pth"), write_gpt(tmp / "s1.ckpt", max_sec=args.max_sec)
        hub = write_hubert(tmp / "hubert")
        ref = tmp / "ref.wav"
        sf.write(str(ref), speech_like_signal(32000, 5.0).samples, 32000)
        print(f"built full-size random checkpoints in {time.perf_counter() - t0:.1f} s")
        eng = Engine(EngineConfig(home=tmp / "home", third_party_plugins=False))
        eng.add_voice("bench", [ref], ref_text=REF_TEXT, models={"sovits": s2, "gpt": s1, "hubert": hub})
        cfg = eng.load_preset("tts")  # configs/tts.toml, with the GPT's params overridden from the command line
        cfg.slots["prosody"].params["chunk_tokens"] = args.chunk_tokens
        if args.precision:
            cfg.slots["prosody"].params["precision"] = args.precision
        if args.vocoder_precision:
            cfg.slots["vocoder"].params["precision"] = args.vocoder_precision
        for slot in ("prosody", "decoder", "vocoder"):
            cfg.slots[slot].params["adaptive_threads"] = not args.fixed_threads
        for item in args.set:
            key, _, value = item.partition("=")
            slot, _, name = key.partition(".")
            if slot not in cfg.slots or not name or not value:
                sys.exit(f"--set {item!r}: want SLOT.KEY=VALUE with SLOT one of {', '.join(cfg.slots)}")
            cfg.slots[slot].params[name] = json.loads(value) if value[0] in "-0123456789tf[{" else value
        precision = cfg.slots["prosody"].params.get("precision", "float32")
        voc_precision = cfg.slots["vocoder"].params.get("precision", "float32")
        t0 = time.perf_counter()
        pipe = Pipeline(cfg, eng.plugins, eng.voices.get("bench"))
        print(f"loaded the voice's models in {time.perf_counter() - t0:.1f} s")
        pipe.speak("Warm up, please.", "en")
        hogs = start_hogs(args.hog)
        firsts, rtfs, durs = [], [], []
        for _ in range(args.repeats):
            pipe.timings.clear()
            t0 = time.perf_counter()
            audio = np.concatenate([c.samples for c in pipe.speak_iter(SENTENCE, "en")])
            wall = time.perf_counter() - t0
            dur = len(audio) / pipe.config.pipeline.sample_rate
            firsts.append(pipe.first_audio_s or float("nan"))
            rtfs.append(wall / dur)
            durs.append(dur)
        stop_hogs(hogs)
        per_stage = {k: round(v.seconds, 3) for k, v in pipe.timings.items()}
        governors = {slot: pipe._stage(slot).threads.summary() for slot in ("prosody", "decoder", "vocoder")}
        print(
            f"threads {args.threads} ({'fixed' if args.fixed_threads else 'governed'}), {args.hog} busy processes, "
            f"chunk_tokens {args.chunk_tokens}, GPT {precision}, vocoder {voc_precision}, "
            f"20-word sentence, {args.repeats} runs; load average after {os.getloadavg()[0]:.1f}"
            + (f"; overrides {' '.join(args.set)}" if args.set else "")
        )
        print(f"  time to first audio: median {statistics.median(firsts):.3f} s (min {min(firsts):.3f})  goal <= 0.3 s")
        print(f"  RTF (wall / audio):  median {statistics.median(rtfs):.3f} (min {min(rtfs):.3f}, audio "
              f"{statistics.median(durs):.2f} s)  goal <= 0.35")
        print(f"  last run per stage (s): {per_stage}")
        print(f"  thread governors: {governors}")
        eng.close()


if __name__ == "__main__":
    main()
