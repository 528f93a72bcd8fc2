"""`anchorvoice voices add|list|show|remove`."""

from __future__ import annotations

import argparse
from typing import Any

from anchorvoice.engine.cli.common import emit, make_engine, progress
from anchorvoice.engine.cli.voices_store import add_store_parsers, store_fields
from anchorvoice.engine.engine import Engine
from anchorvoice.engine.voices import Voice
from anchorvoice.errors import AnchorVoiceError


def add_parser(sub: argparse._SubParsersAction) -> None:
    vp = sub.add_parser("voices", help="manage the voice library")
    vsub = vp.add_subparsers(dest="voices_cmd", required=True)

    a = vsub.add_parser("add", help="add a voice from reference clips (and optional GPT-SoVITS models)")
    a.add_argument("name")
    a.add_argument("--ref", action="append", required=True, help="reference clip (repeatable)")
    a.add_argument("--ref-text", default="", help="transcript of the reference (GPT-SoVITS prompt)")
    a.add_argument("--ref-lang", default="en", help="language of the reference text (default %(default)s)")
    a.add_argument("--gpt", help="GPT-SoVITS s1 checkpoint (.ckpt)")
    a.add_argument("--sovits", help="GPT-SoVITS s2 generator (.pth)")
    a.add_argument("--hubert", help="chinese-hubert-base folder (HuggingFace layout)")
    a.add_argument("--replace", "--force", dest="force", action="store_true",
                   help="store this as the next version of an existing voice of that name")
    a.set_defaults(func=run_add)

    ls = vsub.add_parser("list", help="list voices")
    ls.set_defaults(func=run_list)

    sh = vsub.add_parser("show", help="show one voice")
    sh.add_argument("name")
    sh.set_defaults(func=run_show)

    rm = vsub.add_parser("remove", help="delete a voice")
    rm.add_argument("name")
    rm.set_defaults(func=run_remove)
    add_store_parsers(vsub)


def _describe(v: Voice, analysis: bool = True) -> dict[str, Any]:
    """A voice as plain data; ``analysis=False`` leaves out the per-converter statistics (long arrays)."""
    data = {
        "name": v.name,
        "kind": f"neural ({', '.join(sorted(v.models))})" if v.is_neural else "embedded default (DSP)",
        "path": str(v.path),
        "references": [str(r) for r in v.references],
        "ref_text": v.ref_text,
        "ref_lang": v.ref_lang,
        "models": {k: str(p) for k, p in v.models.items()},
        "analysis": v.analysis,
        "created": v.created,
    }
    data.update(store_fields(v))
    if not analysis:
        data["analysis"] = sorted(v.analysis)  # only which converters analysed it
    return data


LONG_LIST = 8
"""Lists longer than this are summarised in text output (a spectral envelope has 257 values)."""


def _unit(key: str) -> str:
    for suffix, unit in (("_hz", " Hz"), ("_db", " dB"), ("_ms", " ms"), ("_s", " s")):
        if key.endswith(suffix):
            return unit
    return ""


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _flat_numbers(value: Any) -> list[float] | None:
    """The numbers of a (nested) list of numbers, or None if it holds anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, list):
        out: list[float] = []
        for item in value:
            got = _flat_numbers(item)
            if got is None:
                return None
            out += got
        return out
    return None


def _shape(value: Any) -> str:
    dims = []
    while isinstance(value, list) and value:
        dims.append(str(len(value)))
        value = value[0]
    return " x ".join(dims)


def readable_analysis(stats: dict[str, Any]) -> list[str]:
    """One line per statistic: numbers with their unit, long or nested arrays as their shape and range."""
    lines = []
    for key, value in stats.items():
        unit = _unit(key)
        numbers = _flat_numbers(value) if isinstance(value, list) else None
        if numbers and (len(numbers) > LONG_LIST or any(isinstance(x, list) for x in value)):
            text = f"{_shape(value)} values, {_number(min(numbers))} to {_number(max(numbers))}{unit}"
        elif isinstance(value, list):
            text = ", ".join(_number(x) for x in value) + unit
        else:
            text = _number(value) + unit
        lines.append(f"  {key:<22} {text[:100]}")
    return lines


def run_add(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    models = {k: getattr(args, k) for k in ("gpt", "sovits", "hubert") if getattr(args, k)}
    # The plugins check the clips and model files (safe loaders, versions, sizes) before anything is written.
    progress(args, f"checking and analysing {len(args.ref)} reference clip(s)" + (" and model files" if models else ""))
    voice = engine.add_voice(
        args.name, args.ref, ref_text=args.ref_text, ref_lang=args.ref_lang, models=models, overwrite=args.force
    )
    emit(args, _describe(voice), f"added voice {voice.name!r} ({_describe(voice)['kind']}) at {voice.path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    voices = engine.voices.list()
    if not voices:
        emit(args, [], "no voices yet: add one with `anchorvoice voices add NAME --ref clip.wav`")
        return 0
    lines = [f"{v.name:<24} {_describe(v)['kind']:<24} {len(v.references)} ref(s)" for v in voices]
    emit(args, [_describe(v, analysis=False) for v in voices], "\n".join(lines))
    return 0


def _base_voice_choice(engine: Engine, voice: Voice) -> dict[str, Any] | None:
    """The base voice the ``tts`` preset's embedded default starts from for this voice (None: neural voice)."""
    if voice.is_neural:
        return None
    try:
        pipe = engine.pipeline("tts", voice)
        lang = pipe.config.pipeline.language
        stage, choice = pipe.base_voice_for(lang)
    except AnchorVoiceError as exc:
        return {"error": str(exc)}
    return {"preset": "tts", "language": lang, "plugin": stage.name, "candidate": choice.label,
            "reason": choice.reason, "distance": round(choice.distance, 3)}


def run_show(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    voice = engine.voices.get(args.name)
    d = _describe(voice)
    base = _base_voice_choice(engine, voice)
    if base is not None:
        d["base_voice"] = base
    text = "\n".join(f"{k:<11} {v}" for k, v in d.items() if k not in ("analysis", "base_voice"))
    if base is not None and "error" in base:
        text += f"\nbase voice  (tts preset) not available: {base['error']}"
    elif base is not None:
        how = f"nearest to this voice, distance {base['distance']}" if base["reason"] == "nearest" else base["reason"]
        text += f"\nbase voice  {base['candidate']} for {base['language']!r} in the tts preset ({how})"
    for conv, stats in d["analysis"].items():
        if not stats:
            continue  # a converter that needs no statistics (it reads the reference itself)
        text += f"\nanalysis by the {conv!r} converter:\n" + "\n".join(readable_analysis(stats))
    emit(args, d, text)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    engine.voices.remove(args.name)
    emit(args, {"removed": args.name}, f"removed voice {args.name!r}")
    return 0
