"""Which base voice the embedded default speaks a language with (the preset's ``[[base_voices]]``).

One :class:`BaseVoicePicker` per pipeline: candidates are built once, lazily; for each language the usable
ones (installed, building, speaking the language) are ranked: the only one, the first
(``pipeline.base_voice_choice = "first"`` or no target voice), or the nearest to the target voice's
references by :mod:`anchorvoice.engine.base_voice_choice` (pitch range and spectral profile, with the
candidates' profiles cached beside the voice library). ``voices show`` prints the :class:`Choice`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from anchorvoice.engine import base_voice_choice as choice
from anchorvoice.engine.base_voice_choice import Choice
from anchorvoice.engine.pipeline_config import PipelineConfig, StageSpec
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import BaseVoice
from anchorvoice.engine.voices import Voice
from anchorvoice.errors import AnchorVoiceError, UnsupportedLanguageError
from anchorvoice.frames import AudioFrame, TextFrame

log = logging.getLogger(__name__)

BuildFn = Callable[[str, StageSpec, str], Any]
"""``build(kind, spec, config_key)``: the pipeline's stage builder (errors name the preset key)."""


class BaseVoicePicker:
    """Chooses, per language, among a preset's base voices for one target voice."""

    def __init__(self, config: PipelineConfig, pm: PluginManager, voice: Voice | None, build: BuildFn,
                 fallback: BaseVoice | None) -> None:
        self.config = config
        self.pm = pm
        self.voice = voice
        self._build = build
        self.fallback = fallback
        """The preset's own ``[slots.base_voice]``, used when no candidate speaks the language."""
        self._candidates: dict[int, BaseVoice | None] = {}
        self._choices: dict[str, tuple[BaseVoice, Choice]] = {}

    def candidate(self, index: int) -> BaseVoice | None:
        """The preset's ``base_voices[index]`` stage, built once; None if it is not installed or fails to build."""
        if index not in self._candidates:
            cand = self.config.base_voices[index]
            stage: BaseVoice | None = None
            if cand.plugin in self.pm.names("base_voice"):
                try:
                    stage = self._build("base_voice", StageSpec(cand.plugin, cand.params), f"base_voices[{index}]")
                except AnchorVoiceError as exc:
                    log.warning("base voice %s is not usable: %s", cand.plugin, exc)
            self._candidates[index] = stage
        return self._candidates[index]

    def built(self) -> list[BaseVoice]:
        """The candidates built so far (for warm-up and close)."""
        return [s for s in self._candidates.values() if s is not None]

    def pick(self, language: str) -> tuple[BaseVoice, Choice]:
        """The base voice for ``language`` and why it was chosen (remembered per language)."""
        if language in self._choices:
            return self._choices[language]
        usable: list[tuple[int, BaseVoice]] = []
        for i in range(len(self.config.base_voices)):
            stage = self.candidate(i)
            if stage is None:
                continue
            try:
                stage.check_language(language)
            except UnsupportedLanguageError:
                continue
            usable.append((i, stage))
        if not usable:
            if self.fallback is None:
                names = ", ".join(c.plugin for c in self.config.base_voices) or "none"
                raise UnsupportedLanguageError(
                    f"no base voice of this preset speaks {language!r} (base voices: {names})")
            result = (self.fallback, Choice(-1, self.fallback.name, 0.0, "preset"))
        elif len(usable) == 1 or self.config.pipeline.base_voice_choice == "first" or self.voice is None:
            i, stage = usable[0]
            result = (stage, Choice(i, self.label(i), 0.0, "only" if len(usable) == 1 else "first"))
        else:
            result = self._nearest(usable, language)
        self._choices[language] = result
        return result

    def label(self, index: int) -> str:
        """``plugin(param=value, ...)`` of ``base_voices[index]``."""
        cand = self.config.base_voices[index]
        params = ", ".join(f"{k}={v}" for k, v in cand.params.items())
        return f"{cand.plugin}({params})" if params else cand.plugin

    def _nearest(self, usable: list[tuple[int, BaseVoice]], language: str) -> tuple[BaseVoice, Choice]:
        assert self.voice is not None
        refs = [self.voice.load_reference(choice.RATE, i).samples for i in range(len(self.voice.references))]
        target = choice.profile(AudioFrame(np.concatenate(refs), choice.RATE))
        cache = choice.ProfileCache(self.voice.path.parent / ".base_voice_profiles.json")  # the voice library
        text = choice.CALIBRATION.get(language.split("-")[0].lower(), choice.CALIBRATION["en"])
        best_tier = min(self.config.base_voices[i].tier for i, _ in usable)
        scored: list[tuple[float, int, BaseVoice]] = []
        for i, stage in usable:
            cand = self.config.base_voices[i]
            key = choice.candidate_key(cand.plugin, cand.params, language)
            prof = cache.get(key)
            if prof is None:
                try:
                    prof = choice.profile(stage.synthesize(TextFrame(text, language)))
                except AnchorVoiceError as exc:
                    log.warning("base voice %s could not read the calibration sentence: %s", self.label(i), exc)
                    continue
                cache.put(key, prof)
            cost = choice.distance(target, prof) + choice.TIER_COST * (cand.tier - best_tier)
            scored.append((cost, i, stage))
        if not scored:
            i, stage = usable[0]
            return stage, Choice(i, self.label(i), 0.0, "first")
        cost, i, stage = min(scored, key=lambda t: t[0])
        return stage, Choice(i, self.label(i), cost, "nearest")
