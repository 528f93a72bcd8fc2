"""The official inference's prompt and text rules, applied by the ``gsv-t2s`` prosody stage."""

from __future__ import annotations

import numpy as np

from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.gsv.prompt_rules import (
    PROMPT_PAD_SAMPLES,
    closed_sentence,
    lead_short_sentence,
    padded_reference,
)
from anchorvoice.plugins.gsv.t2s_stage import GsvT2S


def test_reference_gets_0_3_s_of_zeros_counted_at_32_khz() -> None:
    assert PROMPT_PAD_SAMPLES == 9600
    ref = AudioFrame(np.linspace(-0.5, 0.5, 16000, dtype=np.float32), 16000)
    out = GsvT2S().prompt_reference(ref)
    assert out.sample_rate == 16000 and out.samples.dtype == np.float32
    assert len(out.samples) == 16000 + 9600
    np.testing.assert_array_equal(out.samples[:16000], ref.samples)
    assert not np.any(out.samples[16000:])
    np.testing.assert_array_equal(padded_reference(ref).samples, out.samples)


def test_reference_text_gets_a_final_stop_in_its_language() -> None:
    t2s = GsvT2S()
    assert t2s.prompt_text(" hello there ", "en") == "hello there."
    assert t2s.prompt_text("你好", "zh") == "你好。"
    assert t2s.prompt_text("すごい", "ja") == "すごい。"
    assert t2s.prompt_text("done!", "en") == "done!"
    assert t2s.prompt_text("好，", "zh") == "好，"
    assert closed_sentence("", "en") == ""


def test_short_first_sentence_gets_a_leading_stop() -> None:
    t2s = GsvT2S()
    assert t2s.plan_sentences(["Hi!", "How are you?"], "en") == [".Hi!", "How are you?"]
    assert t2s.plan_sentences(["好。", "你好吗？"], "zh") == ["。好。", "你好吗？"]
    assert t2s.plan_sentences(["Hello!", "Hi!"], "en") == ["Hello!", "Hi!"]  # only the first sentence
    assert lead_short_sentence([], "en") == []
