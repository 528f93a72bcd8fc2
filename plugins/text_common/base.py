"""Shared base of the built-in GPT-SoVITS v2 text frontends.

A subclass implements :meth:`GsvFrontend.g2p`, which turns one text into ``(normalised text,
phoneme symbols, word2ph)``. The base validates input, applies the official short-text rule and
builds the ``PhonemeFrame`` with v2 symbol ids. Third-party language plugins can subclass it (and
get the same rules) or implement ``anchorvoice.engine.stages.TextFrontend`` directly.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

from anchorvoice.engine.stages import TextFrontend
from anchorvoice.errors import StageError, TextInputError, UnsupportedLanguageError
from anchorvoice.frames import FloatArray, PhonemeFrame, TextFrame
from anchorvoice.plugins.text_common.punctuation import require_speakable
from anchorvoice.plugins.text_common.segmentation import SplitMethod, split_text
from anchorvoice.plugins.text_common.symbols import SymbolTable, load_symbols_v2


@dataclass
class FrontendConfig:
    """Parameters shared by the built-in text frontends."""

    split_method: SplitMethod = "punctuation"
    """How split_sentences cuts text: punctuation (official cut5), every_n (cut1), length (cut2), none."""
    sentences_per_chunk: int = 4
    """Sentences joined per chunk by the every_n method (official cut1 uses 4)."""
    min_chars: int = 50
    """The length method joins sentences until a chunk is longer than this (official cut2: 50)."""
    max_chars: int = 510
    """No chunk is longer than this many characters (official split_big_text: 510)."""
    min_phones: int = 6
    """Texts with fewer phonemes are re-read with a leading "." (official get_phones_and_bert: 6)."""


Phonemes = tuple[str, list[str], list[int]]
"""(normalised text, phoneme symbols, phones per word/character)."""


class GsvFrontend(TextFrontend):
    """Text -> GPT-SoVITS v2 phoneme ids for the languages in ``languages``."""

    Config = FrontendConfig

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__(config)
        self.config: FrontendConfig
        self._table: SymbolTable | None = None

    @property
    def table(self) -> SymbolTable:
        """The v2 symbol table (read from package data on first use)."""
        if self._table is None:
            self._table = load_symbols_v2()
        return self._table

    @abstractmethod
    def g2p(self, text: str) -> Phonemes:
        """Normalise and phonemise one text of this frontend's language (no short-text rule)."""

    def bert_features(self, norm: str, symbols: list[str], word2ph: list[int]) -> FloatArray | None:
        """(1024, P) features for the GPT stage, or None (the stage then uses zeros, as the official
        inference does for every language but Chinese)."""
        return None

    def split_sentences(self, text: str) -> list[str]:
        require_speakable(text, language=self.languages[0] if self.languages else self.name)
        cfg = self.config
        return split_text(
            text,
            cfg.split_method,
            sentences_per_chunk=cfg.sentences_per_chunk,
            min_chars=cfg.min_chars,
            max_chars=cfg.max_chars,
        )

    def check_language(self, language: str) -> None:
        """Raise UnsupportedLanguageError unless this frontend speaks ``language``."""
        if language not in self.languages:
            raise UnsupportedLanguageError(
                f"text frontend {self.name!r} speaks {', '.join(self.languages)}, not {language!r} "
                "(pick the frontend for that language; `anchorvoice plugins` lists the installed ones)"
            )

    def phonemize(self, text: TextFrame) -> PhonemeFrame:
        self.check_language(text.language)
        require_speakable(text.text, language=text.language)
        norm, symbols, word2ph = self.g2p(text.text)
        if not symbols:
            raise TextInputError(
                f"nothing speakable in {text.text[:40]!r} for language {text.language!r} "
                "(the text has no words this frontend can read; check the language)"
            )
        if len(symbols) < self.config.min_phones:
            # Official get_phones_and_bert: a very short text is read again with "." in front so
            # that the GPT stage gets enough context (done once: final=True on the retry).
            norm, symbols, word2ph = self.g2p("." + text.text)
        if sum(word2ph) != len(symbols):
            raise StageError(
                f"text frontend {self.name!r} is inconsistent: word2ph sums to {sum(word2ph)} for "
                f"{len(symbols)} phonemes (a bug in the frontend; please report it with the text)"
            )
        return PhonemeFrame(
            ids=self.table.ids(symbols),
            symbols=symbols,
            word2ph=word2ph,
            language=text.language,
            text=norm,
            bert=self.bert_features(norm, symbols, word2ph),
            timestamp=text.timestamp,
        )
