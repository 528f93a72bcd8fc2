"""English homographs read by part of speech ("use" the verb is Y UW1 Z, the noun Y UW1 S).

The table is g2p_en's (``homographs.txt``: word | reading for the part of speech | other reading |
tag prefix), with the two changes the official GPT-SoVITS frontend makes after loading it. The rule
is the official one: a token whose tag starts with the entry's prefix takes the first reading, and so
does a tag that is a shorter prefix of the entry's ("read" tagged VB against VBP); any other tag takes
the second reading.

Tags come from NLTK's tagger where it is installed (:mod:`anchorvoice.plugins.text_en.pos_tagger`), the
official way; else from :class:`RuleTagger`, a few rules about the neighbouring words that only decide
what the table asks (verb or not, past participle, adjective).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources

from anchorvoice.errors import PluginError

DATA_FILE = "homographs.txt"
OFFICIAL_CHANGES: dict[str, tuple[list[str], list[str], str]] = {
    "read": (["R", "IY1", "D"], ["R", "EH1", "D"], "VBP"),
    "complex": (["K", "AH0", "M", "P", "L", "EH1", "K", "S"], ["K", "AA1", "M", "P", "L", "EH0", "K", "S"], "JJ"),
}
"""The official ``en_G2p.__init__`` replaces these two entries."""

Entry = tuple[list[str], list[str], str]


@functools.cache
def homograph_table() -> dict[str, Entry]:
    """word -> (reading for the tag prefix, other reading, tag prefix); read once per process."""
    try:
        text = resources.files("anchorvoice.plugins.text_en").joinpath(DATA_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PluginError(f"plugins/text_en/{DATA_FILE} is missing; reinstall anchorvoice") from None
    table: dict[str, Entry] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        word, first, second, pos = line.split("|")
        table[word] = (first.split(), second.split(), pos)
    table.update(OFFICIAL_CHANGES)
    return table


def reading(entry: Entry, tag: str) -> list[str]:
    """The official choice between an entry's two readings for a token tagged ``tag``."""
    first, second, pos = entry
    if tag.startswith(pos) or (len(tag) < len(pos) and pos.startswith(tag)):
        return list(first)
    return list(second)


_TO_OR_MODAL = frozenset(
    "to will would shall should can could may might must cannot can't won't wouldn't shouldn't couldn't "
    "mustn't don't doesn't didn't do does did please let's i'll we'll you'll they'll he'll she'll it'll "
    "i'd we'd you'd they'd".split()
)
_SUBJECT = frozenset("i we you they".split())
_SUBJECT_3RD = frozenset("he she it who".split())
_BE_HAVE = frozenset("is are was were be been being am have has had having get gets got gotten".split())
_NOUN_BEFORE = frozenset(
    "the a an this that these those my your his her its our their of in on at for with from by into "
    "no any some each every another such what which whose".split()
)
_OBJECT_AFTER = frozenset(
    "the a an this that these those my your his her its our their it them me us him you some any all".split()
)
_ADVERB_SKIP = frozenset("not never also always often just only really still even then now".split())


class RuleTagger:
    """Coarse Penn tags from neighbouring words, for the homograph table only (no model needed).

    A word after "to", a modal or "please" is a verb (VB); after I/we/you/they a present verb (VBP);
    after he/she/it with an -s a present verb (VBZ); an -ed word after a form of be/have a participle
    (VBN); after a determiner, possessive or preposition a noun (NN); at the start of a sentence,
    followed by an object ("Record your message"), an imperative (VB); "complex" before a word an
    adjective (JJ); a word joined by "and"/"or" to a verb the verb's tag ("to decrease or increase"). Anything
    else is NN. Adverbs such as "not", "also" are skipped when looking back.
    """

    def tag(self, tokens: Sequence[str]) -> list[str]:
        low = [t.lower() for t in tokens]
        tags: list[str] = []
        for i in range(len(low)):
            tag = self._tag(low, i)
            # "to decrease or increase": a word joined by and/or to a verb is a verb too
            if tag == "NN" and i >= 2 and low[i - 1] in ("and", "or") and tags[i - 2].startswith("VB"):
                tag = tags[i - 2]
            tags.append(tag)
        return tags

    @staticmethod
    def _previous(low: Sequence[str], i: int) -> str | None:
        """The word before ``i`` (adverbs skipped); None at the start of a sentence."""
        j = i - 1
        while j >= 0 and low[j] in _ADVERB_SKIP:
            j -= 1
        if j < 0 or not low[j][0].isalpha():
            return None
        return low[j]

    def _tag(self, low: Sequence[str], i: int) -> str:
        word = low[i]
        if not word[0].isalpha():
            return word
        prev = self._previous(low, i)
        nxt = low[i + 1] if i + 1 < len(low) else ""
        if word == "complex" and nxt[:1].isalpha():
            return "JJ"
        if prev in _TO_OR_MODAL:
            return "VB"
        if prev in _SUBJECT:
            return "VBD" if word.endswith("ed") else "VBP"
        if prev in _SUBJECT_3RD and word.endswith("s"):
            return "VBZ"
        if prev in _BE_HAVE:
            return "VBN" if word.endswith("ed") or word == "read" else "JJ"
        if prev in _NOUN_BEFORE:
            return "NN"
        if prev is None and nxt in _OBJECT_AFTER:
            return "VB"
        return "NN"
