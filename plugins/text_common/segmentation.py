"""Sentence splitting, following the official ``TTS_infer_pack/text_segmentation_method.py`` methods.

* ``punctuation`` (official ``cut5``): cut after every sentence or clause mark, except a "." between
  two digits (a decimal point).
* ``every_n`` (official ``cut1``): cut at sentence/clause marks, then join every ``n`` pieces.
* ``length`` (official ``cut2``): join pieces until a chunk passes ``min_chars`` characters; a short
  last chunk is merged into the one before.
* ``none`` (official ``cut0``): the whole text as one chunk.

Whatever the method, no chunk is longer than ``max_chars`` (official ``split_big_text`` uses 510):
an over-long chunk is cut at a mark, else at a space, else hard. Chunks that hold only punctuation
and whitespace are dropped, as every official method does.
"""

from __future__ import annotations

from typing import Literal

from anchorvoice.errors import ConfigError
from anchorvoice.plugins.text_common.punctuation import is_punctuation_only

SplitMethod = Literal["punctuation", "every_n", "length", "none"]

# Official cut5 marks ("punds").
CLAUSE_MARKS = frozenset(",.;?!、，。？！：…")
# Official `splits` set used by cut1/cut2/split_big_text.
SENTENCE_MARKS = frozenset("，。？！,.?!~:：—…")
# Official cut* filter set: pieces made only of these are dropped.
_FILLER = "!?…,.-;:、，。？！：~— \n\t\r"


def split_at_marks(text: str, marks: frozenset[str] = CLAUSE_MARKS) -> list[str]:
    """Cut after each mark (the mark stays with the piece before it); decimal points are kept."""
    pieces: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch not in marks:
            continue
        if ch == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            continue
        pieces.append(text[start : i + 1])
        start = i + 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def group_every(pieces: list[str], n: int) -> list[str]:
    """Join consecutive pieces in groups of ``n``."""
    if n < 1:
        raise ConfigError(f"sentences per chunk must be at least 1, got {n}", key="sentences_per_chunk")
    return ["".join(pieces[i : i + n]) for i in range(0, len(pieces), n)]


def merge_to_length(pieces: list[str], min_chars: int) -> list[str]:
    """Join pieces until a chunk is longer than ``min_chars``; merge a short tail into its neighbour."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        current += piece
        if len(current) > min_chars:
            chunks.append(current)
            current = ""
    if current:
        chunks.append(current)
    if len(chunks) > 1 and len(chunks[-1]) < min_chars:
        tail = chunks.pop()
        chunks[-1] += tail
    return chunks


def limit_length(chunk: str, max_chars: int) -> list[str]:
    """Cut ``chunk`` into pieces of at most ``max_chars``: at the last mark, else space, else hard."""
    if max_chars < 1:
        raise ConfigError(f"max_chars must be at least 1, got {max_chars}", key="max_chars")
    out: list[str] = []
    rest = chunk
    while len(rest) > max_chars:
        window = rest[:max_chars]
        cut = max((window.rfind(m) for m in SENTENCE_MARKS | CLAUSE_MARKS), default=-1)
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = max_chars - 1
        out.append(rest[: cut + 1])
        rest = rest[cut + 1 :]
    if rest:
        out.append(rest)
    return out


def split_text(
    text: str,
    method: SplitMethod = "punctuation",
    *,
    sentences_per_chunk: int = 4,
    min_chars: int = 50,
    max_chars: int = 510,
) -> list[str]:
    """Split ``text`` into chunks to synthesise one by one (speaking order, punctuation kept)."""
    text = text.strip("\n")
    # Official split(): an ellipsis and a dash pair are sentence ends / clause breaks.
    text = text.replace("……", "。").replace("——", "，")
    if method == "none":
        chunks = [text]
    elif method == "punctuation":
        chunks = split_at_marks(text)
    elif method == "every_n":
        chunks = group_every(split_at_marks(text, SENTENCE_MARKS), sentences_per_chunk)
    elif method == "length":
        chunks = merge_to_length(split_at_marks(text, SENTENCE_MARKS), min_chars)
    else:
        raise ConfigError(
            f"unknown sentence split method {method!r}; choose one of punctuation, every_n, length, none",
            key="split_method",
        )
    limited = [piece for chunk in chunks for piece in limit_length(chunk, max_chars)]
    return [c.strip() for c in limited if c.strip() and not is_punctuation_only(c, _FILLER)]
