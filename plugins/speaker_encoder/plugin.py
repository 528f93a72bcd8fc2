"""Entry point ``speaker-encoder``: a GE2E d-vector of every voice with reference clips (``speaker_embedding``).

For timbre families (``voices similar`` / ``voices cluster``) across voices that have no SoVITS model of
their own (embedded-default voices, Piper or other base voices with reference clips): Resemblyzer's
bundled encoder weights, read as tensors only (:mod:`anchorvoice.plugins.speaker_encoder.ge2e`). The
vector is the renormalised mean of the clips' embeddings, computed once per voice version and kept in
the voice's feature cache. Without ``resemblyzer`` installed the hook answers None (``voices similar``
and ``voices cluster`` then say which voices lack an embedding and what to install).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anchorvoice.engine.hookspecs import hookimpl
from anchorvoice.engine.store.features import feature_key, file_identity

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

SPACE = "ge2e"
"""The embedding space's name (256-d GE2E d-vectors of Resemblyzer's weights)."""


def available() -> bool:
    """Whether the encoder's weights are installed (``resemblyzer`` located, not imported)."""
    from anchorvoice.plugins.speaker_encoder.ge2e import find_weights

    return find_weights() is not None


def voice_embedding(voice: Voice, weights: Path) -> np.ndarray:
    """The voice's unit-length d-vector: the mean over its reference clips, renormalised (cached)."""
    from anchorvoice.plugins.speaker_encoder.ge2e import SAMPLE_RATE, SpeakerEncoder

    key = feature_key(SPACE, file_identity(weights), [file_identity(r) for r in voice.references])

    def compute() -> dict[str, np.ndarray]:
        enc = SpeakerEncoder(weights)
        each = [enc.embed(voice.load_reference(SAMPLE_RATE, i).samples) for i in range(len(voice.references))]
        mean = np.mean(each, axis=0)
        return {"vector": mean / (np.linalg.norm(mean) or 1.0)}

    return np.asarray(voice.features().get_or_compute(key, compute)["vector"], dtype=np.float64)


@hookimpl
def speaker_embedding(voice: Voice) -> tuple[str, list[float]] | None:
    """(``ge2e``, the voice's d-vector) for a voice with reference clips, when resemblyzer is installed."""
    from anchorvoice.plugins.speaker_encoder.ge2e import find_weights

    weights = find_weights()
    if weights is None or not voice.references:
        return None
    return SPACE, [float(x) for x in voice_embedding(voice, weights)]
