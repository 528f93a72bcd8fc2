"""Weight-free base voices: espeak-ng (131 languages) and flite (English), run as external programs.

The programs are called with ``subprocess`` and an argument list (never a shell); text goes in
through a file or stdin so that text starting with ``-`` is never read as an option, and the WAV
comes back through a temporary file read with soundfile.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.engine.stages import BaseVoice
from anchorvoice.errors import ConfigError, PluginError, StageError, TextInputError, UnsupportedLanguageError
from anchorvoice.frames import AudioFrame, TextFrame
from anchorvoice.plugins.text_common.scripts import drop_pictographs, script_runs

_TIMEOUT_S = 120.0
"""A whole paragraph takes espeak-ng well under a second; a hung program must not hang the engine."""

_ISO_ALIASES = {"zh": "cmn", "zh-cn": "cmn", "zh-hk": "yue", "nb": "nb", "no": "nb"}
"""ISO 639-1 codes the engine uses that espeak-ng spells differently (its voice list says ``cmn``)."""

_SILENCE = 1e-4
"""Peak below which synthesized audio counts as silence (espeak-ng output for e.g. "..." only)."""


def _find_program(executable: str, package: str) -> str:
    path = shutil.which(executable)
    if path is None:
        raise PluginError(
            f"the base voice needs the program `{executable}`, which is not installed: "
            f"install the Debian package `{package}` (sudo apt-get install {package})"
        )
    return path


def _run(args: list[str], *, stdin: str | None = None) -> str:
    """Run a program, return stdout; a non-zero exit becomes StageError with its stderr."""
    try:
        proc = subprocess.run(
            args, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise StageError(f"`{Path(args[0]).name}` did not finish within {_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise StageError(
            f"`{Path(args[0]).name}` failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
        )
    return proc.stdout


def _check_text(text: TextFrame) -> str:
    """The text to read: emoji and other pictographs dropped (a voice would read their names aloud)."""
    if not text.text.strip():
        raise TextInputError("nothing to say: the text is empty or only whitespace")
    cleaned = drop_pictographs(text.text)
    if not cleaned:
        raise TextInputError(f"nothing to say: {text.text.strip()[:40]!r} has only emoji or symbols")
    return cleaned


def _read_wav(path: Path, program: str) -> tuple[np.ndarray, int]:
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise StageError(f"`{program}` wrote no readable WAV: {exc}") from None
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(sr)


def _audio_or_error(samples: np.ndarray, sr: int, text: TextFrame, program: str) -> AudioFrame:
    if samples.size == 0 or float(np.max(np.abs(samples))) < _SILENCE:
        raise TextInputError(f"`{program}` found nothing speakable in {text.text.strip()[:60]!r}")
    return AudioFrame(samples, sr, timestamp=text.timestamp)


@dataclass
class EspeakConfig:
    """Parameters of the espeak-ng base voice."""

    voice: str | None = None
    """espeak-ng voice (e.g. ``en-us``, ``fr-fr``); None: the frame's language."""
    variant: str | None = None
    """Variant appended as ``+variant`` (``f3``, ``m3``, ``klatt``; ``espeak-ng --voices=variant``)."""
    rate: int = 175
    """Speaking rate in words per minute (espeak-ng's default 175; 80-450)."""
    pitch: int = 50
    """Pitch adjustment 0-99 (espeak-ng's default 50)."""
    executable: str = "espeak-ng"
    """Program to run (name on PATH or a path)."""


class EspeakVoice(BaseVoice):
    """espeak-ng formant synthesis: any installed espeak-ng language, 22.05 kHz mono."""

    name = "espeak"
    Config = EspeakConfig

    def __init__(self, config: EspeakConfig | None = None) -> None:
        super().__init__(config)
        self.config: EspeakConfig
        self._program = _find_program(self.config.executable, "espeak-ng")
        self._languages: list[str] | None = None

    def available_languages(self) -> list[str]:
        """Language codes of ``espeak-ng --voices`` plus the short names it also accepts (``en``)."""
        if self._languages is None:
            out = _run([self._program, "--voices"])
            langs: set[str] = set()
            for line in out.splitlines()[1:]:
                cols = line.split()
                if len(cols) >= 5:
                    langs.add(cols[1].lower())
                    langs.add(cols[4].rsplit("/", 1)[-1].lower())  # voice file, e.g. gmw/en -> en
            self._languages = sorted(langs)
        return list(self._languages)

    def _espeak_language(self, language: str) -> str:
        """``language`` as espeak-ng spells it; UnsupportedLanguageError, listing what it speaks, if absent."""
        lang = language.strip().lower().replace("_", "-")
        lang = _ISO_ALIASES.get(lang, lang)
        available = self.available_languages()
        if lang not in available:
            raise UnsupportedLanguageError(
                f"the espeak-ng base voice cannot speak language {language!r}; it speaks: {', '.join(available)} "
                "(or pass --lang auto to read each script in its language)"
            )
        return lang

    def check_language(self, language: str) -> None:
        """``auto`` (each script in its own language) or a language espeak-ng has (``zh`` means ``cmn``)."""
        if self.config.voice is None and language.strip().lower() != "auto":
            self._espeak_language(language)

    def _voice_for(self, language: str) -> str:
        voice = self.config.voice or self._espeak_language(language)
        return f"{voice}+{self.config.variant}" if self.config.variant else voice

    def synthesize(self, text: TextFrame) -> AudioFrame:
        """Speak ``text`` -> 22.05 kHz audio, each script in its language (``voice`` set: all in that voice).

        The frame's language reads Latin text and its own script; other scripts are read in theirs
        (Chinese characters in Mandarin, kana in Japanese, ...), see :mod:`anchorvoice.plugins.text_common.scripts`.
        """
        content = _check_text(text)
        if not 80 <= self.config.rate <= 450 or not 0 <= self.config.pitch <= 99:
            raise ConfigError("rate must be 80-450 wpm and pitch 0-99 (`espeak-ng --help`)", source="espeak")
        runs = [(text.language, content)] if self.config.voice else script_runs(content, text.language)
        voices = [(self._voice_for(lang), chunk) for lang, chunk in runs]  # refuse before speaking anything
        parts, sr = [], 22050
        for voice, chunk in voices:
            samples, sr = self._speak(voice, chunk)
            parts.append(samples)
        return _audio_or_error(np.concatenate(parts), sr, text, "espeak-ng")

    def _speak(self, voice: str, content: str) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory(prefix="anchorvoice-espeak-") as tmp:
            wav = Path(tmp) / "out.wav"
            args = [self._program, "-v", voice, "-s", str(self.config.rate), "-p", str(self.config.pitch)]
            _run([*args, "-w", str(wav), "--stdin"], stdin=content)
            return _read_wav(wav, "espeak-ng")


@dataclass
class FliteConfig:
    """Parameters of the flite base voice."""

    voice: str = "slt"
    """Built-in flite voice: ``kal``, ``kal16``, ``slt``, ``rms``, ``awb`` (``flite -lv`` lists them)."""
    executable: str = "flite"
    """Program to run (name on PATH or a path)."""


class FliteVoice(BaseVoice):
    """flite (CMU) English voices; 16 kHz mono (8 kHz for ``kal``)."""

    name = "flite"
    Config = FliteConfig

    def __init__(self, config: FliteConfig | None = None) -> None:
        super().__init__(config)
        self.config: FliteConfig
        self._program = _find_program(self.config.executable, "flite")
        self._voices: list[str] | None = None

    def installed_voices(self) -> list[str]:
        """Voices this flite build has (``flite -lv``)."""
        if self._voices is None:
            out = _run([self._program, "-lv"])
            self._voices = out.split(":", 1)[-1].split()
        return list(self._voices)

    def available_languages(self) -> list[str]:
        """flite speaks English only."""
        return ["en"]

    def check_language(self, language: str) -> None:
        if language.strip().lower().split("-")[0] not in ("en", "auto"):
            raise UnsupportedLanguageError(f"flite cannot speak language {language!r}; it speaks: en")

    def synthesize(self, text: TextFrame) -> AudioFrame:
        """Speak English ``text`` with the configured flite voice."""
        content = _check_text(text)
        self.check_language(text.language)
        others = sorted({lang for lang, _ in script_runs(content, "en")} - {"en"})
        if others:
            raise UnsupportedLanguageError(
                f"flite reads English only, and this text has {', '.join(others)} script; use the espeak base "
                "voice (`plugin = \"espeak\"` in the preset) for other languages"
            )
        voices = self.installed_voices()
        # flite exits 0 even when it cannot load a voice, so the name is checked here.
        if self.config.voice not in voices:
            raise ConfigError(
                f"flite has no voice {self.config.voice!r}; choose one of {', '.join(voices)}",
                source="flite",
                key="voice",
            )
        with tempfile.TemporaryDirectory(prefix="anchorvoice-flite-") as tmp:
            txt, wav = Path(tmp) / "in.txt", Path(tmp) / "out.wav"
            txt.write_text(content, encoding="utf-8")
            _run([self._program, "-voice", self.config.voice, "-f", str(txt), "-o", str(wav)])
            samples, sr = _read_wav(wav, "flite")
        return _audio_or_error(samples, sr, text, "flite")


@hookimpl
def register_base_voices(register: Register) -> None:
    """espeak-ng and flite base voices."""
    register(EspeakVoice)
    register(FliteVoice)
