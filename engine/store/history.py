"""Voice versions: every change of a voice is a numbered, timestamped manifest that stays loadable.

Layout inside a voice folder::

    voice.toml          the version in use (a copy of one of versions/*.toml, with its ``version``)
    versions/1.toml     each version: the whole manifest plus ``created`` and ``change`` (what changed)
    versions/2.toml
    refs/<hash>.wav     reference clips, named by content, shared by the versions that use them

A voice made before versions were kept has only ``voice.toml``: it reads as version 1, and the first
change copies it to ``versions/1.toml`` before writing version 2 (nothing is lost, nothing moves).
Writers hold the home lock (:func:`~anchorvoice.engine.store.files.home_lock`); every file is written
atomically, so a reader in another process sees the old version or the new one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from anchorvoice.engine.config import dump_toml, load_toml
from anchorvoice.engine.store.files import atomic_write_text
from anchorvoice.errors import VoiceError

MANIFEST = "voice.toml"
VERSIONS = "versions"
LEGACY_CHANGE = "as stored before versions were kept"

_COMPARED = {
    "references": "references",
    "ref_text": "reference text",
    "ref_lang": "reference language",
    "models": "models",
    "styles": "styles/tags",
}


def _version_files(folder: Path) -> dict[int, Path]:
    d = folder / VERSIONS
    if not d.is_dir():
        return {}
    out = {}
    for p in d.glob("*.toml"):
        if p.stem.isdigit():
            out[int(p.stem)] = p
    return out


def history(folder: Path) -> list[dict[str, Any]]:
    """Every version's manifest, oldest first (a voice without versions/ is one version: its voice.toml)."""
    files = _version_files(folder)
    if not files:
        data = load_toml(folder / MANIFEST)
        return [{**data, "version": int(data.get("version", 1)), "change": data.get("change", LEGACY_CHANGE)}]
    return [{**load_toml(files[n]), "version": n} for n in sorted(files)]


def current_version(folder: Path) -> int:
    return int(load_toml(folder / MANIFEST).get("version", 1))


def load_version(folder: Path, version: int, name: str) -> dict[str, Any]:
    """The manifest of ``version``; VoiceError listing the versions there are if it does not exist."""
    files = _version_files(folder)
    if not files and version == 1:
        return history(folder)[0]
    if version not in files:
        have = sorted(files) or [1]
        raise VoiceError(
            f"voice {name!r} has no version {version} (versions: {', '.join(map(str, have))}); "
            f"see `anchorvoice voices history {name}`"
        )
    return {**load_toml(files[version]), "version": version}


def describe_change(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """What differs between two manifests, in words ("new voice" when there is no old one)."""
    if old is None:
        return "new voice"
    changed = [label for key, label in _COMPARED.items() if old.get(key) != new.get(key)]
    return "changed " + ", ".join(changed) if changed else "stored again, nothing changed"


def commit(folder: Path, manifest: dict[str, Any], change: str) -> int:
    """Write ``manifest`` as the next version of the voice in ``folder`` and make it the one in use."""
    files = _version_files(folder)
    if not files and (folder / MANIFEST).is_file():
        legacy = load_toml(folder / MANIFEST)
        legacy.setdefault("change", LEGACY_CHANGE)
        legacy["version"] = 1
        atomic_write_text(folder / VERSIONS / "1.toml", dump_toml(legacy))
        files = {1: folder / VERSIONS / "1.toml"}
    number = max(files, default=0) + 1
    data = {**manifest, "version": number, "change": change,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(folder / VERSIONS / f"{number}.toml", dump_toml(data))
    atomic_write_text(folder / MANIFEST, dump_toml(data))
    return number


def use(folder: Path, version: int, name: str) -> dict[str, Any]:
    """Make ``version`` the one in use (no new version is written)."""
    data = load_version(folder, version, name)
    if _version_files(folder):
        atomic_write_text(folder / MANIFEST, dump_toml(data))
    return data


def rollback(folder: Path, version: int, name: str) -> int:
    """A new version whose content is ``version``'s; returns its number."""
    data = load_version(folder, version, name)
    body = {k: v for k, v in data.items() if k not in ("version", "change", "created")}
    return commit(folder, body, f"rollback to version {version}")


def all_manifests(folder: Path) -> list[dict[str, Any]]:
    """The manifests of every version and the one in use (what `gc` must keep)."""
    out = history(folder)
    if (folder / MANIFEST).is_file():
        out.append(load_toml(folder / MANIFEST))
    return out
