"""How the official GPT-SoVITS inference (``inference_webui.get_tts_wav``) prepares a prompt and the text.

* The 16 kHz reference gets 0.3 s of zeros appended before HuBERT, counted at 32 kHz: 9600 samples
  (the fixture README documents it).
* The reference text gets a final stop when it has none.
* A very short first sentence gets a stop in front: the GPT then starts from a clean boundary
  instead of running the prompt on into the target.

:class:`~anchorvoice.plugins.gsv.t2s_stage.GsvT2S` applies them through the prosody stage's
``prompt_reference`` / ``prompt_text`` / ``plan_sentences`` methods.
"""

from __future__ import annotations

import numpy as np

from anchorvoice.frames import AudioFrame

PROMPT_PAD_SAMPLES = 9600
"""Zeros appended to the 16 kHz reference before HuBERT (0.3 s counted at 32 kHz)."""
SHORT_FIRST_SENTENCE = 4
"""A first sentence with fewer characters than this (stripped) gets a leading stop."""

_CLOSING = set(".!?;,。！？；，…")


def stop_for(language: str) -> str:
    """The sentence stop of ``language``: the ideographic one for zh/ja/yue, '.' otherwise."""
    return "。" if language.startswith(("zh", "ja", "yue")) else "."


def padded_reference(reference: AudioFrame) -> AudioFrame:
    """The reference with :data:`PROMPT_PAD_SAMPLES` zeros appended."""
    return reference.with_samples(np.concatenate([reference.samples, np.zeros(PROMPT_PAD_SAMPLES, np.float32)]))


def closed_sentence(text: str, language: str) -> str:
    """The reference text with a final stop, as the official inference appends one when missing."""
    text = text.strip()
    return text if not text or text[-1] in _CLOSING else text + stop_for(language)


def lead_short_sentence(sentences: list[str], language: str) -> list[str]:
    """``sentences`` with a stop put before the first one when it is very short."""
    if sentences and len(sentences[0].strip()) < SHORT_FIRST_SENTENCE:
        return [stop_for(language) + sentences[0], *sentences[1:]]
    return sentences
