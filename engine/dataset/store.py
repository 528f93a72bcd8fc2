"""A dataset folder on disk: its layout, its manifest, and writes that never leave half a file.

Layout (the official GPT-SoVITS experiment folder, so that the official trainers can read it too)::

    <home>/datasets/<name>/
        dataset.json           manifest: sources and their hashes, clips, rejects, step fingerprints
        <name>.list            path|speaker|lang|text of every accepted clip
        clips/                 sliced, loudness-normalised 32 kHz clips (what the .list names)
        2-name2text.txt, 3-bert/, 4-cnhubert/, 5-wav32k/, 6-name2semantic.tsv   (model steps)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anchorvoice.engine.store.files import atomic_write_bytes
from anchorvoice.errors import DatasetError

PARTIAL = ".partial"
"""Suffix of files being written; left over only by a killed run, removed by the next one."""
MANIFEST = "dataset.json"
FORMAT_VERSION = 1


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``path`` through a ``.partial`` sibling and a rename: readers see the old file or the new one."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    atomic_write_bytes(path, raw, tmp=path.with_name(path.name + PARTIAL))


def remove_partials(folder: Path) -> int:
    """Delete ``*.partial`` files an interrupted run left; returns how many."""
    found = list(folder.rglob("*" + PARTIAL)) if folder.is_dir() else []
    for p in found:
        p.unlink(missing_ok=True)
    return len(found)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ClipRecord:
    """An accepted clip in the manifest."""

    name: str
    """File name under clips/."""
    source: str
    """Recording it was cut from."""
    start: int
    """First sample in the 32 kHz recording."""
    end: int
    """End sample (exclusive)."""
    seconds: float
    """Duration."""
    sha256: str
    """Hash of the clip file."""
    text: str = ""
    """Transcript ('' until transcribed)."""
    language: str = ""
    """Language of ``text``."""
    snr_db: float | None = None
    """Estimated SNR of the clip as cut (before denoising)."""
    snr_after_db: float | None = None
    """Estimated SNR after denoising (None without --denoise)."""


@dataclass
class SourceRecord:
    """One recording in the folder the user gave."""

    name: str
    """File name."""
    sha256: str
    """Hash of the file: an unchanged file is not sliced again."""
    settings: str
    """Slicing/denoise settings it was cut with (changed settings cut again)."""
    clips: list[str] = field(default_factory=list)
    """Names of its accepted clips."""
    rejects: list[dict[str, Any]] = field(default_factory=list)
    """{clip, seconds, reason} of each rejected piece."""


@dataclass
class Manifest:
    """``dataset.json``."""

    name: str
    version: int = FORMAT_VERSION
    format: str = "gpt-sovits"
    sources: dict[str, SourceRecord] = field(default_factory=dict)
    clips: dict[str, ClipRecord] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    """{file, reason} of files in the folder that are not audio."""
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """step name -> {fingerprint, done}."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        m = cls(name=str(d["name"]), version=int(d.get("version", 1)), format=str(d.get("format", "gpt-sovits")))
        m.sources = {k: SourceRecord(**v) for k, v in d.get("sources", {}).items()}
        m.clips = {k: ClipRecord(**v) for k, v in d.get("clips", {}).items()}
        m.skipped = list(d.get("skipped", []))
        m.steps = dict(d.get("steps", {}))
        m.warnings = list(d.get("warnings", []))
        return m


def datasets_dir(home: Path) -> Path:
    return home / "datasets"


def dataset_dir(home: Path, name: str) -> Path:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DatasetError(f"invalid dataset name {name!r}: use letters, digits, '-' or '_'")
    return datasets_dir(home) / name


def load_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is damaged ({exc}); delete {folder} and make the dataset again") from None


def save_manifest(folder: Path, manifest: Manifest) -> None:
    atomic_write(folder / MANIFEST, json.dumps(manifest.to_dict(), indent=1, ensure_ascii=False))


def open_dataset(home: Path, name: str) -> tuple[Path, Manifest]:
    """An existing dataset's folder and manifest; DatasetError naming the ones there are."""
    folder = dataset_dir(home, name)
    manifest = load_manifest(folder)
    if manifest is None:
        have = sorted(p.name for p in datasets_dir(home).glob("*") if (p / MANIFEST).is_file())
        raise DatasetError(
            f"no dataset named {name!r} (have: {', '.join(have) or 'none'}; make one with "
            "`anchorvoice dataset make NAME --audio DIR`)"
        )
    return folder, manifest
