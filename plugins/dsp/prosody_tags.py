"""The built-in reference tagger: tags from measurable prosody, not an emotion classifier.

It measures three things on a clip and says them as ``key:value`` tags, which ``speak --style`` matches
by value too (``--style fast`` picks a ``pace:fast`` reference):

* ``pitch:wide`` / ``pitch:narrow`` -- the span between the 10th and 90th percentile of the voiced
  pitch (YIN, :func:`~.analysis.voiced_frames`), above :data:`WIDE_ST` or below :data:`NARROW_ST` semitones.
* ``energy:high`` / ``energy:low`` -- the mean level of the voiced frames, above :data:`LOUD_DBFS` or below
  :data:`SOFT_DBFS` dBFS (so it also reflects how loud the recording was made).
* ``pace:fast`` / ``pace:slow`` -- syllables per second of voiced speech, from the vowel groups of the
  transcript (Latin script) or its characters (CJK), above :data:`FAST_SPS` or below :data:`SLOW_SPS`.

Emotions (``excited``, ``sad``) need a trained classifier: a plugin adds one through the same
``tag_reference`` hook.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from anchorvoice.audio_io import resample
from anchorvoice.frames import AudioFrame
from anchorvoice.plugins.dsp.analysis import HOP, SAMPLE_RATE, voiced_frames

WIDE_ST, NARROW_ST = 9.0, 3.5
"""Pitch spans (semitones, 10th-90th percentile) of lively and of flat read speech."""
LOUD_DBFS, SOFT_DBFS = -16.0, -32.0
"""Mean voiced levels of a loud and of a quiet take."""
FAST_SPS, SLOW_SPS = 6.0, 3.0
"""Syllables per voiced second: conversational English runs at about 4-5."""
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def syllables(text: str) -> int:
    """A rough syllable count: CJK characters, plus vowel groups of the other words."""
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text.lower())
    return cjk + len(re.findall(r"[aeiouyàáâäèéêëìíîïòóôöùúûüæøœ]+", rest))


def prosody_tags(audio: AudioFrame, text: str = "") -> list[str]:
    """The tags this module's docstring describes (none for a clip with no voiced speech)."""
    x = resample(audio.samples, audio.sample_rate, SAMPLE_RATE)
    f0, voiced = voiced_frames(x)
    if voiced.sum() < 5:
        return []
    tags = []
    lo, hi = np.percentile(f0[voiced], [10, 90])
    span = 12 * np.log2(hi / lo)
    if span > WIDE_ST:
        tags.append("pitch:wide")
    elif span < NARROW_ST:
        tags.append("pitch:narrow")
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, HOP)), HOP)[::HOP][: len(voiced)]
    level = 10 * np.log10(np.mean(frames[voiced] ** 2) + 1e-12)
    if level > LOUD_DBFS:
        tags.append("energy:high")
    elif level < SOFT_DBFS:
        tags.append("energy:low")
    n = syllables(text)
    if n:
        rate = n / (voiced.sum() * HOP / SAMPLE_RATE)
        if rate > FAST_SPS:
            tags.append("pace:fast")
        elif rate < SLOW_SPS:
            tags.append("pace:slow")
    return tags


ENVELOPE_BINS = 32
"""The mean spectral envelope is averaged into this many bands for the coarse timbre vector."""


def envelope_embedding(stats: dict[str, Any]) -> list[float]:
    """A coarse timbre vector from the DSP converter's reference statistics: the band-averaged mean
    envelope (level removed, in units of 10 dB) and the median pitch in octaves above 100 Hz. Empty when
    the statistics are missing."""
    env = stats.get("mean_envelope_db")
    f0 = stats.get("median_f0_hz")
    if not env or not f0:
        return []
    e = np.asarray(env, dtype=np.float64)
    bands = np.array([b.mean() for b in np.array_split(e, ENVELOPE_BINS)])
    bands = (bands - bands.mean()) / 10.0
    return [float(np.log2(float(f0) / 100.0)), *map(float, bands)]
