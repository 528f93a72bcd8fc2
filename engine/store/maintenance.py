"""`voices gc` and `voices verify`: what a home holds, what no voice needs, and what is damaged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from anchorvoice.engine.store import history
from anchorvoice.engine.store.blobs import BlobInfo
from anchorvoice.engine.store.files import home_lock

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice, VoiceLibrary


@dataclass
class GcReport:
    """What ``gc`` deleted."""

    blobs: list[BlobInfo] = field(default_factory=list)
    """Blobs no version of any voice referenced."""
    clips: list[Path] = field(default_factory=list)
    """Reference clips no version of their voice names."""

    @property
    def freed_bytes(self) -> int:
        return sum(b.size for b in self.blobs)


@dataclass
class VerifyReport:
    """What ``verify`` found."""

    checked: int = 0
    """Blobs re-hashed."""
    damaged: dict[str, str] = field(default_factory=dict)
    """Blob SHA-256 -> what is wrong with it."""
    broken_voices: dict[str, list[str]] = field(default_factory=dict)
    """Voice name -> the model kinds whose blob is damaged or missing (other voices are unaffected)."""

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.broken_voices


def voice_problems(library: VoiceLibrary, voice: Voice) -> list[str]:
    """The model kinds of ``voice`` whose blob (or a base it depends on) is missing or marked broken."""
    bad = []
    for kind, sha in voice.blobs.items():
        if any(library.blobs.is_broken(s) for s in library.blobs.closure([sha])):
            bad.append(kind)
    return bad


def gc(library: VoiceLibrary) -> GcReport:
    """Delete unreferenced blobs and reference clips (old versions keep theirs: they stay loadable)."""
    report = GcReport()
    with home_lock(library.home):
        report.blobs = library.blobs.gc(library.referenced_blobs())
        for name in library.names():
            folder = library.folder_of(name)
            used = {str(r) for d in history.all_manifests(folder) for r in d.get("references", [])}
            refs = folder / "refs"
            for clip in sorted(refs.glob("*.wav")) if refs.is_dir() else []:
                if clip.relative_to(folder).as_posix() not in used:
                    clip.unlink()
                    report.clips.append(clip)
    return report


def verify(library: VoiceLibrary) -> VerifyReport:
    """Re-hash every blob; name the damaged ones and the voices (any version in use) that need them."""
    report = VerifyReport()
    for sha in library.blobs.shas():
        report.checked += 1
        problem = library.blobs.verify(sha)
        if problem:
            report.damaged[sha] = problem
    for voice in library.list():
        bad = voice_problems(library, voice)
        if bad:
            report.broken_voices[voice.name] = bad
    return report
