"""A GPT-SoVITS voice's speaker embedding: its SoVITS reference-encoder style vector ``ge`` (gin values).

This is the vector the decoder conditions its timbre on, so voices close in it sound alike under one
base; ``voices similar`` / ``voices cluster`` compare voices by it (``speaker_embedding`` hook). It is read
from the voice's feature cache when speaking has computed it, else computed once (loading the voice's
SoVITS model) and kept there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anchorvoice.plugins.gsv.stages_sovits import timbre_key

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice

SPACE = "gsv-ge"
"""The embedding space's name: vectors of different spaces are never compared."""


def gsv_speaker_embedding(voice: Voice) -> tuple[str, list[float]] | None:
    """(``gsv-ge``, the voice's ``ge``) for a voice with a SoVITS model; None otherwise."""
    sovits = voice.models.get("sovits")
    if sovits is None or not voice.references:
        return None
    cached = voice.features().get(timbre_key(Path(sovits).expanduser().resolve(), voice))
    if cached is None:
        from anchorvoice.plugins.gsv.stages_sovits import GsvSovitsDecoder

        stage = GsvSovitsDecoder()
        stage.prepare(voice)  # computes ge and keeps it in the voice's feature cache
        cached = voice.features().get(timbre_key(Path(sovits).expanduser().resolve(), voice))
        stage.close()
    if cached is None:
        return None
    return SPACE, [float(x) for x in np.asarray(cached["ge"]).ravel()]
