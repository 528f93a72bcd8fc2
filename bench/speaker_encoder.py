"""The GE2E speaker encoder the benches score speaker similarity with: the ``speaker-encoder`` plugin's
(:mod:`anchorvoice.plugins.speaker_encoder.ge2e`; Resemblyzer's bundled weights read as tensors only)."""

from anchorvoice.plugins.speaker_encoder.ge2e import SAMPLE_RATE, SpeakerEncoder, cosine, weights_path

__all__ = ["SAMPLE_RATE", "SpeakerEncoder", "cosine", "weights_path"]
