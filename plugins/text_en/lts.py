"""Letter-to-sound rules for English words that are in no dictionary.

The official frontend predicts such words with g2p_en's neural model (needs nltk data and weights);
these rules need nothing. They read spelling patterns left to right, longest pattern first, the way
classic rule sets (NRL / Elovitz et al. 1976, "Letter-to-sound rules for automatic translation of
English text to phonetics") do, but far smaller: common digraphs and vowel teams, r-controlled
vowels, silent final "e" with long vowels before it, soft "c"/"g", doubled consonants. Stress: the
first vowel gets primary stress (1), all others none (0) -- most English words of two syllables stress
the first one.
"""

from __future__ import annotations

_VOWELS = frozenset("aeiouy")

# Patterns that do not depend on context, longest first (matched greedily).
_FIXED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tion", ("SH", "AH", "N")),
    ("sion", ("ZH", "AH", "N")),
    ("ture", ("CH", "ER")),
    ("ough", ("AO",)),
    ("augh", ("AO",)),
    ("eigh", ("EY",)),
    ("tch", ("CH",)),
    ("igh", ("AY",)),
    ("sch", ("S", "K")),
    ("dge", ("JH",)),
    ("ch", ("CH",)),
    ("sh", ("SH",)),
    ("th", ("TH",)),
    ("ph", ("F",)),
    ("wh", ("W",)),
    ("ck", ("K",)),
    ("ng", ("NG",)),
    ("qu", ("K", "W")),
    ("ee", ("IY",)),
    ("ea", ("IY",)),
    ("oo", ("UW",)),
    ("ou", ("AW",)),
    ("ai", ("EY",)),
    ("ay", ("EY",)),
    ("oa", ("OW",)),
    ("oi", ("OY",)),
    ("oy", ("OY",)),
    ("au", ("AO",)),
    ("aw", ("AO",)),
    ("ei", ("EY",)),
    ("ue", ("UW",)),
    ("ew", ("UW",)),
    ("ar", ("AA", "R")),
    ("er", ("ER",)),
    ("ir", ("ER",)),
    ("ur", ("ER",)),
    ("or", ("AO", "R")),
)
_SHORT = {"a": "AE", "e": "EH", "i": "IH", "o": "AA", "u": "AH", "y": "IH"}
_LONG = {"a": "EY", "e": "IY", "i": "AY", "o": "OW", "u": "UW", "y": "AY"}
_CONSONANTS = {
    "b": ("B",), "d": ("D",), "f": ("F",), "h": ("HH",), "j": ("JH",), "k": ("K",), "l": ("L",),
    "m": ("M",), "n": ("N",), "p": ("P",), "q": ("K",), "r": ("R",), "s": ("S",), "t": ("T",),
    "v": ("V",), "w": ("W",), "x": ("K", "S"), "z": ("Z",),
}
_VOWEL_PHONES = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())


def _is_vowel(word: str, i: int) -> bool:
    return 0 <= i < len(word) and word[i] in _VOWELS and not (word[i] == "y" and i == 0)


def _special(word: str, i: int) -> tuple[int, tuple[str, ...]] | None:
    """Context-dependent patterns at ``i``: (letters consumed, phones) or None."""
    rest = word[i:]
    n = len(word)
    if i == 0 and rest[:2] in ("kn", "gn"):
        return 2, ("N",)
    if i == 0 and rest[:2] == "wr":
        return 2, ("R",)
    if rest == "mb":
        return 2, ("M",)
    if rest[:2] == "gh":
        return 2, (("G",) if i == 0 else ())
    if rest == "ow" or (rest[:2] == "ow" and i + 2 < n and not _is_vowel(word, i + 2)):
        return 2, ("OW",) if i + 2 == n else ("AW",)
    if rest == "ey":
        return 2, ("IY",)
    if rest == "ie":
        return 2, ("IY",)
    if rest == "le" and i > 0 and not _is_vowel(word, i - 1):
        return 2, ("AH", "L")
    if rest == "ed" and i > 1 and word[i - 1] not in "td" and not _is_vowel(word, i - 1):
        return 2, ("D",)
    if rest == "e" and i > 1 and any(_is_vowel(word, k) for k in range(i)):
        return 1, ()  # silent final e
    return None


def _vowel(word: str, i: int) -> tuple[str, ...]:
    ch = word[i]
    n = len(word)
    if ch == "y":
        if i == n - 1:
            return ("IY",) if any(_is_vowel(word, k) for k in range(i)) else ("AY",)
        if i == 0 or _is_vowel(word, i + 1):
            return ("Y",)
    # Long vowel before a single consonant and a final or pre-vowel "e" ("make", "nineteen" aside).
    if i + 2 < n + 1 and i + 1 < n and not _is_vowel(word, i + 1) and word[i + 1] not in "xw":
        after = word[i + 2 : i + 3]
        if after == "e" and i + 3 == n:
            return (_LONG[ch],)
    if i == n - 1 and ch in "eo" and n <= 3:
        return (_LONG[ch],)  # "be", "go"
    return (_SHORT[ch],)


def _consonant(word: str, i: int) -> tuple[str, ...]:
    ch = word[i]
    nxt = word[i + 1 : i + 2]
    if ch == "c":
        return ("S",) if nxt and nxt in "eiy" else ("K",)
    if ch == "g":
        return ("JH",) if nxt and nxt in "eiy" and i + 2 < len(word) else ("G",)
    if ch == "x" and i == 0:
        return ("Z",)
    return _CONSONANTS.get(ch, ())


def _stress(phones: list[str]) -> list[str]:
    out = []
    seen_vowel = False
    for ph in phones:
        if ph in _VOWEL_PHONES:
            out.append(ph + ("0" if seen_vowel else "1"))
            seen_vowel = True
        else:
            out.append(ph)
    return out


def letter_to_sound(word: str) -> list[str]:
    """ARPAbet phones with stress for a lower-case word of letters a-z (other characters skipped)."""
    word = "".join(c for c in word.lower() if "a" <= c <= "z")
    phones: list[str] = []
    i = 0
    while i < len(word):
        special = _special(word, i)
        if special is not None:
            used, ph = special
            phones.extend(ph)
            i += used
            continue
        for pattern, ph in _FIXED:
            if word.startswith(pattern, i):
                phones.extend(ph)
                i += len(pattern)
                break
        else:
            ch = word[i]
            if ch in _VOWELS and not (ch == "y" and i == 0):
                phones.extend(_vowel(word, i))
            elif ch == "y":
                phones.append("Y")
            elif i > 0 and word[i - 1] == ch:
                pass  # doubled consonant: one sound
            else:
                phones.extend(_consonant(word, i))
            i += 1
    return _stress(phones)
