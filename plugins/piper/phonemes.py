"""Text -> Piper phoneme ids: IPA from the ``espeak-ng`` program, then the voice's ``phoneme_id_map``.

Piper voices were trained on espeak-ng IPA where each clause keeps the punctuation mark that ended it,
and every phoneme is followed by the pad symbol, between a begin (``^``) and an end (``$``) symbol.
``espeak-ng --ipa`` prints one line per clause and drops the marks, so a sentence is cut into clauses
here and each clause's mark is appended to its phonemes.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PAD, BOS, EOS = "_", "^", "$"
"""Piper's special symbols: between phonemes, at the start and at the end of an utterance."""

CLAUSE_END = re.compile(r"([,.;:!?。、，！？；：…]+)(?=\s|$)")
"""A run of clause marks followed by a space or the end (so "3.5" and "e.g" stay inside a clause)."""

_LANGUAGE_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)*\)")
"""espeak-ng's "(fr)" markers around words it reads in another language."""

_MARK_MAP = {"。": ".", "、": ",", "，": ",", "！": "!", "？": "?", "；": ";", "：": ":", "…": "."}

Phonemizer = Callable[[str], str]
"""Clause text -> IPA, one line per clause espeak-ng found (the ``espeak-ng --ipa`` program)."""


@dataclass
class PhonemeIds:
    """The ids of one utterance and the characters the voice's map did not have (dropped)."""

    ids: list[int]
    dropped: list[str] = field(default_factory=list)


def clauses(sentence: str) -> list[tuple[str, str]]:
    """``[(clause text, its end mark or "")]``: the sentence cut after each mark that ends a clause."""
    out: list[tuple[str, str]] = []
    start = 0
    for m in CLAUSE_END.finditer(sentence):
        chunk = sentence[start : m.start()].strip()
        mark = _MARK_MAP.get(m.group(1)[-1], m.group(1)[-1])
        if chunk:
            out.append((chunk, mark))
        elif out:
            out[-1] = (out[-1][0], mark)
        start = m.end()
    tail = sentence[start:].strip()
    if tail:
        out.append((tail, ""))
    return out


def ipa_of(sentence: str, phonemize: Phonemizer) -> str:
    """The sentence's IPA as Piper was trained on: clauses joined by their mark and a space."""
    parts = []
    for chunk, mark in clauses(sentence):
        lines = [_LANGUAGE_SWITCH.sub("", ln).strip() for ln in phonemize(chunk).splitlines()]
        ipa = " ".join(ln for ln in lines if ln)
        if ipa:
            parts.append(ipa + mark)
    return " ".join(parts)


def to_ids(ipa: str, id_map: dict[str, list[int]]) -> PhonemeIds:
    """``^ _ p1 _ p2 _ ... $``; characters without an id are dropped and listed (never an error)."""
    ids = [*id_map[BOS], *id_map[PAD]]
    dropped: list[str] = []
    for ch in unicodedata.normalize("NFD", ipa):
        known = id_map.get(ch)
        if known is None:
            if ch not in dropped:
                dropped.append(ch)
            continue
        ids.extend(known)
        ids.extend(id_map[PAD])
    ids.extend(id_map[EOS])
    return PhonemeIds(ids, dropped)


def warn_dropped(dropped: list[str], voice: str, text: str) -> None:
    """One warning naming every character a voice could not say (``U+0301 ́`` for invisible marks)."""
    if dropped:
        shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in dropped)
        log.warning("Piper voice %s has no phoneme for %s; dropped them from %r", voice, shown, text[:60])
