"""English text frontend: normalised text -> ARPAbet-with-stress phonemes of the v2 symbol table.

Follows the official GPT-SoVITS ``text/english.py`` ``g2p`` and ``cleaner.clean_text``:
words are looked up one by one (:class:`~anchorvoice.plugins.text_en.lexicon.Lexicon`), the marks
``, . ! ? -`` are phonemes of their own, an apostrophe standing alone becomes "-", and a text of
fewer than 4 phonemes gets a leading ",". ``word2ph`` counts the phonemes of each token (word or
mark); the official English frontend returns none, so this is our own, consistent bookkeeping.

A sentence holding one of g2p_en's homographs ("use", "record", "read", ...) is tagged first, as the
official frontend tags every sentence with NLTK: with NLTK's own tagger data where it is installed
(``pos_tagger = "auto"`` finds it where NLTK would: ``NLTK_DATA``, ``~/nltk_data``, a Python prefix's
``nltk_data``, which is where GPT-SoVITS installs it), else by :class:`~anchorvoice.plugins.text_en.
homographs.RuleTagger`. Which one reads is logged once and shown by :attr:`EnglishFrontend.tagger_name`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from anchorvoice.plugins.text_common.base import FrontendConfig, GsvFrontend, Phonemes
from anchorvoice.plugins.text_en.homographs import RuleTagger, homograph_table
from anchorvoice.plugins.text_en.lexicon import Lexicon
from anchorvoice.plugins.text_en.normalize import normalize
from anchorvoice.plugins.text_en.pos_tagger import TAGGER_NAME, PerceptronTagger, find_tagger

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

# Tokens as nltk's TweetTokenizer cuts normalised text (the official g2p tokenizes with it): a naked
# domain ("www.example.org", also "on.Then" where a space is missing); a word with inner apostrophes or
# hyphens ("don't", "well-known"); or one mark.
_TOKEN_RE = re.compile(
    r"(?<!@)[A-Za-z0-9]+(?:[.\-][A-Za-z0-9]+)*[.][A-Za-z]{2,13}\b/?(?!@)"
    r"|[A-Za-z]+(?:['\-][A-Za-z]+)*|[.,?!\-']"
)
# Official clean_text: English with fewer phonemes than this gets "," in front.
_MIN_EN_PHONES = 4
log = logging.getLogger(__name__)


@dataclass
class EnglishConfig(FrontendConfig):
    """English frontend parameters."""

    pos_tagger: str = "auto"
    """What tags homographs: "auto" (NLTK's averaged_perceptron_tagger_eng where NLTK would find it, else
    the built-in rules), "rules", or the folder holding that tagger (or the nltk_data folder above it)."""
    keep_pauses: bool = True
    """Keep as pauses the marks the official normalisation drops ("…", a mark after a space as in "wait ...");
    the dataset step turns this off so that its text column equals the official ``2-name2text.txt``."""


class Tagger(Protocol):
    def tag(self, tokens: Sequence[str]) -> list[str]: ...


class EnglishFrontend(GsvFrontend):
    """English (CMU dictionary + rules), GPT-SoVITS v2 symbols."""

    name = "en"
    languages: ClassVar[tuple[str, ...]] = ("en",)
    Config = EnglishConfig

    def __init__(self, config: FrontendConfig | None = None) -> None:
        super().__init__(config)
        self.lexicon = Lexicon()
        self._tagger: Tagger | None = None
        self.tagger_name = ""
        """"nltk <folder>" or "rules" once the tagger is chosen (on the first homograph or in prepare)."""

    def prepare(self, voice: Voice | None) -> None:
        """Read the dictionary, the word splitter, the OOV network and the tagger now (about 0.6 s), so that the
        first sentence does not wait."""
        _ = self.lexicon.words, self.lexicon.oov.weights(), self.lexicon.segmenter, self.tagger

    def cache_key(self) -> str:
        """The config and the homograph tagger in use (installing NLTK's changes a reference's phones)."""
        return f"{self.config!r}|{self.tagger_name or 'unprepared'}"

    @property
    def tagger(self) -> Tagger:
        """The part-of-speech tagger for homographs (chosen by ``pos_tagger`` on first use)."""
        if self._tagger is None:
            setting = getattr(self.config, "pos_tagger", "auto")  # a plain FrontendConfig has none
            folder = find_tagger(setting)
            if folder is not None:
                self._tagger, self.tagger_name = PerceptronTagger.load(folder), f"nltk {folder}"
            else:
                self._tagger, self.tagger_name = RuleTagger(), "rules"
                if setting == "auto":
                    log.info("English homographs are tagged by built-in rules: NLTK's %s was not found "
                             "(set NLTK_DATA to a GPT-SoVITS install's nltk_data for the official readings)",
                             TAGGER_NAME)
        return self._tagger

    def _tags(self, tokens: list[str]) -> list[str] | None:
        """One tag per token when the sentence holds a homograph (the only words a tag changes), else None."""
        table = homograph_table()
        if not any(t.lower() in table for t in tokens):
            return None
        return self.tagger.tag(tokens)

    def g2p(self, text: str) -> Phonemes:
        norm = normalize(text, getattr(self.config, "keep_pauses", True))
        symbols: list[str] = []
        word2ph: list[int] = []
        tokens = _TOKEN_RE.findall(norm)
        tags = self._tags(tokens)
        for i, token in enumerate(tokens):
            if token == "'":
                phones = ["-"]  # official replace_phs: "'" -> "-"
            elif not token[0].isalpha():
                phones = [token]
            else:
                phones = [p for p in self.lexicon.word(token, tags[i] if tags else None) if p in self.table]
            if phones:
                symbols.extend(phones)
                word2ph.append(len(phones))
        if symbols and len(symbols) < _MIN_EN_PHONES:
            symbols.insert(0, ",")
            word2ph.insert(0, 1)
        return norm, symbols, word2ph
