"""`anchorvoice dataset make|show`: recordings -> a training set in the official GPT-SoVITS layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from anchorvoice.engine.cli.common import emit, home_of, make_engine
from anchorvoice.engine.dataset.builder import MakeConfig, make_dataset, summary
from anchorvoice.engine.dataset.progress import ProgressEvent
from anchorvoice.engine.dataset.store import open_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    dp = sub.add_parser("dataset", help="make a training set from recordings (slice, clean, transcribe, extract)")
    dsub = dp.add_subparsers(dest="dataset_cmd", required=True)

    m = dsub.add_parser("make", help="make or update a dataset (re-running only does what changed)")
    m.add_argument("name", help="dataset name (a folder under <home>/datasets)")
    m.add_argument("--audio", required=True, help="folder of recordings (wav/flac/ogg/mp3/g722, any length and rate)")
    m.add_argument("--transcripts", help="a .list of path|speaker|lang|text for the recordings (default: ASR)")
    m.add_argument("--lang", default="en", help="language of the speech for ASR (default %(default)s)")
    m.add_argument("--hubert", help="chinese-hubert-base folder: writes 4-cnhubert/ and 5-wav32k/")
    m.add_argument("--sovits", help="base SoVITS s2G .pth (with --hubert): writes 6-name2semantic.tsv")
    m.add_argument("--bert", help="chinese-roberta-wwm-ext-large folder: BERT features for Chinese (3-bert/)")
    m.add_argument("--asr", default="", help="ASR plugin name (default: the installed one, faster-whisper)")
    m.add_argument("--asr-model", default="", help="CTranslate2 Whisper folder (default: packaged tiny.en, English)")
    m.add_argument("--denoise", nargs="?", const="noisereduce", default="",
                   help="denoise clips first (default denoiser: noisereduce)")
    m.add_argument("--format", default="gpt-sovits", help="training recipe (default %(default)s)")
    m.set_defaults(func=run_make)

    s = dsub.add_parser("show", help="clips, duration, rejects and why, transcript coverage")
    s.add_argument("name")
    s.set_defaults(func=run_show)


class _Bar:
    """One progress line per phase on stderr, rewritten in place on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()

    def __call__(self, ev: ProgressEvent) -> None:
        if not self.enabled:
            return
        eta = "" if ev.eta_s is None else f", ETA {ev.eta_s:.0f} s"
        line = f"{ev.phase}: {ev.done}/{ev.total}{eta}"
        end = "\n" if ev.done == ev.total or not self.tty else ""
        print(("\r" if self.tty else "") + line, end=end, file=sys.stderr, flush=True)


def _models(args: argparse.Namespace) -> dict[str, Path]:
    out = {k: Path(getattr(args, k)).expanduser() for k in ("hubert", "sovits", "bert") if getattr(args, k)}
    if "sovits" in out and "hubert" not in out:
        from anchorvoice.errors import DatasetError

        raise DatasetError("--sovits needs --hubert too: semantic tokens are made from the HuBERT features")
    return out


def run_make(args: argparse.Namespace) -> int:
    cfg = MakeConfig(
        name=args.name,
        audio_dir=Path(args.audio).expanduser(),
        transcripts=Path(args.transcripts).expanduser() if args.transcripts else None,
        language=args.lang,
        models=_models(args),
        format=args.format,
        asr=args.asr,
        asr_params={"model_dir": args.asr_model} if args.asr_model else {},
        denoise=args.denoise,
    )
    engine = make_engine(args)
    try:
        quiet = getattr(args, "json", False) or getattr(args, "quiet", False)
        info = make_dataset(home_of(args), cfg, engine.plugins, _Bar(not quiet))
    finally:
        engine.close()
    emit(args, info, _describe(info))
    return 0


def run_show(args: argparse.Namespace) -> int:
    folder, manifest = open_dataset(home_of(args), args.name)
    info = summary(folder, manifest)
    emit(args, info, _describe(info))
    return 0


def _describe(info: dict[str, Any]) -> str:
    lines = [
        f"dataset {info['name']} ({info['format']}): {info['path']}",
        f"  clips: {info['clips']} from {info['sources']} recordings, {info['seconds']:.1f} s",
        f"  transcribed: {info['transcribed']}/{info['clips']} clips, {info['transcribed_seconds']:.1f} s",
    ]
    if info["denoise_snr_db"]:
        snr = info["denoise_snr_db"]
        lines.append(f"  denoised: median SNR {snr['before_median']:.1f} dB -> {snr['after_median']:.1f} dB")
    for name, step in info["steps"].items():
        lines.append(f"  step {name}: {step['clips']} clips")
    if info["rejects"]:
        lines.append(f"  rejected: {len(info['rejects'])}")
        lines += [f"    {r['clip']} ({r['seconds']:.1f} s): {r['reason']}" for r in info["rejects"]]
    if info["skipped"]:
        lines.append(f"  skipped files: {len(info['skipped'])}")
        lines += [f"    {s['file']}: {s['reason']}" for s in info["skipped"]]
    lines += [f"  warning: {w}" for w in info["warnings"]]
    return "\n".join(lines)
