"""English text frontend: normalised text -> ARPAbet-with-stress phonemes of the v2 symbol table.

Follows the official GPT-SoVITS ``text/english.py`` ``g2p`` and ``cleaner.clean_text``:
words are looked up one by one (:class:`~anchorvoice.plugins.text_en.lexicon.Lexicon`), the marks
``, . ! ? -`` are phonemes of their own, an apostrophe standing alone becomes "-", and a text of
fewer than 4 phonemes gets a leading ",". ``word2ph`` counts the phonemes of each token (word or
mark); the official English frontend returns none, so this is our own, consistent bookkeeping.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from anchorvoice.plugins.text_common.base import FrontendConfig, GsvFrontend, Phonemes
from anchorvoice.plugins.text_en.lexicon import Lexicon
from anchorvoice.plugins.text_en.normalize import normalize

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

# A word: letters with inner apostrophes/hyphens (as nltk's TweetTokenizer keeps "don't",
# "well-known" together); or one mark.
_TOKEN_RE = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*|[.,?!\-']")
# Official clean_text: English with fewer phonemes than this gets "," in front.
_MIN_EN_PHONES = 4


class EnglishFrontend(GsvFrontend):
    """English (CMU dictionary + rules), GPT-SoVITS v2 symbols."""

    name = "en"
    languages: ClassVar[tuple[str, ...]] = ("en",)
    Config = FrontendConfig

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__(config)
        self.lexicon = Lexicon()

    def prepare(self, voice: Voice | None) -> None:
        """Read the dictionary and the OOV model now, so that the first sentence does not wait."""
        _ = self.lexicon.words, self.lexicon.oov.table

    def g2p(self, text: str) -> Phonemes:
        norm = normalize(text)
        symbols: list[str] = []
        word2ph: list[int] = []
        for token in _TOKEN_RE.findall(norm):
            if token == "'":
                phones = ["-"]  # official replace_phs: "'" -> "-"
            elif not token[0].isalpha():
                phones = [token]
            else:
                phones = [p for p in self.lexicon.word(token) if p in self.table]
            if phones:
                symbols.extend(phones)
                word2ph.append(len(phones))
        if symbols and len(symbols) < _MIN_EN_PHONES:
            symbols.insert(0, ",")
            word2ph.insert(0, 1)
        return norm, symbols, word2ph
