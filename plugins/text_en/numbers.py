"""English number words: cardinals, ordinals, years, decimals.

Readings follow what the official GPT-SoVITS English normaliser gets from ``inflect``:
no "and" (``andword=""``), a comma after each thousand group ("three thousand, five hundred"),
years 1001-2999 read in pairs ("nineteen ninety nine", "nineteen oh five") except 2000-2009
("two thousand five") and whole hundreds ("nineteen hundred"). Tens and units are written with a
space rather than inflect's hyphen: the official pipeline splits "twenty-three" into two words before
looking them up, so the phonemes are the same.
"""

from __future__ import annotations

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")

_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_hundred(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n, 10)
    return _TENS[tens] if unit == 0 else f"{_TENS[tens]} {_UNITS[unit]}"


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append(f"{_UNITS[hundreds]} hundred")
    if rest:
        parts.append(_below_hundred(rest))
    return " ".join(parts)


def cardinal(n: int) -> str:
    """``1234`` -> "one thousand, two hundred thirty four"; negatives get "negative"."""
    if n < 0:
        return "negative " + cardinal(-n)
    if n == 0:
        return "zero"
    if n >= 1000 ** len(_SCALES):
        return digits(str(n))  # beyond quadrillions nobody reads groups: say the digits
    groups: list[str] = []
    scale = 0
    while n:
        n, group = divmod(n, 1000)
        if group:
            words = _below_thousand(group)
            groups.append(f"{words} {_SCALES[scale]}".strip())
        scale += 1
    return ", ".join(reversed(groups))


def digits(s: str) -> str:
    """Read a digit string one digit at a time ("007" -> "zero zero seven")."""
    return " ".join(_UNITS[int(c)] for c in s if c.isdigit())


def ordinal(n: int) -> str:
    """``21`` -> "twenty first"."""
    words = cardinal(n)
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}".strip()


def year_or_cardinal(n: int) -> str:
    """Official _expand_number: numbers between 1000 and 3000 (exclusive) are read as years."""
    if not 1000 < n < 3000:
        return cardinal(n)
    if n == 2000:
        return "two thousand"
    if 2000 < n < 2010:
        return "two thousand " + cardinal(n % 100)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(high) + " hundred"
    low_words = "oh " + _UNITS[low] if low < 10 else _below_hundred(low)
    return f"{_below_hundred(high)} {low_words}"


def decimal(text: str) -> str:
    """``"3.14"`` -> "three point one four" (official: integer part, "point", then each digit)."""
    whole, _, frac = text.partition(".")
    return f"{year_or_cardinal(int(whole or '0'))} point {digits(frac)}"
