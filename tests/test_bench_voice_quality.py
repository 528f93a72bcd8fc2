"""The quality bench's own pieces: word error rate, and (slow) the speaker encoder on real speech."""

from __future__ import annotations

import pytest

from bench.voice_quality import wer, words
from tests.plugins.speech import asterisk_clip


def test_wer_counts_substitutions_insertions_and_deletions() -> None:
    assert wer("please enter your password", "please enter your password") == 0.0
    assert wer("please enter your password", "please center your password") == 0.25
    assert wer("press 1 to mute", "Press one, to mute!") == 0.0  # digits and punctuation normalised
    assert wer("thank you", "thank you very much") == 1.0
    assert words("Call-Forward on Busy.") == ["call", "forward", "on", "busy"]


@pytest.mark.slow
def test_speaker_encoder_tells_the_same_speaker_from_another() -> None:
    """Resemblyzer's bundled weights, loaded as tensors only: one human speaker's two prompts are
    nearer each other than either is to flite's male voice."""
    pytest.importorskip("resemblyzer")
    from anchorvoice.audio_io import resample
    from anchorvoice.frames import TextFrame
    from anchorvoice.plugins.base_voice import FliteConfig, FliteVoice
    from bench.speaker_encoder import SpeakerEncoder, cosine

    enc = SpeakerEncoder()
    a = enc.embed(asterisk_clip("agent-pass"))
    b = enc.embed(asterisk_clip("auth-incorrect"))
    y = FliteVoice(FliteConfig(voice="rms")).synthesize(TextFrame("Please enter your password, then the pound key."))
    c = enc.embed(resample(y.samples, y.sample_rate, 16000))
    assert a.shape == (256,)
    assert cosine(a, b) > 0.8
    assert cosine(a, c) < cosine(a, b) - 0.15
