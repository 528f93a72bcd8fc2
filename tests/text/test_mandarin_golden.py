"""Golden phoneme ids of the Mandarin frontend.

Expected sequences were written by hand from the official rules: pinyin of each character,
tone sandhi (3-3 -> 2-3, 一/不 rules, neutral particles), the opencpop-strict initial/final
spelling (zero initials become y/w/AA/EE/OO, shi -> sh ir, yi -> y i), tone digit on the
final, marks as their own phoneme; ids = positions in the official symbols2.py table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorvoice.frames import TextFrame
from anchorvoice.plugins.text_zh.frontend import ChineseConfig, ChineseFrontend
from anchorvoice.plugins.text_zh.pinyin_map import syllable_phones

GOLDEN = [
    # 你好 ni3 hao3 -> ni2 hao3 (third-tone sandhi); 世界 shi4 jie4
    ("你好，世界！", "n i2 h ao3 , sh ir4 j ie4 !", [227, 167, 158, 119, 1, 251, 214, 221, 194, 0]),
    # 们 neutral; 一起: yi before a 3rd tone -> yi4; 看一看: yi neutral
    (
        "我们一起去看一看。",
        "w o3 m en5 y i4 q i3 q v4 k an4 y i5 k an4 .",
        [316, 232, 225, 144, 318, 169, 247, 168, 247, 299, 222, 110, 318, 170, 222, 110, 3],
    ),
    # 不 before a 4th tone -> bu2; 一 before a 1st tone -> yi4
    ("不怕，一天。", "b u2 p a4 , y i4 t ian1 .", [122, 256, 245, 100, 1, 318, 169, 252, 176, 3]),
    # 3 -> 三; 个 as a measure word is neutral; 我有 3-3 -> wo2 you3
    (
        "我有3个苹果。",
        "w o2 y ou3 s an1 g e5 p ing2 g uo3 .",
        [316, 231, 318, 242, 250, 107, 156, 134, 245, 202, 156, 292, 3],
    ),
    # official special pause: "￥" is read as "," and every "," phoneme becomes SP2 (id 78)
    (
        "你好￥我是小明。",
        "n i2 h ao3 SP2 w o3 sh ir4 x iao3 m ing2 .",
        [227, 167, 158, 119, 78, 316, 232, 251, 214, 317, 188, 225, 202, 3],
    ),
    # 50% -> 百分之五十
    (
        "增长50%。",
        "z eng1 zh ang3 b ai3 f en1 zh ir1 w u3 sh ir2 .",
        [319, 145, 320, 114, 122, 104, 155, 140, 320, 211, 316, 257, 251, 212, 3],
    ),
]


@pytest.fixture(scope="module")
def zh() -> ChineseFrontend:
    return ChineseFrontend()


@pytest.mark.parametrize(("text", "symbols", "ids"), GOLDEN)
def test_golden_ids(zh: ChineseFrontend, text: str, symbols: str, ids: list[int]) -> None:
    frame = zh.phonemize(TextFrame(text, "zh"))
    assert frame.symbols == symbols.split()
    assert frame.ids.tolist() == ids
    # word2ph: one entry per character of the normalised text, 2 per syllable, 1 per mark
    assert len(frame.word2ph) == len(frame.text)
    assert frame.word2ph == [1 if ch in ",.!?…-" else 2 for ch in frame.text]


def test_caret_is_a_long_pause(zh: ChineseFrontend) -> None:
    assert zh.phonemize(TextFrame("你好^我是小明。", "zh")).symbols[4] == "SP3"


def test_prepare_loads_dictionaries() -> None:
    zh = ChineseFrontend()
    zh.prepare(None)
    assert zh._posseg is not None and zh.bert is None


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("2024-03-05", "二零二四年三月五日"),
        ("12:05", "十二点零五分"),
        ("9:30", "九点半"),
        ("-3°C", "零下三度"),
        ("3.5", "三点五"),
        ("1/4", "四分之一"),
        ("1-5", "一到五"),
        ("007", "零零七"),
        ("13800138000", "幺三八零零幺三八零零零"),
        ("你好！！！", "你好!"),
        ("嗯……好吧", "恩…好吧"),
    ],
)
def test_normalisation(zh: ChineseFrontend, text: str, spoken: str) -> None:
    assert zh.g2p(text)[0] == spoken


@pytest.mark.parametrize(
    ("initial", "final", "phones"),
    [
        ("", "iou3", ["y", "ou3"]),
        ("", "ian4", ["y", "En4"]),
        ("", "ie3", ["y", "E3"]),
        ("", "van2", ["y", "van2"]),
        ("", "uei4", ["w", "ei4"]),
        ("", "a1", ["AA", "a1"]),
        ("", "er2", ["EE", "er2"]),
        ("", "ou1", ["OO", "ou1"]),
        ("zh", "i1", ["zh", "ir1"]),
        ("s", "i4", ["s", "i04"]),
        ("d", "uei4", ["d", "ui4"]),
        ("j", "v1", ["j", "v1"]),
        ("q", "uan2", ["q", "van2"]),
    ],
)
def test_opencpop_strict_mapping(initial: str, final: str, phones: list[str]) -> None:
    assert syllable_phones(initial, final) == phones


def test_erhua_takes_previous_tone(zh: ChineseFrontend) -> None:
    # 会儿: hui4 + er2 -> er4 (tone of the syllable before); 花儿 is on the official
    # not-erhua list and keeps er2
    assert zh.phonemize(TextFrame("等一会儿。", "zh")).symbols[-5:] == ["h", "ui4", "EE", "er4", "."]
    assert zh.phonemize(TextFrame("这儿有花儿。", "zh")).symbols[-5:] == ["h", "ua1", "EE", "er2", "."]


def test_jieba_cache_stays_in_configured_dir(tmp_path: Path) -> None:
    zh = ChineseFrontend(ChineseConfig(jieba_cache_dir=str(tmp_path)))
    zh.phonemize(TextFrame("今天天气很好。", "zh"))
    assert any(p.name.startswith("jieba") for p in tmp_path.iterdir())
