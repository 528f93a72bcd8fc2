"""Recordings folders of real speech (Debian's Asterisk prompts) with their published transcripts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from anchorvoice.audio_io import read_audio, write_audio
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.frames import AudioFrame
from tests.conftest import asterisk_clip

TEXTS = {
    "demo-thanks": "Goodbye. Thank you for trying out the Asterisk Open Source PBX.",
    "agent-pass": "Please enter your password followed by the pound key.",
    "demo-enterkeywords": "Please enter one or more keywords separated by star and then press the pound key.",
    "conf-onlyperson": "You are currently the only person in this conference.",
    "vm-options": "Press 1 to record your unavailable message, press 2 to record your busy message, press 3 to "
    "record your name, press 4 to record your temporary greeting, press 5 to change your password, press star "
    "to return to the main menu.",
}
"""Transcripts from asterisk-core-sounds-en's core-sounds-en.txt."""

REFERENCE = Path("/work/shared/gsv_reference")


def recordings(folder: Path, names: list[str]) -> Path:
    """Copy the named prompts (.g722) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(asterisk_clip(n), folder / f"{n}.g722")
    return folder


def list_file(path: Path, names: list[str], lang: str = "en") -> Path:
    path.write_text("".join(f"/somewhere/{n}.g722|spk|{lang}|{TEXTS[n]}\n" for n in names), encoding="utf-8")
    return path


def long_recording(path: Path, names: list[str], gap_s: float = 1.0, rate: int = 44100) -> Path:
    """One WAV of the prompts joined by ``gap_s`` of near-silence, at ``rate``, stereo (slicer input)."""
    parts = []
    for n in names:
        parts.append(read_audio(asterisk_clip(n), rate).samples)
        parts.append(np.random.default_rng(0).normal(0, 1e-4, int(gap_s * rate)).astype(np.float32))
    mono = np.concatenate(parts)
    write_audio(path, AudioFrame(mono, rate))
    return path


def plugins_with_extras() -> PluginManager:
    """Built-in plugins plus the ASR and denoise plugins (registered in code: a stale editable install may
    not list their entry points yet)."""
    import anchorvoice.plugins.asr_whisper as asr
    import anchorvoice.plugins.denoise as denoise

    pm = PluginManager()
    pm.load_entry_points(third_party=False)
    for name, module in (("asr-whisper", asr), ("denoise", denoise)):
        if name not in pm.plugins:
            pm.register(module, name, origin="builtin")
    return pm
