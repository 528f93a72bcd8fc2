"""Real human speech for tests: Debian's asterisk-core-sounds-en-g722 prompts (one female speaker,
raw G.722 at 16 kHz, CC-BY-SA), decoded by the engine's own reader (PyAV underneath)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anchorvoice.audio_io import read_audio

SOUNDS = Path("/usr/share/asterisk/sounds/en")
SAMPLE_RATE = 16000
"""G.722 is a 16 kHz wideband codec."""


def asterisk_clip(*names: str) -> np.ndarray:
    """The named prompts (file stems) decoded and joined, float32 mono at 16 kHz.

    Skips the test when the Debian package is not installed.
    """
    parts = []
    for name in names:
        path = SOUNDS / f"{name}.g722"
        if not path.exists():
            pytest.skip(f"{path} missing: apt-get install asterisk-core-sounds-en-g722")
        parts.append(read_audio(path, SAMPLE_RATE).samples)
    return np.concatenate(parts)
