"""A Piper voice on disk: ``NAME.onnx`` and its ``NAME.onnx.json``, checked before any text is spoken.

The JSON gives the sample rate, the espeak-ng voice its phonemes come from, the ``phoneme_id_map``,
the noise and length scales and the speaker count. A model whose JSON is missing, unreadable, or does
not fit the model (inputs, speaker count, ids beyond its symbol table) is refused with both file names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchorvoice.errors import CheckpointError
from anchorvoice.plugins.piper.phonemes import BOS, EOS, PAD


@dataclass(frozen=True)
class PiperVoiceFiles:
    """What a Piper voice's ``.onnx.json`` says, with the model path."""

    model: Path
    """The ``.onnx`` file."""
    config: Path
    """The ``.onnx.json`` next to it."""
    name: str
    """Voice name, e.g. ``en_US-joe-medium``."""
    language: str
    """ISO 639-1 code of the language it speaks (``en``)."""
    espeak_voice: str
    """espeak-ng voice that makes its phonemes (``en-us``)."""
    sample_rate: int
    """Output rate in Hz."""
    id_map: dict[str, list[int]]
    """Phoneme (one code point) -> ids."""
    num_symbols: int
    """Size of the model's symbol table (every id must be below it)."""
    num_speakers: int
    """Speakers of a multi-speaker voice (1: single speaker)."""
    speakers: dict[str, int]
    """Speaker name -> id of a multi-speaker voice."""
    noise_scale: float
    """Its trained noise scale (variation of the voice)."""
    length_scale: float
    """Its trained length scale (> 1 slower)."""
    noise_w: float
    """Its trained phoneme-duration noise."""


def _refuse(model: Path, why: str) -> CheckpointError:
    return CheckpointError(f"Piper voice {model}: {why}")


def _number(data: dict[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"inference.{key} is {value!r}, not a number")
    return float(value)


def read_voice_files(model: str | Path) -> PiperVoiceFiles:
    """Check ``model`` (.onnx) and its ``.onnx.json``; CheckpointError saying which file is wrong and why."""
    model = Path(model).expanduser()
    if model.suffix == ".json":
        model = model.with_suffix("")  # given the .onnx.json: the model is next to it
    config = model.with_name(model.name + ".json")
    if not model.is_file():
        raise _refuse(model, "the model file does not exist (give the path of NAME.onnx)")
    if not config.is_file():
        raise _refuse(model, f"its config {config.name} is missing: download it with the model (Piper voices come "
                             "as NAME.onnx + NAME.onnx.json) and put it next to the model")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        id_map = {str(k): [int(i) for i in v] for k, v in dict(data["phoneme_id_map"]).items()}
        inference = dict(data.get("inference", {}))
        lang = dict(data.get("language", {}))
        code = str(lang.get("family") or lang.get("code") or dict(data["espeak"])["voice"])
        files = PiperVoiceFiles(
            model=model,
            config=config,
            name=model.name.removesuffix(".onnx"),
            language=code.replace("_", "-").split("-")[0].lower(),
            espeak_voice=str(dict(data["espeak"])["voice"]),
            sample_rate=int(dict(data["audio"])["sample_rate"]),
            id_map=id_map,
            num_symbols=int(data.get("num_symbols", 0)) or (max(i for v in id_map.values() for i in v) + 1),
            num_speakers=int(data.get("num_speakers", 1)),
            speakers={str(k): int(v) for k, v in dict(data.get("speaker_id_map", {})).items()},
            noise_scale=_number(inference, "noise_scale", 0.667),
            length_scale=_number(inference, "length_scale", 1.0),
            noise_w=_number(inference, "noise_w", 0.8),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(model, f"its config {config.name} is not readable JSON ({exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _refuse(model, f"its config {config.name} is not a Piper voice config ({type(exc).__name__}: {exc}); "
                             "it needs audio.sample_rate, espeak.voice and phoneme_id_map") from None
    missing = [s for s in (PAD, BOS, EOS) if s not in id_map]
    if missing:
        raise _refuse(model, f"its config {config.name} has no id for the symbols {missing} every Piper voice has")
    too_big = sorted({ch for ch, ids in id_map.items() if any(i < 0 or i >= files.num_symbols for i in ids)})
    if too_big:
        raise _refuse(model, f"its config {config.name} maps {too_big[:5]} to ids outside num_symbols "
                             f"{files.num_symbols}: the config belongs to another model")
    if not 8000 <= files.sample_rate <= 96000:
        raise _refuse(model, f"its config {config.name} gives sample rate {files.sample_rate} Hz")
    return files


def check_model_inputs(files: PiperVoiceFiles, inputs: list[str]) -> None:
    """The ONNX graph's inputs fit the config: ``input``, ``input_lengths``, ``scales`` (+ ``sid`` if multi-speaker)."""
    need = {"input", "input_lengths", "scales"}
    if not need <= set(inputs):
        raise _refuse(files.model, f"the model has inputs {sorted(inputs)}, not a Piper VITS model's {sorted(need)}")
    multi = "sid" in inputs
    if multi != (files.num_speakers > 1):
        raise _refuse(files.model, f"{files.config.name} says {files.num_speakers} speaker(s) but the model "
                                   f"{'takes' if multi else 'has no'} a speaker id: the config is another model's")
