"""English word -> ARPAbet phones: the official GPT-SoVITS dictionary, then its out-of-vocabulary steps.

The dictionary is ``lexicon_gsv.txt.gz`` (package data, about 1 MB; see ``LEXICON_NOTICE.md``): the
words of the official ``text/cmudict.rep`` (CMUdict 0.7b), ``cmudict-fast.rep`` and ``engdict-hot.rep``
merged as the official ``english.py`` merges them, and its name dictionary; written by
:mod:`anchorvoice.plugins.text_en.lexicon_build`, read once per process on first use (every pipeline built
for a voice switch shares it; it is data, never written after loading). Look-up
order follows the official ``en_G2p.__call__`` / ``qryword``:

1. a single letter: "A" (capital) is EY1, others the letter's dictionary reading;
2. the dictionary (first pronunciation);
3. a word written with one capital ("Aakash"): the name dictionary;
4. words of at most 3 characters are spelled out letter by letter (an apostrophe or hyphen in them
   is the mark "-");
5. possessive "'s": the stem, then S after a voiceless consonant, AH0 Z after a sibilant, else Z;
6. hyphenated words part by part, and compounds of dictionary words ("birdsong" -> "bird" + "song");
   the official code uses the wordsegment package here, we split on the dictionary itself;
7. the letter-context model of :mod:`anchorvoice.plugins.text_en.oov_model` instead of g2p_en's neural model.

The official code reads a few homographs by part of speech (g2p_en's list, NLTK's tagger); we have no
tagger and take one reading for "read" and "complex" (below); other homographs read as the dictionary.
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from types import MappingProxyType

from anchorvoice.errors import PluginError
from anchorvoice.plugins.text_en.oov_model import OovModel

DATA_FILE = "lexicon_gsv.txt.gz"
# The homograph readings the official code picks when the tagger says present tense / noun.
_HOMOGRAPHS: dict[str, list[str]] = {
    "read": ["R", "IY1", "D"],
    "complex": ["K", "AA1", "M", "P", "L", "EH0", "K", "S"],
}
_VOICELESS = frozenset(("P", "T", "K", "F", "TH", "HH"))
_SIBILANT = frozenset(("S", "Z", "SH", "ZH", "CH", "JH"))
_MIN_COMPOUND_PART = 3


class Pronunciations(Mapping[str, list[list[str]]]):
    """Word -> its pronunciations, kept as the data file's phone strings and split when looked up (parsing
    135k entries up front took ~0.35 s of every process that speaks English)."""

    def __init__(self, raw: dict[str, str]) -> None:
        self._raw = raw

    def __getitem__(self, word: str) -> list[list[str]]:
        return [self._raw[word].split()]

    def __contains__(self, word: object) -> bool:
        return word in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def read_lexicon(text: str) -> tuple[Pronunciations, dict[str, list[str]]]:
    """Parse the data file: ``[words]`` and ``[names]`` sections of ``word<TAB>PHONES`` lines."""
    words: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    section: str | None = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        word, _, phones = line.partition("\t")
        if section == "[words]":
            words[word] = phones
        elif section == "[names]":
            names[word] = phones.split()
    if not words:
        raise PluginError(f"plugins/text_en/{DATA_FILE} holds no [words] section; reinstall anchorvoice")
    return Pronunciations(words), names


@functools.cache
def _load_lexicon() -> tuple[Mapping[str, list[list[str]]], Mapping[str, list[str]]]:
    """The packaged dictionary and names, parsed once per process (read-only views)."""
    try:
        data = resources.files("anchorvoice.plugins.text_en").joinpath(DATA_FILE).read_bytes()
    except FileNotFoundError:
        raise PluginError(
            f"plugins/text_en/{DATA_FILE} is missing (reinstall anchorvoice, or rebuild it from an "
            "official GPT-SoVITS checkout: `python -m anchorvoice.plugins.text_en.lexicon_build "
            "GPT-SoVITS/GPT_SoVITS`)"
        ) from None
    words, names = read_lexicon(gzip.decompress(data).decode("utf-8"))
    for w, phones in _HOMOGRAPHS.items():
        words._raw[w] = " ".join(phones)
    return words, MappingProxyType(names)


class Lexicon:
    """The official English dictionary and name dictionary with an offline OOV fallback."""

    def __init__(self) -> None:
        self._words: Mapping[str, list[list[str]]] | None = None
        self._names: Mapping[str, list[str]] = {}
        self.oov = OovModel()

    @property
    def words(self) -> Mapping[str, list[list[str]]]:
        if self._words is None:
            self._words, self._names = _load_lexicon()
        return self._words

    @property
    def names(self) -> Mapping[str, list[str]]:
        _ = self.words
        return self._names

    def lookup(self, word: str) -> list[str] | None:
        """First dictionary pronunciation of a lower-case word, or None."""
        entry = self.words.get(word)
        return list(entry[0]) if entry else None

    def spell(self, word: str) -> list[str]:
        """Letter names ("tv" -> T IY1 V IY1); lower-case "a" is EY1, "'" and "-" the mark "-" (official)."""
        phones: list[str] = []
        for ch in word:
            if ch == "a":
                phones.append("EY1")
            elif ch.isalpha():
                phones.extend(self.lookup(ch) or self.oov.pronounce(ch))
            elif ch in "'-":
                phones.append("-")
        return phones

    def word(self, token: str) -> list[str]:
        """Phones of one word token (letters, optionally with inner apostrophes or hyphens)."""
        low = token.lower()
        if len(low) == 1:
            return ["EY1"] if token == "A" else (self.lookup(low) or self.spell(low))
        found = self.lookup(low)
        if found is not None:
            return found
        if token.istitle() and low in self.names:
            return list(self.names[low])
        if len(low) <= 3:
            return self.spell(low)
        if re.fullmatch(r"[a-z]+'s", low):
            stem = self.word(low[:-2])
            if stem and stem[-1] in _VOICELESS:
                return [*stem, "S"]
            if stem and stem[-1] in _SIBILANT:
                return [*stem, "AH0", "Z"]
            return [*stem, "Z"]
        if "-" in low:
            return [ph for part in low.split("-") if part for ph in self.word(part)]
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
