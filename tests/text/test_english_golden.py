"""Golden phoneme ids of the English frontend.

Expected sequences were written by hand: readings from the official GPT-SoVITS dictionary
(``text/cmudict.rep``, CMUdict 0.7b, first pronunciation; every word here reads the same in it as in
the later CMUdict they were first taken from), numbers read as the official normaliser reads them,
punctuation kept as the v2 table's marks, ids = positions in the official symbols2.py table (e.g. "," = 1, "." = 3,
"HH" = 51, "AH0" = 12).
"""

from __future__ import annotations

import json
from pathlib import Path

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


def test_out_of_vocabulary_words_read_as_the_official_frontend_reads_them(en: EnglishFrontend) -> None:
    """Words in no dictionary: the official ``qryword`` (names, spelling, possessives, wordsegment) and g2p_en's
    network, against what the official code wrote (``tests/fixtures/make_g2p_oracle.py``)."""
    oracle = json.loads((Path(__file__).parents[1] / "fixtures" / "g2p_oracle.json").read_text())["words"]
    assert len(oracle) > 1000
    network = {w: en.lexicon.oov.pronounce(w) for w in oracle}
    assert {w: p for w, p in network.items() if p != oracle[w]["predict"]} == {}
    query = {w: en.lexicon.query(w) for w in oracle}
    assert {w: p for w, p in query.items() if p != oracle[w]["qryword"]} == {}
    # the paths it covers: a split into dictionary words, spelling, the network, a possessive
    assert oracle["moonlamp"]["qryword"] == ["M", "UW1", "N", "L", "AE1", "M", "P"]
    assert oracle["xq"]["qryword"] == ["EH1", "K", "S", "K", "Y", "UW1"]
    assert oracle["touchtone"]["qryword"] == oracle["touchtone"]["predict"] == ["T", "AH1", "CH", "T", "OW2", "N"]
    assert oracle["zint's"]["qryword"][-1:] == ["Z"] and oracle["zorbax's"]["qryword"][-2:] == ["AH0", "Z"]
    frame = en.phonemize(TextFrame("Glimmerwhisk zorblaxes quietly.", "en"))
    assert all(s in en.table for s in frame.symbols)
    assert frame.symbols[-1] == "."


@pytest.mark.parametrize(("text", "official"), [
    ("Please enter the first ...", "Please enter the first "),  # what the official text_normalize returns
    ("Press ...", "Press "),
    ("To hear the next message press 6, to repeat", "To hear the next message press six, to repeat"),
    ("Hello world.", "Hello world."),
    ("not at their desk; I will try", "not at their desk I will try"),  # its ";" entry never matches
])
def test_dataset_text_follows_the_official_mark_rules(text: str, official: str) -> None:
    """keep_pauses off (the dataset step): marks after a space are dropped and the space kept, as the official
    normalisation does; the TTS default keeps them as pauses."""
    from anchorvoice.plugins.text_en.normalize import normalize

    assert normalize(text, keep_pauses=False) == official
    assert normalize("Please enter the first ...") == "Please enter the first."
