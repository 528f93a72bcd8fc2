"""The GPT-SoVITS v2 phoneme symbol table, shipped as package data.

``symbols_v2.json`` is the official ``text/symbols2.py: symbols`` list (732 entries) in id order:
a phoneme's id is its index, i.e. the row of ``enc_p.text_embedding`` / ``ar_text_embedding`` in
the official checkpoints. The first 322 entries are the v1 table in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

import numpy as np

from anchorvoice.errors import TextInputError
from anchorvoice.frames import IntArray

# Official text/symbols2.py: punctuation = ["!", "?", "…", ",", "."] + ["-"]; these are the only
# punctuation marks that become phonemes. Everything else is mapped onto them or dropped.
PUNCTUATION: tuple[str, ...] = ("!", "?", "…", ",", ".", "-")
# Silence / unknown symbols of the same table (pu_symbols in symbols2.py).
SILENCE: tuple[str, ...] = ("SP", "SP2", "SP3")
UNKNOWN = "UNK"
PAD = "_"


class SymbolTable:
    """Symbol <-> id lookup for one table (v2 unless a plugin ships another)."""

    def __init__(self, symbols: Sequence[str], version: str = "v2") -> None:
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbol table {version} has duplicate entries")
        self.symbols: list[str] = list(symbols)
        self.version = version
        self._index = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def id(self, symbol: str) -> int:
        """Id of ``symbol``; an unknown symbol is a bug in a frontend, reported as such."""
        try:
            return self._index[symbol]
        except KeyError:
            raise TextInputError(
                f"phoneme {symbol!r} is not in the {self.version} symbol table "
                f"({len(self)} symbols); the text frontend produced an invalid phoneme"
            ) from None

    def ids(self, symbols: Sequence[str]) -> IntArray:
        """(P,) int64 ids of ``symbols``."""
        return np.asarray([self.id(s) for s in symbols], dtype=np.int64)

    def to_symbols(self, ids: Sequence[int] | IntArray) -> list[str]:
        """Inverse of :meth:`ids`."""
        return [self.symbols[int(i)] for i in ids]


def load_symbols_v2() -> SymbolTable:
    """Read the v2 table from the package data (a fresh object each call; callers keep it)."""
    text = resources.files("anchorvoice.plugins.text_common").joinpath("symbols_v2.json").read_text(encoding="utf-8")
    table = json.loads(text)
    if not isinstance(table, list) or not all(isinstance(s, str) for s in table):
        raise ValueError("plugins/text_common/symbols_v2.json is not a JSON list of strings")
    return SymbolTable(table, "v2")
