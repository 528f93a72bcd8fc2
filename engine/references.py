"""Generic rules for reference clips (a model's own rules come from its plugin's ``check_voice``)."""

from __future__ import annotations

import logging
from pathlib import Path

from anchorvoice.audio_io import audio_channels, rms_dbfs
from anchorvoice.errors import ReferenceAudioError
from anchorvoice.frames import AudioFrame

MIN_REFERENCE_S = 1.0
"""Shorter clips carry too little pitch/envelope evidence for the DSP converter."""
SILENCE_DBFS = -55.0
"""A reference quieter than this (RMS) is treated as silent."""
COMMON_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Sample rates recordings usually have; another one is kept but worth a note."""

log = logging.getLogger(__name__)


def validate_reference(frame: AudioFrame, source: str) -> None:
    """Refuse clips that are too short or silent (rules of a model come from its plugin's ``check_voice``)."""
    if frame.duration < MIN_REFERENCE_S:
        raise ReferenceAudioError(
            f"reference {source} is {frame.duration:.2f} s long; give at least {MIN_REFERENCE_S:.0f} s "
            f"of clean speech (3-10 s is best)"
        )
    level = rms_dbfs(frame.samples)
    if level < SILENCE_DBFS:
        raise ReferenceAudioError(
            f"reference {source} is silent (RMS {level:.1f} dBFS); "
            "record the voice louder or pick another clip"
        )


def note_reference(path: Path, frame: AudioFrame) -> None:
    """Warn about what was done to a clip that is not plain mono at a common rate (it is still used)."""
    channels = audio_channels(path)
    if channels > 1:
        log.warning("%s: %d channels averaged to mono for the voice", path.name, channels)
    if frame.sample_rate not in COMMON_RATES:
        log.warning("%s: unusual sample rate %d Hz, kept as is; each converter resamples it to its own rate",
                    path.name, frame.sample_rate)
