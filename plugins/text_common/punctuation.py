"""Punctuation normalisation shared by the built-in frontends.

The v2 symbol table has six punctuation phonemes (``! ? … , . -``); every other mark is mapped onto
one of them or removed, as the official ``chinese2.py`` / ``english.py`` ``rep_map`` tables do.
Runs of marks collapse to the first one (official ``replace_consecutive_punctuation``: repeated
marks leak the reference's pauses into the prompt).
"""

from __future__ import annotations

import re
import unicodedata

from anchorvoice.errors import TextInputError
from anchorvoice.plugins.text_common.symbols import PUNCTUATION

_PUNCT_CLASS = "".join(re.escape(p) for p in PUNCTUATION)

# Official chinese2.py rep_map (full-width and CJK marks -> the six phoneme marks). "..." is
# listed first so that it wins over a single "." (the official pattern alternates in dict order).
ZH_PUNCTUATION_MAP: dict[str, str] = {
    "...": "…",
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
    "$": ".",
    "/": ",",
    "—": "-",
    "~": "…",
    "～": "…",
}

# Official english.py rep_map: "[;:：，；]" -> ",", '["’]' -> "'", and CJK sentence marks.
EN_PUNCTUATION_MAP: dict[str, str] = {
    ";": ",",
    ":": ",",
    "：": ",",
    "，": ",",
    "；": ",",
    '"': "'",
    "’": "'",
    "。": ".",
    "！": "!",
    "？": "?",
}


# Full-width letters and digits (U+FF21.., U+FF10..) and the ideographic space -> ASCII, as the
# official zh_normalization constants F2H_ASCII_LETTERS / F2H_DIGITS / F2H_SPACE do. Full-width marks
# are left to the punctuation maps.
FULLWIDTH_TO_ASCII: dict[int, str] = {0xFF01 + i: chr(0x21 + i) for i in range(94) if chr(0x21 + i).isalnum()}
FULLWIDTH_TO_ASCII[0x3000] = " "


def map_punctuation(text: str, mapping: dict[str, str]) -> str:
    """Replace every key of ``mapping`` (longest keys first) by its value."""
    keys = sorted(mapping, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(k) for k in keys))
    return pattern.sub(lambda m: mapping[m.group(0)], text)


def collapse_repeated_punctuation(text: str, *, after_space: bool = False) -> str:
    """Keep only the first of consecutive punctuation marks ("!?!" -> "!").

    ``after_space``: also drop marks that follow a space (the English variant of the official
    function, whose pattern starts with ``[punct\\s]``).
    """
    lead = f"[{_PUNCT_CLASS}\\s]" if after_space else f"[{_PUNCT_CLASS}]"
    return re.sub(f"({lead})([{_PUNCT_CLASS}])+", r"\1", text)


def is_speakable_char(ch: str) -> bool:
    """True for letters (any script, incl. CJK ideographs) and digits; False for marks and emoji."""
    cat = unicodedata.category(ch)
    return cat.startswith("L") or cat == "Nd"


def require_speakable(text: str, *, language: str) -> None:
    """Raise TextInputError if ``text`` is empty or holds nothing but punctuation, symbols or emoji."""
    if not text or not text.strip():
        raise TextInputError(f"text for language {language!r} is empty (give at least one word to speak)")
    if not any(is_speakable_char(c) for c in text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise TextInputError(
            f"text {shown!r} has no letters, characters or digits to speak "
            "(only punctuation, symbols or emoji); give at least one word"
        )


def is_punctuation_only(text: str, marks: str = "!?…,.- \n\t") -> bool:
    """True when ``text`` holds nothing but the given marks and whitespace (official ``cut*`` filter)."""
    return all(c in marks for c in text)
