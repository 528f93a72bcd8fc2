"""Mixed Chinese/English frontend ("auto"): split into language runs, phonemise each, concatenate.

As the official "auto" / "zh" (mixed) modes of ``get_phones_and_bert`` do: the text is cut into
runs by script (:func:`plugins.text_common.langsplit.split_language_runs`), each run goes through its
own language frontend, and the phonemes, ``word2ph`` and normalised texts are joined in order. The
short-text rule (fewer than ``min_phones`` -> read again with a leading ".") applies to the whole.
With a BERT model (``bert_path`` or the voice's "bert" model) Chinese runs get BERT features and
English runs zeros, as the official ``get_bert_inf`` does per run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from plugins.text_common.base import FrontendConfig, GsvFrontend, Phonemes
from plugins.text_common.langsplit import split_language_runs
from plugins.text_common.punctuation import is_speakable_char
from plugins.text_en.frontend import EnglishFrontend
from plugins.text_zh.frontend import ChineseConfig, ChineseFrontend

if TYPE_CHECKING:
    from engine.frames import FloatArray
    from engine.voices import Voice


class MixedFrontend(GsvFrontend):
    """Chinese with English words (or English with Chinese), one phoneme sequence."""

    name = "auto"
    languages: ClassVar[tuple[str, ...]] = ("auto", "zh-en")
    Config = ChineseConfig

    def __init__(self, config: ChineseConfig | None = None) -> None:
        super().__init__(config)
        self.config: ChineseConfig
        # The run frontends skip the short-text rule: it applies once, to the whole text.
        self.zh = ChineseFrontend(replace(self.config, min_phones=0))
        self.by_language: dict[str, GsvFrontend] = {
            "zh": self.zh,
            "en": EnglishFrontend(FrontendConfig(min_phones=0)),
        }
        self._pieces: list[tuple[str, str, list[int]]] = []  # (language, normalised text, word2ph) of the last g2p

    def prepare(self, voice: Voice | None) -> None:
        for frontend in self.by_language.values():
            frontend.prepare(voice)

    def close(self) -> None:
        self.zh.close()

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
        self._pieces = []
        for lang, chunk in self.runs(text):
            norm, syms, w2p = self.by_language[lang].g2p(chunk)
            self._pieces.append((lang, norm, w2p))
            norm_parts.append(norm)
            symbols.extend(syms)
            word2ph.extend(w2p)
        return "".join(norm_parts), symbols, word2ph

    def bert_features(self, norm: str, symbols: list[str], word2ph: list[int]) -> FloatArray | None:
        parts = []
        for lang, piece_norm, w2p in self._pieces:
            feats = self.zh.bert_features(piece_norm, [], w2p) if lang == "zh" else None
            if feats is None and lang == "zh":
                return None  # no BERT model: leave it to the GPT stage (zeros)
            parts.append(feats)
        if not any(p is not None for p in parts):
            return None
        hidden = next(p for p in parts if p is not None).shape[0]
        full = [
            p if p is not None else np.zeros((hidden, sum(w2p)), np.float32)
            for p, (_, _, w2p) in zip(parts, self._pieces)
        ]
        return np.concatenate(full, axis=1)
