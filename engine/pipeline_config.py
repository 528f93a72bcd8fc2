"""Pipeline presets: which stage plugin fills each slot, validated from TOML into dataclasses.

A preset (``configs/tts.toml``, ``configs/vc.toml``, ``configs/demo.toml``) looks like::

    [pipeline]
    name = "tts"
    mode = "tts"              # "tts" (text in) or "vc" (speech in)
    sample_rate = 48000       # output rate

    [slots.base_voice]        # embedded default TTS: base voice -> converter -> effects
    plugin = "espeak"
    params = { speed = 160 }

    [slots.converter]
    plugin = "dsp"

    [[effects]]
    plugin = "limiter"

Slots are filled per voice: a voice with model files uses the neural slots (``prosody``,
``decoder``, ``vocoder``, ``feature_extractor``, ``tokenizer`` for TTS; ``neural_converter`` for VC),
any other voice the embedded default ones (``base_voice`` + ``converter``; ``converter`` for VC).
Every stage's ``params`` are validated into its ``Config`` dataclass when the preset is loaded,
so a typo fails before any audio is processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from anchorvoice.engine.config import from_dict, load_toml
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import ConfigError, PluginNotFoundError

SLOT_KINDS: dict[str, str] = {
    "base_voice": "base_voice",
    "converter": "voice_converter",
    "neural_converter": "voice_converter",
    "feature_extractor": "feature_extractor",
    "tokenizer": "tokenizer",
    "prosody": "prosody",
    "decoder": "decoder",
    "vocoder": "vocoder",
}
"""Slot name -> stage kind that may fill it."""


@dataclass
class StageSpec:
    """One stage of a preset."""

    plugin: str
    """Registered stage name (see `anchorvoice plugins`)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Values for the stage's Config dataclass."""


@dataclass
class BaseVoiceCandidate:
    """One ``[[base_voices]]`` entry: a base voice the embedded default TTS may start from."""

    plugin: str
    """Registered base voice name; a name no installed plugin registers is skipped (e.g. ``piper``
    without onnxruntime), so a preset can list optional voices."""
    params: dict[str, Any] = field(default_factory=dict)
    """Values for the stage's Config dataclass."""
    tier: int = 0
    """Preference: each tier above the best costs as much as 6 semitones of pitch distance (0: neural voices,
    1: formant/diphone voices)."""


@dataclass
class PipelineSection:
    """The ``[pipeline]`` table."""

    name: str
    """Preset name shown in logs and status."""
    mode: Literal["tts", "vc"]
    """'tts': text in; 'vc': speech in."""
    sample_rate: int = 48000
    """Output sample rate in Hz (effects run at this rate)."""
    language: str = "en"
    """Default text language for TTS (ISO 639-1)."""
    base_voice_choice: Literal["nearest", "first"] = "nearest"
    """How the embedded default picks among ``[[base_voices]]``: ``nearest`` (closest to the voice) or
    ``first`` (the first listed that speaks the language)."""


@dataclass
class PipelineConfig:
    """A whole preset file."""

    pipeline: PipelineSection
    """General settings."""
    slots: dict[str, StageSpec] = field(default_factory=dict)
    """Stage per slot (see SLOT_KINDS)."""
    effects: list[StageSpec] = field(default_factory=list)
    """Effect chain applied to the output, in order."""
    base_voices: list[BaseVoiceCandidate] = field(default_factory=list)
    """Base voices the embedded default TTS chooses from, per language, the one nearest the target voice
    (pitch and a spectral speaker embedding); empty: always ``[slots.base_voice]``."""
    frontends: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``[frontends.<language>]``: values for the Config of the text frontend that speaks that language (e.g.
    ``[frontends.en] pos_tagger = "rules"``)."""
    live: dict[str, Any] = field(default_factory=dict)
    """The ``[live]`` table: fields of ``anchorvoice.streaming.live_config.LiveConfig`` (``engine.live`` reads it)."""
    source: str = "<memory>"
    """File the preset came from (for messages)."""


def _validate_stage(pm: PluginManager, kind: str, spec: StageSpec, source: str, key: str) -> Any:
    try:
        cls = pm.get(kind, spec.plugin)
    except PluginNotFoundError:
        allowed = ", ".join(pm.names(kind)) or "(none installed)"
        raise ConfigError(
            f"unknown {kind} plugin {spec.plugin!r}; allowed values: {allowed}", source=source, key=f"{key}.plugin"
        ) from None
    return from_dict(cls.Config, spec.params, source=source, prefix=f"{key}.params")


def parse_pipeline(data: dict[str, Any], pm: PluginManager, source: str = "<memory>") -> PipelineConfig:
    """Validate a preset mapping: structure, slot names, plugin names and every stage's params."""
    data = dict(data)
    data.pop("source", None)
    cfg = from_dict(PipelineConfig, data, source=source)
    cfg.source = source
    for slot, spec in cfg.slots.items():
        if slot not in SLOT_KINDS:
            allowed = ", ".join(sorted(SLOT_KINDS))
            raise ConfigError(f"unknown slot {slot!r}; allowed slots: {allowed}", source=source, key=f"slots.{slot}")
        _validate_stage(pm, SLOT_KINDS[slot], spec, source, f"slots.{slot}")
    for i, spec in enumerate(cfg.effects):
        _validate_stage(pm, "effect", spec, source, f"effects[{i}]")
    for i, cand in enumerate(cfg.base_voices):
        if cand.plugin in pm.names("base_voice"):
            _validate_stage(pm, "base_voice", StageSpec(cand.plugin, cand.params), source, f"base_voices[{i}]")
    for language, params in cfg.frontends.items():
        cls = frontend_class(pm, language)
        if cls is None:
            have = ", ".join(frontend_languages(pm)) or "none"
            raise ConfigError(f"no text frontend speaks {language!r}; languages: {have}",
                              source=source, key=f"frontends.{language}")
        frontend_config(cls, language, params, source)
    return cfg


def frontend_class(pm: PluginManager, language: str) -> Any | None:
    """The first registered text frontend that speaks ``language`` (None if none does)."""
    for cls in pm.stages("text_frontend"):
        if language in getattr(cls, "languages", ()):
            return cls
    return None


def frontend_languages(pm: PluginManager) -> list[str]:
    """Every language a registered text frontend speaks, sorted."""
    return sorted({lg for c in pm.stages("text_frontend") for lg in getattr(c, "languages", ())})


def frontend_config(cls: Any, language: str, params: dict[str, Any], source: str = "<memory>") -> Any:
    """The validated Config of the text frontend ``cls`` from ``[frontends.<language>]`` values."""
    return from_dict(cls.Config, params, source=source, prefix=f"frontends.{language}")


def load_pipeline(path: str | Path, pm: PluginManager) -> PipelineConfig:
    """Read and validate a preset file."""
    p = Path(path)
    return parse_pipeline(load_toml(p), pm, source=str(p))


def build_stage(pm: PluginManager, kind: str, spec: StageSpec, source: str = "<memory>", key: str = "") -> Any:
    """Instantiate the stage for ``spec`` with its validated Config."""
    config = _validate_stage(pm, kind, spec, source, key or spec.plugin)
    return pm.get(kind, spec.plugin)(config)
