"""Mixed zh/en frontend, plugin registration, and what bad input gets."""

from __future__ import annotations

import pytest

from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import TextInputError, UnsupportedLanguageError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.text_common.langsplit import split_language_runs
from anchorvoice.plugins.text_common.registry import frontend_for_language, installed_languages
from anchorvoice.plugins.text_en import plugin as en_plugin
from anchorvoice.plugins.text_en.frontend import EnglishFrontend
from anchorvoice.plugins.text_zh import plugin as zh_plugin
from anchorvoice.plugins.text_zh.frontend import ChineseFrontend
from anchorvoice.plugins.text_zh.mixed import MixedFrontend


@pytest.fixture(scope="module")
def mixed() -> MixedFrontend:
    return MixedFrontend()


def test_mixed_golden_ids(mixed: MixedFrontend) -> None:
    # 你好 ni2 hao3 , | Hello HH AH0 L OW1 world W ER1 L D ! | 我是小明 wo3 shi4 xiao3 ming2 .
    frame = mixed.phonemize(TextFrame("你好，Hello world! 我是小明。", "auto"))
    assert frame.symbols == (
        "n i2 h ao3 , HH AH0 L OW1 W ER1 L D ! w o3 sh ir4 x iao3 m ing2 .".split()
    )
    assert frame.ids.tolist() == [
        227, 167, 158, 119, 1, 51, 12, 62, 68, 91, 39, 62, 26, 0, 316, 232, 251, 214, 317, 188, 225, 202, 3
    ]
    assert frame.text == "你好,Hello world!我是小明."
    assert frame.word2ph == [2, 2, 1, 4, 4, 1, 2, 2, 2, 2, 1]


def test_mixed_english_word_inside_chinese(mixed: MixedFrontend) -> None:
    # 我用 wo3 yong4 | i Phone: AY1 F OW1 N | 打电话 da3 dian4 hua4
    frame = mixed.phonemize(TextFrame("我用iPhone打电话", "auto"))
    assert frame.ids.tolist() == [316, 232, 318, 238, 22, 49, 68, 64, 127, 99, 127, 179, 158, 263]


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("你好，Hello world! 我是小明。", [("zh", "你好，"), ("en", "Hello world! "), ("zh", "我是小明。")]),
        ("Hello. 2024年很好", [("en", "Hello. "), ("zh", "2024年很好")]),
        ("我有3个apple", [("zh", "我有3个"), ("en", "apple")]),
        ("气温-3°C，跑了5km", [("zh", "气温-3°C，跑了5km")]),
        ("123", [("zh", "123")]),
    ],
)
def test_language_runs(text: str, runs: list[tuple[str, str]]) -> None:
    assert split_language_runs(text) == runs


@pytest.mark.parametrize("text", ["", "   ", "!!!", "。，？", "😀🎉", "……"])
@pytest.mark.parametrize(
    ("cls", "language"), [(EnglishFrontend, "en"), (ChineseFrontend, "zh"), (MixedFrontend, "auto")]
)
def test_nothing_to_speak_is_refused(cls: type, language: str, text: str) -> None:
    frontend = cls()
    with pytest.raises(TextInputError, match="empty|nothing|no letters"):
        frontend.phonemize(TextFrame(text, language))
    with pytest.raises(TextInputError):
        frontend.split_sentences(text)


def test_chinese_frontend_reads_latin_words_as_english(mixed: MixedFrontend) -> None:
    # every official Chinese mode sends Latin runs to the English frontend
    zh = ChineseFrontend()
    text = "我用iPhone打电话"
    assert zh.phonemize(TextFrame(text, "zh")).ids.tolist() == mixed.phonemize(TextFrame(text, "auto")).ids.tolist()
    only_en = zh.phonemize(TextFrame("only english here", "zh"))
    assert only_en.symbols == EnglishFrontend().phonemize(TextFrame("only english here", "en")).symbols


def test_fullwidth_letters_and_digits(mixed: MixedFrontend) -> None:
    # full-width ＡＢＣ / １２３ are read like ABC / 123 (official F2H tables)
    assert mixed.phonemize(TextFrame("我用ＡＢＣ打电话１２３", "auto")).text == "我用A B C打电话一百二十三"


def test_script_the_chinese_frontend_cannot_read() -> None:
    with pytest.raises(TextInputError, match="check the language"):
        ChineseFrontend().phonemize(TextFrame("こんにちは", "zh"))


def test_wrong_language_for_frontend() -> None:
    with pytest.raises(UnsupportedLanguageError, match="'en'.*'ja'"):
        EnglishFrontend().phonemize(TextFrame("こんにちは", "ja"))


def test_registration_through_hooks_and_unsupported_language() -> None:
    pm = PluginManager()
    assert pm.register(en_plugin, "text-en")
    assert pm.register(zh_plugin, "text-zh")
    assert not pm.failures
    assert pm.names("text_frontend") == ["auto", "en", "zh"]
    assert installed_languages(pm) == {"en": "en", "zh": "zh", "auto": "auto", "zh-en": "auto"}
    assert frontend_for_language(pm, "zh") is ChineseFrontend
    with pytest.raises(UnsupportedLanguageError) as err:
        frontend_for_language(pm, "ja")
    message = str(err.value)
    assert "'ja'" in message and "en" in message and "zh" in message and "auto" in message


@pytest.mark.parametrize(
    ("cls", "text"), [(EnglishFrontend, "Hello there."), (ChineseFrontend, "你好。"), (MixedFrontend, "你好 hello")]
)
def test_stage_contract(cls: type, text: str) -> None:
    from anchorvoice.engine.testing import check_stage

    check_stage(cls, inputs={"text": text})


def test_third_party_language_registers_the_same_way() -> None:
    """A plugin adds a language with the same hook the built-ins use, and the registry finds it."""
    from types import SimpleNamespace

    from anchorvoice.engine.hookspecs import hookimpl
    from anchorvoice.plugins.text_common.base import GsvFrontend

    class ToyFrontend(GsvFrontend):
        name = "toy"
        languages = ("xx",)

        def g2p(self, text: str) -> tuple[str, list[str], list[int]]:
            syms = ["a" if c.isalpha() else "," for c in text]
            return text, syms, [1] * len(syms)

    @hookimpl
    def register_text_frontends(register):  # noqa: ANN001 - pluggy passes the registrar
        register(ToyFrontend)

    pm = PluginManager()
    assert pm.register(SimpleNamespace(register_text_frontends=register_text_frontends), "toy-lang")
    assert pm.register(en_plugin, "text-en")
    cls = frontend_for_language(pm, "xx")
    frame = cls().phonemize(TextFrame("abcdef", "xx"))
    assert frame.symbols == ["a"] * 6 and frame.ids.tolist() == [96] * 6  # "a" is v2 id 96
