"""Mixed Chinese/English frontend ("auto"), as the official "auto" mode of ``get_phones_and_bert``.

The text is cut into runs by script (:func:`anchorvoice.plugins.text_common.langsplit.split_language_runs`),
each run goes through its own language frontend and the phonemes, ``word2ph`` and normalised texts
are joined in order; the short-text rule applies to the whole. With only Chinese and English
installed this is what the Chinese frontend already does with Latin words; "auto" differs in
loading both languages up front in ``prepare``, and is the name presets use for mixed chat text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from anchorvoice.plugins.text_zh.frontend import ChineseFrontend

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice


class MixedFrontend(ChineseFrontend):
    """Chinese with English words (or English with Chinese), one phoneme sequence."""

    name = "auto"
    languages: ClassVar[tuple[str, ...]] = ("auto", "zh-en")

    def prepare(self, voice: Voice | None) -> None:
        super().prepare(voice)
        self.english.prepare(voice)
