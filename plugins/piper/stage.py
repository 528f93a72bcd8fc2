"""The ``piper`` base voice: Piper voices, one per language, spoken sentence by sentence."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anchorvoice.audio_io import resample
from anchorvoice.engine.stages import BaseVoice
from anchorvoice.errors import ConfigError, PluginError, StageError, TextInputError, UnsupportedLanguageError
from anchorvoice.frames import AudioFrame, TextFrame
from anchorvoice.plugins.piper import catalog
from anchorvoice.plugins.piper.model import PiperModel
from anchorvoice.plugins.piper.voice_files import PiperVoiceFiles, read_voice_files
from anchorvoice.plugins.text_common.scripts import drop_pictographs, script_runs
from anchorvoice.plugins.text_common.segmentation import split_at_marks

log = logging.getLogger(__name__)

SENTENCE_MARKS = frozenset(".!?。！？…\n")
"""Marks that end a sentence (each sentence is synthesized and streamed on its own)."""

_TIMEOUT_S = 60.0


@dataclass
class PiperConfig:
    """Parameters of the Piper base voice."""

    voices: dict[str, str] = field(default_factory=dict)
    """Language -> voice: a path to NAME.onnx, a voice name (``en_US-joe-medium``) or its speaker (``joe``).
    Languages not listed use the first installed voice that speaks them (``anchorvoice plugins`` lists them)."""
    speaker: str | None = None
    """Speaker of a multi-speaker voice (name or number); None: its first."""
    length_scale: float | None = None
    """Speaking time scale (> 1 slower); None: the voice's own."""
    noise_scale: float | None = None
    """Variation of the voice (0-1); None: the voice's own."""
    noise_w: float | None = None
    """Variation of phoneme durations (0-1); None: the voice's own."""
    threads: int = 2
    """CPU threads onnxruntime may use per voice."""
    voice_dirs: list[str] = field(default_factory=list)
    """Extra folders searched for NAME.onnx voices (besides the data folder's ``piper-voices``)."""
    executable: str = "espeak-ng"
    """The espeak-ng program that makes the phonemes (name on PATH or a path)."""


def _language(code: str) -> str:
    return code.strip().lower().replace("_", "-").split("-")[0]


class PiperVoice(BaseVoice):
    """Neural (VITS) base voice from Piper voice files, run with onnxruntime; any of Piper's languages."""

    name = "piper"
    Config = PiperConfig

    def __init__(self, config: PiperConfig | None = None) -> None:
        super().__init__(config)
        self.config: PiperConfig
        c = self.config
        for key, value in (("length_scale", c.length_scale), ("noise_scale", c.noise_scale), ("noise_w", c.noise_w)):
            if value is not None and not 0.0 <= value <= 5.0:
                raise ConfigError(f"{key} must be between 0 and 5, got {value}", source="piper", key=key)
        if not 1 <= c.threads <= 64:
            raise ConfigError(f"threads must be 1-64, got {c.threads}", source="piper", key="threads")
        program = shutil.which(c.executable)
        if program is None:
            raise PluginError(f"Piper voices take their phonemes from `{c.executable}`, which is not installed: "
                              "sudo apt-get install espeak-ng")
        self._program = program
        self._dirs = tuple(Path(d).expanduser() for d in c.voice_dirs)
        self._files: dict[str, PiperVoiceFiles] = {}
        for lang, spec in c.voices.items():  # named voices are checked now: a wrong file fails before speaking
            files = read_voice_files(catalog.resolve(spec, self._dirs))
            if files.language != _language(lang):
                raise ConfigError(
                    f"voices.{lang} is the Piper voice {files.name}, which speaks {files.language!r}, not {lang!r}; "
                    f"list it under voices.{files.language}",
                    source="piper", key=f"voices.{lang}",
                )
            self._files[_language(lang)] = files
        for model in catalog.installed_voices(self._dirs):
            try:
                files = read_voice_files(model)
            except Exception as exc:  # a broken voice in a folder must not hide the good ones
                log.warning("skipping Piper voice %s: %s", model, exc)
                continue
            self._files.setdefault(files.language, files)
        self._models: dict[str, PiperModel] = {}

    # -- languages ---------------------------------------------------------------------------
    def voice_for(self, language: str) -> PiperVoiceFiles:
        """The voice that reads ``language``; UnsupportedLanguageError naming the installed ones if none."""
        lang = _language(language)
        files = self._files.get(lang)
        if files is None:
            have = ", ".join(f"{k} ({v.name})" for k, v in sorted(self._files.items())) or "none installed"
            raise UnsupportedLanguageError(
                f"no Piper voice speaks {language!r} (Piper voices: {have}); add one with "
                f"`params = {{ voices = {{ {lang} = \"/path/NAME.onnx\" }} }}` in the preset's [slots.base_voice], "
                "or use the espeak base voice for this language"
            )
        return files

    def available_languages(self) -> list[str]:
        return sorted(self._files)

    def check_language(self, language: str) -> None:
        if _language(language) == "auto":
            if not self._files:
                self.voice_for("en")
            return
        self.voice_for(language)

    # -- speaking ----------------------------------------------------------------------------
    def _phonemize(self, espeak_voice: str) -> object:
        def run(text: str) -> str:
            try:
                proc = subprocess.run([self._program, "-q", "--ipa", "-v", espeak_voice, "--stdin"], input=text,
                                      capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                raise StageError(f"espeak-ng did not finish within {_TIMEOUT_S:.0f} s") from None
            if proc.returncode != 0:
                raise StageError(f"espeak-ng failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
            return proc.stdout

        return run

    def model(self, language: str) -> PiperModel:
        """The loaded voice for ``language`` (loaded once per stage)."""
        files = self.voice_for(language)
        if files.language not in self._models:
            self._models[files.language] = PiperModel(files.model, self._phonemize(files.espeak_voice),  # type: ignore[arg-type]
                                                      threads=self.config.threads)
        return self._models[files.language]

    def split_sentences(self, text: str) -> list[str]:
        """Sentences to synthesize and stream one at a time."""
        return [s.strip() for s in split_at_marks(text, SENTENCE_MARKS) if s.strip()]

    def _speaker(self, files: PiperVoiceFiles) -> int | None:
        s = self.config.speaker
        if s is None or files.num_speakers <= 1:
            return None
        if s in files.speakers:
            return files.speakers[s]
        if s.isdigit() and int(s) < files.num_speakers:
            return int(s)
        raise ConfigError(f"Piper voice {files.name} has no speaker {s!r}; speakers: {', '.join(files.speakers)}",
                          source="piper", key="speaker")

    def synthesize(self, text: TextFrame) -> AudioFrame:
        """Speak ``text``; each script in its language's Piper voice (refused before speaking if one is missing)."""
        if not text.text.strip():
            raise TextInputError("nothing to say: the text is empty or only whitespace")
        content = drop_pictographs(text.text)
        if not content:
            raise TextInputError(f"nothing to say: {text.text.strip()[:40]!r} has only emoji or symbols")
        runs = script_runs(content, text.language)
        models = [(self.model(lang), chunk) for lang, chunk in runs]
        parts: list[np.ndarray] = []
        rate = models[0][0].files.sample_rate if models else 22050
        for model, chunk in models:
            f = model.files
            c = self.config
            scales = (c.noise_scale if c.noise_scale is not None else f.noise_scale,
                      c.length_scale if c.length_scale is not None else f.length_scale,
                      c.noise_w if c.noise_w is not None else f.noise_w)
            samples = model.speak(chunk, speaker=self._speaker(f), scales=scales)
            parts.append(resample(samples, f.sample_rate, rate) if f.sample_rate != rate and samples.size else samples)
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if audio.size == 0 or float(np.max(np.abs(audio))) < 1e-4:
            raise TextInputError(f"the Piper voice found nothing speakable in {text.text.strip()[:60]!r}")
        return AudioFrame(audio.astype(np.float32), rate, timestamp=text.timestamp)
