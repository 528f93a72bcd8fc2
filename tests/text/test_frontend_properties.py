"""Any text either phonemises consistently or is refused with TextInputError -- never a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchorvoice.errors import TextInputError
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.text_en.frontend import EnglishFrontend
from anchorvoice.plugins.text_zh.frontend import ChineseFrontend
from anchorvoice.plugins.text_zh.mixed import MixedFrontend

PIECES = list("abcXYZ 0123456789.,!?;:'\"-$£%/&@#()…—～，。！？、：“”《》你好世界一不个儿了的我是嗯￥^°😀é\n") + [
    "12:30", "2024-01-02", "3.5%", "1/2", "13800138000", "1st", "Mr.", "e.g.", "...", "——", "hello", "世界",
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=20).map("".join)


@pytest.fixture(scope="module")
def frontends() -> dict[str, object]:
    return {"en": EnglishFrontend(), "zh": ChineseFrontend(), "auto": MixedFrontend()}


@pytest.mark.parametrize("language", ["en", "zh", "auto"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_any_text_is_spoken_or_refused(frontends: dict, language: str, text: str) -> None:
    frontend = frontends[language]
    try:
        frame = frontend.phonemize(TextFrame(text, language))
    except TextInputError:
        return
    assert len(frame.ids) > 0
    assert sum(frame.word2ph) == len(frame.ids) == len(frame.symbols)
    assert 0 <= frame.ids.min() and frame.ids.max() < len(frontend.table)
    assert frontend.table.to_symbols(frame.ids) == frame.symbols
