"""Sentence splitting (official cut methods) and long input."""

from __future__ import annotations

import pytest

from anchorvoice.errors import ConfigError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.text_common.base import FrontendConfig
from anchorvoice.plugins.text_common.segmentation import split_text
from anchorvoice.plugins.text_en.frontend import EnglishFrontend
from anchorvoice.plugins.text_zh.frontend import ChineseConfig, ChineseFrontend


def test_cut_by_punctuation_keeps_decimals() -> None:
    assert split_text("It costs 3.5 dollars. Really? Yes, it does!") == [
        "It costs 3.5 dollars.",
        "Really?",
        "Yes,",
        "it does!",
    ]
    assert split_text("你好，我是小明。你呢？") == ["你好，", "我是小明。", "你呢？"]


def test_every_n_sentences() -> None:
    text = "一。二。三。四。五。六。"
    assert split_text(text, "every_n", sentences_per_chunk=4) == ["一。二。三。四。", "五。六。"]
    with pytest.raises(ConfigError):
        split_text(text, "every_n", sentences_per_chunk=0)


def test_length_method_merges_short_tail() -> None:
    sentences = ["a" * 30 + ".", "b" * 30 + ".", "c" * 10 + "."]
    # 31 + 31 > 50 closes the first chunk; the 11-character tail is merged into it
    assert split_text("".join(sentences), "length", min_chars=50) == ["".join(sentences)]


def test_none_and_punctuation_only_pieces() -> None:
    assert split_text("Hello there. ... !", "none") == ["Hello there. ... !"]
    assert split_text("Hi. ... ! Bye.") == ["Hi.", "Bye."]
    with pytest.raises(ConfigError):
        split_text("x", "bogus")  # type: ignore[arg-type]


def test_max_chars_without_punctuation() -> None:
    text = " ".join(["word"] * 300)  # 1499 characters, no marks
    chunks = split_text(text, max_chars=100)
    assert all(len(c) <= 100 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_long_english_paragraph_splits_and_phonemises() -> None:
    sentence = "The quick brown fox jumps over the lazy dog near 42 houses, doesn't it? "
    paragraph = (sentence * 70)[:5000]
    assert len(paragraph) == 5000
    en = EnglishFrontend(FrontendConfig(split_method="length", max_chars=200))
    chunks = en.split_sentences(paragraph)
    assert len(chunks) > 10 and all(len(c) <= 200 for c in chunks)
    frames = [en.phonemize(TextFrame(c, "en")) for c in chunks]
    assert all(len(f.ids) > 0 and sum(f.word2ph) == len(f.ids) for f in frames)


def test_long_chinese_paragraph_splits_and_phonemises() -> None:
    paragraph = ("今天天气很好，我们一起去公园散步，看见了三只小鸟在树上唱歌。" * 200)[:5000]
    zh = ChineseFrontend(ChineseConfig(split_method="every_n", sentences_per_chunk=4))
    chunks = zh.split_sentences(paragraph)
    assert len(chunks) > 50 and all(len(c) <= 510 for c in chunks)
    frame = zh.phonemize(TextFrame(chunks[0], "zh"))
    assert len(frame.word2ph) == len(frame.text)
    # a chunk with no marks at all is still cut at max_chars
    assert all(len(c) <= 510 for c in zh.split_sentences("好" * 5000))
