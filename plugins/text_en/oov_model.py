"""Pronounce English words that are in no dictionary, with the context model of ``oov_model.txt``.

The official frontend predicts such words with g2p_en's neural network (needs nltk data and its
weights). This model needs neither: ``oov_model.txt`` (package data, about 0.9 MB, written by
:mod:`anchorvoice.plugins.text_en.oov_train` from the CMU dictionary) maps a letter with up to 3 letters of
context on each side to the phonemes, with stress, it stands for. Each letter takes the reading of
its most specific context found in the table; every single letter is in the table, so every word
a-z gets a reading. On CMU words held out of training it gets about 90% of phonemes right.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from anchorvoice.errors import PluginError
from anchorvoice.plugins.text_en.oov_train import CHAIN, PAD, context_key


@functools.cache
def _read_table() -> Mapping[str, tuple[str, ...]]:
    """``oov_model.txt`` parsed once per process (about 0.4 s): every pipeline's frontend shares it."""
    try:
        package = resources.files("anchorvoice.plugins.text_en")
        text = package.joinpath("oov_model.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PluginError(
            "plugins/text_en/oov_model.txt is missing (reinstall anchorvoice, or run "
            "`python -m plugins.text_en.oov_train` to rebuild it)"
        ) from None
    table: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        key, _, phones = line.partition("\t")
        table[key] = tuple(phones.split())
    return MappingProxyType(table)


class OovModel:
    """Letter-context -> phonemes table, read from package data on first use."""

    def __init__(self) -> None:
        self._table: Mapping[str, tuple[str, ...]] | None = None

    @property
    def table(self) -> Mapping[str, tuple[str, ...]]:
        if self._table is None:
            self._table = _read_table()
        return self._table

    def pronounce(self, word: str) -> list[str]:
        """ARPAbet phonemes with stress for a word of letters a-z (other characters are skipped)."""
        word = "".join(c for c in word.lower() if "a" <= c <= "z")
        padded = PAD * 3 + word + PAD * 3
        table = self.table
        phones: list[str] = []
        for i in range(len(word)):
            for left, right in CHAIN:
                found = table.get(context_key(padded, i, left, right))
                if found is not None:
                    phones.extend(found)
                    break
        return phones
