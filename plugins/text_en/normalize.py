"""English text normalisation: numbers, currency, percent, time, units, abbreviations, punctuation.

Order and readings follow the official GPT-SoVITS ``text/en_normalization/expend.py`` (math
operators, negatives, thousands separators, time, units, pounds, dollars, decimals, fractions,
ordinals, plain numbers, accents, percent, character filter, "i.e."/"e.g.", splitting of capital
runs), with common abbreviations added. The official "1. " -> "first, " list rule is left out: it
also rewrites any sentence that ends in a number.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from anchorvoice.plugins.text_common.punctuation import (
    EN_PUNCTUATION_MAP,
    FULLWIDTH_TO_ASCII,
    collapse_repeated_punctuation,
    map_punctuation,
)
from anchorvoice.plugins.text_en.numbers import cardinal, decimal, ordinal, year_or_cardinal

_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    (r"\bMrs\.", "missus"),
    (r"\bMr\.", "mister"),
    (r"\bMs\.", "miss"),
    (r"\bDr\.", "doctor"),
    (r"\bProf\.", "professor"),
    (r"\bSt\.(?=\s+[A-Z])", "saint"),
    (r"\bSt\.", "street"),
    (r"\bJr\.", "junior"),
    (r"\bSr\.", "senior"),
    (r"\bMt\.", "mount"),
    (r"\bvs\.?(?=\s)", "versus"),
    (r"\betc\.", "et cetera"),
    (r"\bapprox\.", "approximately"),
    (r"\b[Nn]o\.(?=\s*\d)", "number"),
    (r"\bInc\.", "incorporated"),
    (r"\bLtd\.", "limited"),
    (r"(?i)\bi\.e\.", "that is"),
    (r"(?i)\be\.g\.", "for example"),
    (r"\s*&\s*", " and "),
)

# Official measurement_map: unit -> (singular, plural).
_UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "ft": ("foot", "feet"),
    "L": ("liter", "liters"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
    "°C": ("degree celsius", "degrees celsius"),
    "°F": ("degree fahrenheit", "degrees fahrenheit"),
}
_UNIT_RE = re.compile(
    r"\b(\d+(?:\.\d+)?)(" + "|".join(re.escape(u) for u in _UNITS) + r")(?![A-Za-z0-9])"
)
_ASMD_RE = re.compile(r"(-?\d+(?:\.\d+)?)\s+([+\-×÷=])\s+(?=-?\d)")
_ASMD_WORDS = {"+": "plus", "-": "minus", "×": "times", "÷": "divided by", "=": "equals"}
_NEGATIVE_RE = re.compile(r"(^|\s)-(\d)")
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_CURRENCY_RE = re.compile(r"([$£])(\d[\d.]*\d|\d)|(\d[\d.]*\d|\d)([$£])")
_DECIMAL_RE = re.compile(r"(\d+)\.(\d+)")
_FRACTION_RE = re.compile(r"\b(\d+)/(\d+)\b")
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_NUMBER_RE = re.compile(r"\d+")
_DECADE_RE = re.compile(r"\b(\d*0)'?s\b")  # "1990s", "80s", "90's"


def _spaced(m: re.Match[str], words: str) -> str:
    """``words`` in place of the match, with a space on each side that has no whitespace already.

    The official normaliser never collapses spaces (its text column keeps "logged on.  Please"), so
    the spaces we add to keep words apart must not double the ones the text has.
    """
    text, start, end = m.string, m.start(), m.end()
    before = " " if start > 0 and not text[start - 1].isspace() else ""
    after = " " if end < len(text) and not text[end].isspace() else ""
    return f"{before}{words}{after}"


def _gap(m: re.Match[str]) -> str:
    """A character the frontend cannot read: a space between two words ("a/b"), else nothing."""
    text, start, end = m.string, m.start(), m.end()
    inside = 0 < start and end < len(text) and not text[start - 1].isspace() and not text[end].isspace()
    return " " if inside else ""


def _unit(m: re.Match[str]) -> str:
    number, unit = m.group(1), m.group(2)
    singular, plural = _UNITS[unit]
    return f"{number} {singular if number == '1' else plural}"


def _time(m: re.Match[str]) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    period = "a.m." if hours < 12 else "p.m."
    if hours > 12:
        hours -= 12
    if minutes == 0:
        return f"{cardinal(hours)} o'clock {period}"
    return f"{cardinal(hours)} {cardinal(minutes)} {period}"


def _currency(m: re.Match[str]) -> str:
    sign = m.group(1) or m.group(4)
    amount = m.group(2) or m.group(3)
    big, small = ("dollar", "cent") if sign == "$" else ("pound", "penny")
    small_plural = "cents" if sign == "$" else "pence"
    parts = amount.split(".")
    if len(parts) > 2:
        return f"{amount} {big}s"
    whole = int(parts[0]) if parts[0] else 0
    frac = int(parts[1][:2].ljust(2, "0")) if len(parts) > 1 and parts[1] else 0
    # Amounts are cardinals: "$1,299" is "one thousand, two hundred ninety nine", never a year.
    words = []
    if whole:
        words.append(f"{cardinal(whole)} {big if whole == 1 else big + 's'}")
    if frac:
        words.append(f"{cardinal(frac)} {small if frac == 1 else small_plural}")
    return " and ".join(words) if words else f"zero {big}s"


def _decade(m: re.Match[str]) -> str:
    words = year_or_cardinal(int(m.group(1)))
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _fraction(m: re.Match[str]) -> str:
    num, den = int(m.group(1)), int(m.group(2))
    if den == 0:
        return f"{cardinal(num)} over zero"
    if den == 1:
        return cardinal(num)
    if den == 2:
        return f"{cardinal(num)} {'half' if num == 1 else 'halves'}"
    return f"{cardinal(num)} {ordinal(den)}{'s' if num > 1 else ''}"


def normalize_numbers(text: str) -> str:
    """Spell out every number-like token of ``text``."""
    while _ASMD_RE.search(text):
        text = _ASMD_RE.sub(lambda m: f"{m.group(1)} {_ASMD_WORDS[m.group(2)]} ", text)
    text = _NEGATIVE_RE.sub(r"\1negative \2", text)
    text = re.sub(r"(\d),(?=\d{3}(?:,\d{3})*\b)", r"\1", text)
    text = _TIME_RE.sub(_time, text)
    text = _DECADE_RE.sub(_decade, text)  # before units: the "s" of "1990s" is not "seconds"
    text = _UNIT_RE.sub(_unit, text)
    text = _CURRENCY_RE.sub(_currency, text)
    text = _DECIMAL_RE.sub(lambda m: decimal(m.group(0)), text)
    text = _FRACTION_RE.sub(_fraction, text)
    text = _ORDINAL_RE.sub(lambda m: ordinal(int(m.group(1))), text)
    # Spaces around the words: "user123" is "user one hundred twenty three", not "userone ...".
    text = _NUMBER_RE.sub(lambda m: _spaced(m, year_or_cardinal(int(m.group(0)))), text)
    return text


_OFFICIAL_MARKS = {k: v for k, v in EN_PUNCTUATION_MAP.items() if k in "。！？"}
"""The entries of the official English punctuation map that take effect."""


def normalize(text: str, keep_pauses: bool = True) -> str:
    """Official english.text_normalize: punctuation map, expansion, filter, collapse repeated marks.

    ``keep_pauses``: keep as pauses the marks the official rules drop ("…", ";", ":", a mark after a space
    as in "the first ..."), and trim the ends; False follows the official rules there (the dataset step, so
    that its text column equals the official ``2-name2text.txt``)."""
    text = text.translate(FULLWIDTH_TO_ASCII)
    if not keep_pauses:  # the official collapse drops marks written after a space ("the first ...", "nine !")
        text = re.sub(r"(\s)[.,?!…\-]+(?![\d.])", r"\1", text)
    for pattern, words in _ABBREVIATIONS:
        text = re.sub(pattern, functools.partial(_spaced, words=words), text)
    # Numbers first: the official order maps ":" to "," before its time rule, so "13:30" never
    # matched there; expanding first reads clock times as intended.
    text = normalize_numbers(text)
    # The official map's ";:" and quote entries never match (its keys are escaped as literal strings), so
    # those marks are filtered out there; we read ";" and ":" as pauses unless following the official rules.
    text = map_punctuation(text, EN_PUNCTUATION_MAP if keep_pauses else _OFFICIAL_MARKS)
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")  # strip accents
    text = re.sub("%", lambda m: _spaced(m, "percent"), text)
    # The official filter drops "…" and collapses "..." to "."; both become "." here.
    if keep_pauses:
        text = text.replace("…", ".")
    text = re.sub(r"[^ A-Za-z'.,?!\-]+", _gap, text)
    # Official: a capital inside a word starts a new one ("NASA" -> "N A S A", "iPhone" -> "i Phone").
    text = re.sub(r"(?<!^)(?<!\s)([A-Z])", r" \1", text)
    # Spaces are kept as written (the official text column keeps "logged on.  Please"); only the ends
    # are trimmed. A mark after spaces would be dropped by the official collapse rule below ("nine !"):
    # attach it.
    # keep_pauses off: the marks the writer put after a space went at the start; the official rules keep the
    # space left where such a mark was ("the first "), so only the start is trimmed.
    text = re.sub(r" +(?=[.,?!])", "", text.strip() if keep_pauses else text.lstrip())
    text = collapse_repeated_punctuation(text, after_space=True)
    return text.strip() if keep_pauses else text
