"""The Engine: one object that owns the plugins, the voice library and the loaded pipelines.

There are no module globals holding models: everything lives on an ``Engine`` instance, so a
process can run several (tests do) and a server can switch voices without restarting.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from anchorvoice.engine.pipeline import Pipeline
from anchorvoice.engine.pipeline_config import PipelineConfig, load_pipeline
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import VoiceConverter
from anchorvoice.engine.store.resident import Footprint, ResidentCache, StoreConfig, check_budget, model_bytes
from anchorvoice.engine.voices import Voice, VoiceLibrary
from anchorvoice.errors import ConfigError
from anchorvoice.frames import AudioFrame

log = logging.getLogger(__name__)


def default_configs_dir() -> Path:
    """The presets shipped as package data (``anchorvoice/configs/*.toml``, the repository's ``configs/``)."""
    return Path(str(resources.files("anchorvoice").joinpath("configs")))


def is_preset_path(preset: str | Path) -> bool:
    """A path names a file (it has a folder separator or ends in ``.toml``); a bare word names a preset.

    A folder called ``demo`` or ``tts`` in the current directory never shadows the preset of that name.
    """
    text = str(preset)
    return isinstance(preset, Path) or text.endswith(".toml") or "/" in text or os.sep in text


@dataclass
class EngineConfig:
    """How an Engine starts."""

    home: Path
    """User data directory (voices, tokens); the CLI takes it from --home / ANCHORVOICE_HOME."""
    configs_dir: Path = field(default_factory=default_configs_dir)
    """Where preset TOML files are looked up by name."""
    third_party_plugins: bool = True
    """Load plugins of other distributions from the `anchorvoice` entry-point group."""
    plugin_allowlist: list[str] | None = None
    """Names of third-party plugins to load (None: all); from ANCHORVOICE_PLUGINS."""
    threads: int | None = None
    """torch/numba intra-op threads (None: library default)."""
    store: StoreConfig = field(default_factory=StoreConfig)
    """``[store]``: how much of the voices' models may stay loaded at once."""


def reference_analyzer(converter: type[VoiceConverter]) -> Callable[[AudioFrame], dict[str, Any]]:
    """``converter.analyze_reference``, on at most its ``max_reference_s`` seconds (a warning says what was cut)."""
    cap = converter.max_reference_s

    def analyze(reference: AudioFrame) -> dict[str, Any]:
        if cap is not None and reference.duration > cap:
            log.warning("the references last %.1f s; the %r converter analyses their first %.0f s",
                        reference.duration, converter.name, cap)
            reference = reference.with_samples(reference.samples[: int(cap * reference.sample_rate)])
        return converter.analyze_reference(reference)

    return analyze


class Engine:
    """Owns plugins, voices and pipelines."""

    def __init__(self, config: EngineConfig, plugins: PluginManager | None = None) -> None:
        self.config = config
        if config.threads:
            import torch

            torch.set_num_threads(config.threads)
        if plugins is None:
            plugins = PluginManager()
            plugins.load_entry_points(allow=config.plugin_allowlist, third_party=config.third_party_plugins)
        self.plugins = plugins
        self.voices = VoiceLibrary(config.home)
        self._pipelines: ResidentCache[Pipeline] = ResidentCache(config.store, close=Pipeline.close)
        limited = config.store.max_resident_mb > 0 or config.store.max_gpu_mb > 0
        check_budget(config.store, self.voice_needs() if limited else {})

    # -- presets -----------------------------------------------------------------------------
    def preset_path(self, preset: str | Path) -> Path:
        if is_preset_path(preset):
            p = Path(preset)
            if not p.is_file():
                raise ConfigError(f"preset file {str(p)!r} does not exist (or is not a file); give a .toml file "
                                  f"or a preset name: {', '.join(self.preset_names())}")
            return p
        candidate = self.config.configs_dir / f"{preset}.toml"
        if not candidate.exists():
            raise ConfigError(
                f"no preset named {str(preset)!r}; presets: {', '.join(self.preset_names())} (or pass a .toml path)"
            )
        return candidate

    def preset_names(self) -> list[str]:
        """Names of the presets in ``configs_dir``."""
        return sorted(x.stem for x in self.config.configs_dir.glob("*.toml"))

    def load_preset(self, preset: str | Path) -> PipelineConfig:
        return load_pipeline(self.preset_path(preset), self.plugins)

    def _pipeline_key(
        self, preset: str | Path, voice: str | Voice | None
    ) -> tuple[tuple[str, str], Path, Voice | None]:
        path = self.preset_path(preset)
        v = self.voices.get(voice) if isinstance(voice, str) else voice
        return (f"{path.resolve()}@{path.stat().st_mtime_ns}", v.key if v else ""), path, v

    def pipeline(self, preset: str | Path, voice: str | Voice | None) -> Pipeline:
        """The pipeline of ``preset`` bound to ``voice`` (``name`` or ``name@version``): cached, least
        recently used ones unloaded beyond ``[store] max_resident_mb``; rebuilt if the preset file or the
        voice's version changes."""
        key, path, v = self._pipeline_key(preset, voice)
        return self._pipelines.get_or_build(key, lambda: Pipeline(load_pipeline(path, self.plugins), self.plugins, v))

    def loaded(self, preset: str | Path, voice: str | Voice | None) -> bool:
        """Whether :meth:`pipeline` would find this pipeline already built (a warm switch)."""
        return self._pipeline_key(preset, voice)[0] in self._pipelines.keys()

    @contextlib.contextmanager
    def lease(self, preset: str | Path, voice: str | Voice | None) -> Iterator[Pipeline]:
        """:meth:`pipeline`, kept loaded while the block runs (another voice's request may evict it from the
        cache meanwhile, but it is closed only when this block ends)."""
        key, path, v = self._pipeline_key(preset, voice)
        with self._pipelines.lease(key, lambda: Pipeline(load_pipeline(path, self.plugins), self.plugins, v)) as p:
            yield p

    def resident(self) -> Footprint:
        """Bytes of model weights the cached pipelines hold now."""
        return self._pipelines.resident()

    def voice_needs(self) -> dict[str, int]:
        """Voice name -> bytes its models take once loaded (from blob headers; file sizes for older voices)."""
        needs: dict[str, int] = {}
        for name in self.voices.names():
            try:
                v = self.voices.get(name)
                needs[name] = sum(model_bytes(p, kind in v.blobs) for kind, p in v.models.items())
            except Exception as exc:  # a broken voice must not stop the engine; `voices verify` names it
                log.warning("voice %r: cannot size its models (%s)", name, exc)
        return needs

    # -- jobs --------------------------------------------------------------------------------
    def speak(self, text: str, voice: str, language: str | None = None, preset: str | Path = "tts") -> AudioFrame:
        """Text -> speech in ``voice``."""
        return self.pipeline(preset, voice).speak(text, language)

    def convert(self, audio: AudioFrame, voice: str, preset: str | Path = "vc") -> AudioFrame:
        """Speech -> the same speech in ``voice``."""
        return self.pipeline(preset, voice).convert(audio)

    def add_voice(
        self,
        name: str,
        references: list[str | Path],
        *,
        ref_text: str = "",
        ref_lang: str = "en",
        models: dict[str, str | Path] | None = None,
        overwrite: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> Voice:
        """Add a voice: every plugin may refuse it (``check_voice``), every voice converter analyses the
        reference once."""
        converters = [c for c in self.plugins.stages("voice_converter") if issubclass(c, VoiceConverter)]
        analyzers = {c.name: (c.sample_rate, reference_analyzer(c)) for c in converters}
        return self.voices.add(
            name,
            references,
            ref_text=ref_text,
            ref_lang=ref_lang,
            models=models,
            analyzers=analyzers,
            check=self.plugins.check_voice,
            importer=self.plugins.import_model,
            overwrite=overwrite,
            extra=extra,
        )

    def store_model_delta(self, kind: str, base: str | Path, delta: Mapping[str, Any], fmt: str = "lora") -> Path:
        """A voice's change to a base model file (e.g. LoRA adapters) as a delta blob on the stored base; pass the
        returned path as ``add_voice(models={kind: path})`` (see :mod:`anchorvoice.engine.store.blobs`)."""
        return self.voices.store_delta(kind, Path(base), delta, self.plugins.import_model, fmt)

    def status(self) -> dict[str, Any]:
        """Plugins, load failures and voices, as plain data."""
        return {
            "plugins": sorted(self.plugins.plugins),
            "failures": [
                {"plugin": f.name, "origin": f.origin, "hook": f.hook, "error": f.error} for f in self.plugins.failures
            ],
            "voices": self.voices.names(),
        }

    def close(self) -> None:
        self._pipelines.clear()
