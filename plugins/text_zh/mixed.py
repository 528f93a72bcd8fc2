"""Mixed Chinese/English frontend ("auto"): split into language runs, phonemise each, concatenate.

As the official "auto" / "zh" (mixed) modes of ``get_phones_and_bert`` do: the text is cut into
runs by script (:func:`plugins.text_common.langsplit.split_language_runs`), each run goes through its
own language frontend, and the phonemes, ``word2ph`` and normalised texts are joined in order. The
short-text rule (fewer than ``min_phones`` -> read again with a leading ".") applies to the whole.
"""

from __future__ import annotations

from typing import ClassVar

from plugins.text_common.base import FrontendConfig, GsvFrontend, Phonemes
from plugins.text_common.langsplit import split_language_runs
from plugins.text_common.punctuation import is_speakable_char
from plugins.text_en.frontend import EnglishFrontend
from plugins.text_zh.frontend import ChineseConfig, ChineseFrontend


class MixedFrontend(GsvFrontend):
    """Chinese with English words (or English with Chinese), one phoneme sequence."""

    name = "auto"
    languages: ClassVar[tuple[str, ...]] = ("auto", "zh-en")
    Config = FrontendConfig

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__(config)
        self.by_language: dict[str, GsvFrontend] = {
            "zh": ChineseFrontend(ChineseConfig(min_phones=0)),
            "en": EnglishFrontend(FrontendConfig(min_phones=0)),
        }

    def runs(self, text: str) -> list[tuple[str, str]]:
        """``[(language, text), ...]`` this frontend will read; runs with nothing to say are left out."""
        return [
            (lang, chunk)
            for lang, chunk in split_language_runs(text, default="zh")
            if any(is_speakable_char(c) for c in chunk)
        ]

    def g2p(self, text: str) -> Phonemes:
        norm_parts: list[str] = []
        symbols: list[str] = []
        word2ph: list[int] = []
        for lang, chunk in self.runs(text):
            norm, syms, w2p = self.by_language[lang].g2p(chunk)
            norm_parts.append(norm)
            symbols.extend(syms)
            word2ph.extend(w2p)
        return "".join(norm_parts), symbols, word2ph
