"""Mandarin text normalisation: numbers, dates, times, phone numbers, symbols, punctuation.

The official ``chinese2.text_normalize`` runs PaddleSpeech's ``zh_normalization.TextNormalizer``
then ``replace_punctuation``. This module does the same steps with our own rules and reads
numbers with ``cn2an`` (an2cn):

* dates: 2024-03-05 -> 二零二四年三月五日;
* clock times: 12:05 -> 十二点零五分, 12:30 -> 十二点半;
* temperatures: -3°C -> 零下三度;
* mobile and landline numbers digit by digit, 1 read 幺 on mobiles (official ``phone2str``);
* ranges: 1-5 -> 一到五; percents, fractions, decimals, negatives.

Numbers cn2an cannot read (leading zeros, more than 16 digits) are read digit by digit. Finally
marks are mapped onto the six v2 punctuation phonemes and everything that is neither a Han
character nor one of those marks is removed (Latin letters belong to the English frontend: use
the ``auto`` frontend for mixed text). Not done: traditional -> simplified conversion (pypinyin
reads traditional characters directly) and the official measure-word table beyond a few units.
"""

from __future__ import annotations

import re
import warnings

from anchorvoice.plugins.text_common.punctuation import (
    FULLWIDTH_TO_ASCII,
    ZH_PUNCTUATION_MAP,
    collapse_repeated_punctuation,
    map_punctuation,
)
from anchorvoice.plugins.text_common.symbols import PUNCTUATION

_DIGITS = "零一二三四五六七八九"
# Official TextNormalizer._split / _post_replace drop these before reading.
_SPECIAL_RE = re.compile(r"[《》【】<>{}()（）#&@“”^_|\\]")
_SYMBOL_WORDS = {
    "/": "每", "+": "加", "×": "乘", "÷": "除", "=": "等", "①": "一", "②": "二", "③": "三",
    "④": "四", "⑤": "五", "⑥": "六", "⑦": "七", "⑧": "八", "⑨": "九", "⑩": "十",
    "α": "阿尔法", "β": "贝塔", "γ": "伽玛", "δ": "德尔塔", "π": "派", "μ": "缪", "ω": "欧米伽",
}
_UNITS = {"km": "千米", "kg": "千克", "cm": "厘米", "mm": "毫米", "ml": "毫升", "m": "米", "g": "克"}

_DATE_RE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_TIME_RE = re.compile(r"(?<!\d)([01]?\d|2[0-4])[:：]([0-5]\d)(?:[:：]([0-5]\d))?(?!\d)")
_TEMP_RE = re.compile(r"(-?)(\d+(?:\.\d+)?)(?:°C|℃|°|摄氏度)")
_MOBILE_RE = re.compile(r"(?<!\d)(?:\+?86 ?)?(1[3-9]\d{9})(?!\d)")
_LANDLINE_RE = re.compile(r"(?<!\d)(0\d{2,3})-(\d{7,8})(?!\d)")
_RANGE_RE = re.compile(r"(\d+(?:\.\d+)?%?)\s*[-~～]\s*(\d+(?:\.\d+)?%?)")
_UNIT_RE = re.compile(r"(\d)\s*(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")(?![A-Za-z])")
_LEADING_ZERO_RE = re.compile(r"(?<![\d.])0\d+")
_LONG_RE = re.compile(r"\d{17,}")
_DIGIT_RUN_RE = re.compile(r"\d+")


def read_digits(s: str, *, alt_one: bool = False) -> str:
    """Digit by digit; ``alt_one`` reads 1 as 幺 (phone numbers)."""
    out = "".join(_DIGITS[int(c)] for c in s if c.isdigit())
    return out.replace("一", "幺") if alt_one else out


def read_number(s: str) -> str:
    """A number string (may hold '.', '%', '-') in Chinese words via cn2an."""
    import cn2an

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(cn2an.transform(s, "an2cn"))


def _time(m: re.Match[str]) -> str:
    hour, minute, second = m.group(1), m.group(2), m.group(3)
    out = read_number(str(int(hour))) + "点"
    if int(minute) == 30:
        out += "半"  # official replace_time: half past
    elif int(minute):
        out += ("零" if minute[0] == "0" else "") + read_number(str(int(minute))) + "分"
    if second and int(second):
        out += ("零" if second[0] == "0" else "") + read_number(str(int(second))) + "秒"
    return out


def _date(m: re.Match[str]) -> str:
    return f"{read_digits(m.group(1))}年{read_number(str(int(m.group(2))))}月{read_number(str(int(m.group(3))))}日"


def _temperature(m: re.Match[str]) -> str:
    return ("零下" if m.group(1) else "") + read_number(m.group(2)) + "度"


def normalize_numbers(text: str) -> str:
    """Replace every digit sequence of ``text`` by Chinese words."""
    text = re.sub(r"(\d),(?=\d{3}(?!\d))", r"\1", text)
    text = _DATE_RE.sub(_date, text)
    text = _TIME_RE.sub(_time, text)
    text = _TEMP_RE.sub(_temperature, text)
    text = _MOBILE_RE.sub(lambda m: read_digits(m.group(1), alt_one=True), text)
    text = _LANDLINE_RE.sub(lambda m: read_digits(m.group(1)) + "," + read_digits(m.group(2)), text)
    text = _RANGE_RE.sub(lambda m: read_number(m.group(1)) + "到" + read_number(m.group(2)), text)
    text = _UNIT_RE.sub(lambda m: m.group(1) + _UNITS[m.group(2)], text)
    text = _LEADING_ZERO_RE.sub(lambda m: read_digits(m.group(0)), text)
    text = _LONG_RE.sub(lambda m: read_digits(m.group(0)), text)
    text = read_number(text)
    # cn2an leaves numbers it cannot place (e.g. "1.2.3") as digits: read those one by one.
    return _DIGIT_RUN_RE.sub(lambda m: read_digits(m.group(0)), text)


def normalize(text: str) -> str:
    """Official chinese2.text_normalize: verbalise, map punctuation, keep Han characters and marks."""
    text = text.translate(FULLWIDTH_TO_ASCII)
    text = normalize_numbers(text)  # before spaces go: "2024-03-05 12:05" is a date and a time
    text = _SPECIAL_RE.sub("", text.replace("——", "").replace(" ", ""))
    for symbol, words in _SYMBOL_WORDS.items():
        text = text.replace(symbol, words)
    text = re.sub(r"(?<=[\u4e00-\u9fa5])-(?=[\u4e00-\u9fa5])", "减", text)  # official _post_replace
    text = text.replace("嗯", "恩").replace("呣", "母")  # official: the pinyin of 嗯/呣 has no final
    text = map_punctuation(text, ZH_PUNCTUATION_MAP)
    marks = "".join(re.escape(p) for p in PUNCTUATION)
    text = re.sub(f"[^\u4e00-\u9fa5{marks}]+", "", text)
    return collapse_repeated_punctuation(text)
