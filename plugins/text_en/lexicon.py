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
4. words of at most 3 characters are spelled out letter by letter (an apostrophe is the mark "-", other
   marks stay themselves);
5. possessive "'s": the stem, then S after a voiceless consonant, AH0 Z after a sibilant, else Z;
6. the word split into words by the wordsegment package, as the official code does ("unmuted" -> "un" +
   "muted", "well-known", "www.example.org"), each part read from step 2 on;
7. a word that does not split: g2p_en's neural model (:mod:`anchorvoice.plugins.text_en.g2p_neural`).

Before all of these, a word of g2p_en's homograph list is read by its part-of-speech tag when the caller
gives one (:mod:`anchorvoice.plugins.text_en.homographs`), as the official ``__call__`` does.
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

from anchorvoice.errors import PluginError
from anchorvoice.plugins.text_en.g2p_neural import NeuralG2p
from anchorvoice.plugins.text_en.homographs import homograph_table, reading

DATA_FILE = "lexicon_gsv.txt.gz"
_VOICELESS = frozenset(("P", "T", "K", "F", "TH", "HH"))
_SIBILANT = frozenset(("S", "Z", "SH", "ZH", "CH", "JH"))


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
    return words, MappingProxyType(names)


@functools.cache
def _load_segmenter() -> Any:
    """One wordsegment segmenter per process (its unigram and bigram counts, about 60 MB of tables, are only
    read after loading, so every frontend shares them)."""
    import wordsegment

    seg = wordsegment.Segmenter()
    seg.load()
    return seg


class Lexicon:
    """The official English dictionary and name dictionary with an offline OOV fallback."""

    def __init__(self) -> None:
        self._words: Mapping[str, list[list[str]]] | None = None
        self._names: Mapping[str, list[str]] = {}
        self.oov = NeuralG2p()

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
        """Letter names ("tv" -> T IY1 V IY1); lower-case "a" is EY1, "'" the mark "-", other marks themselves
        (official)."""
        phones: list[str] = []
        for ch in word:
            if ch == "a":
                phones.append("EY1")
            elif ch.isalpha():
                phones.extend(self.lookup(ch) or self.oov.pronounce(ch))
            else:
                phones.append("-" if ch == "'" else ch)
        return phones

    def word(self, token: str, tag: str | None = None) -> list[str]:
        """Phones of one token as the official ``__call__`` reads it: a single letter, else a homograph by
        its part-of-speech ``tag`` (None: no tag, the dictionary's reading), else :meth:`query`."""
        low = token.lower()
        if len(low) == 1:
            return ["EY1"] if token == "A" else (self.lookup(low) or self.spell(low))
        if tag is not None:
            entry = homograph_table().get(low)
            if entry is not None:
                return reading(entry, tag)
        return self.query(token)

    def query(self, token: str) -> list[str]:
        """The official ``qryword``: dictionary, names, short words spelled, possessives, then the word split
        into words (wordsegment) read one by one, or, when it does not split, the neural model."""
        low = token.lower()
        found = self.lookup(low) if len(low) > 1 else None
        if found is not None:
            return found
        if token.istitle() and low in self.names:
            return list(self.names[low])
        if len(low) <= 3:
            return self.spell(low)
        if re.fullmatch(r"[a-z]+'s", low):
            stem = self.query(low[:-2])
            if stem and stem[-1] in _VOICELESS:
                return [*stem, "S"]
            if stem and stem[-1] in _SIBILANT:
                return [*stem, "AH0", "Z"]
            return [*stem, "Z"]
        parts = self.segmenter.segment(low)
        if len(parts) == 1:
            return self.oov.pronounce(low)
        return [ph for part in parts for ph in self.query(part)]

    @property
    def segmenter(self) -> Any:
        """wordsegment's segmenter (its word counts read on first use, about 0.4 s, then shared)."""
        return _load_segmenter()
