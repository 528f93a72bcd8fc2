"""``.avoice`` archives: one voice to share, and a careful reader for archives from strangers.

An archive is a zip holding exactly::

    manifest.json        {"format": "anchorvoice-voice", "format_version": 1, "voice": {...}, "blobs": {...}}
    refs/<name>.wav      the reference clips of the voice's version in use
    blobs/<sha256>       the model blobs it needs: always its own (per-voice deltas, adapters, models no
                         other voice shares), the shared base only when exported with ``with_base``

Reading refuses, each with its reason and before anything is written to the home: entries outside that
layout (absolute paths, ``..``, backslashes, other folders: path traversal), symbolic links, a pickle
anywhere (``.pth``/``.ckpt``/``.pkl`` names or pickle/torch-zip bytes: anchorvoice never unpickles a
shared file), blobs that are not safetensors or whose bytes do not hash to their name, clips that are not
WAV, duplicate entries, and zip bombs (more than :data:`MAX_ENTRIES` entries, a declared total over
``max_bytes``, a compression ratio over :data:`MAX_RATIO`, or an entry that inflates past its declared
size). Everything is unpacked into a staging folder first; the voice appears in the home only in the
final atomic rename, so a full disk or a kill mid-import leaves no half-written voice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchorvoice.engine.store.blobs import SHA_RE, is_blob_file, parse_ref, read_meta
from anchorvoice.engine.store.files import atomic_write_bytes, home_lock, sha256_file, temp_sibling
from anchorvoice.errors import VoiceError

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice, VoiceLibrary

FORMAT = "anchorvoice-voice"
FORMAT_VERSION = 1
MAX_ENTRIES = 256
"""More entries than a voice could need: refused (a zip bomb of many small files)."""
MAX_RATIO = 200
"""Largest compression ratio accepted per entry (model weights and audio compress far less)."""
DEFAULT_MAX_BYTES = 8 * 1024**3
"""Largest total unpacked size accepted by default (8 GiB: a full GPT-SoVITS base is about 0.25 GiB)."""
_REF_NAME = re.compile(r"^refs/[A-Za-z0-9_-]{1,64}\.wav$")
_PICKLE_NAMES = (".pth", ".ckpt", ".pkl", ".pickle", ".pt", ".bin", ".npy")
_CHUNK = 1 << 20


class ArchiveError(VoiceError):
    """An ``.avoice`` archive refused (the message says why); nothing was written."""


@dataclass
class ArchiveLimits:
    """How much an archive may unpack to."""

    max_bytes: int = DEFAULT_MAX_BYTES
    """Largest total unpacked size, in bytes."""
    max_entries: int = MAX_ENTRIES
    """Most entries."""
    max_ratio: float = MAX_RATIO
    """Largest compression ratio of one entry."""


@dataclass
class Unpacked:
    """A checked archive unpacked in a staging folder."""

    voice: dict[str, Any]
    """The voice's manifest (references as ``refs/<name>.wav`` inside ``folder``)."""
    folder: Path
    """The staging folder."""
    blobs: dict[str, Path] = field(default_factory=dict)
    """SHA-256 -> its unpacked, verified file."""


def _voice_blobs(library: VoiceLibrary, voice: Voice) -> tuple[set[str], set[str]]:
    """(blobs only this voice needs, shared bases): a blob another voice also names is a base."""
    mine = library.blobs.closure(voice.blobs.values())
    others: set[str] = set()
    for name in library.names():
        if name != voice.name:
            others |= library.blobs.closure(library.get(name).blobs.values())
    return mine - others, mine & others


def export_voice(library: VoiceLibrary, name: str, out: Path, *, with_base: bool = False) -> dict[str, Any]:
    """Write ``name`` (its version in use) to ``out``; returns the archive's manifest."""
    voice = library.get(name)
    by_path = sorted(k for k in voice.models if k not in voice.blobs)
    if by_path:
        raise VoiceError(f"voice {voice.name!r} refers to its {', '.join(by_path)} model(s) by path, which an "
                         f"archive cannot carry; store them first with `anchorvoice voices add {voice.name} "
                         "--replace ...` (the models are then copied into the store)")
    own, shared = _voice_blobs(library, voice)
    packed = own | (shared if with_base else set())
    data = {k: v for k, v in voice.to_manifest().items()}
    data["references"] = [f"refs/{r.name}" for r in voice.references]
    blobs = {sha: {"kind": library.blobs.info(sha).kind, "bytes": library.blobs.info(sha).size,
                   "included": sha in packed} for sha in sorted(own | shared)}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "voice": data, "blobs": blobs}
    out = Path(out)
    tmp = temp_sibling(out)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
            for r in voice.references:
                zf.write(r, f"refs/{r.name}")
            for sha in sorted(packed):
                zf.write(library.blobs.path(sha), f"blobs/{sha}", compress_type=zipfile.ZIP_STORED)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _refuse(path: Path, why: str) -> ArchiveError:
    return ArchiveError(f"refusing voice archive {path.name}: {why}; nothing was imported")


def _check_entries(path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _refuse(path, f"{len(infos)} entries (at most {limits.max_entries}): not a voice, possibly a zip bomb")
    seen: set[str] = set()
    total = 0
    for info in infos:
        n = info.filename
        if n in seen:
            raise _refuse(path, f"entry {n!r} appears twice")
        seen.add(n)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(path, f"entry {n!r} is a symbolic link (archives may hold only plain files)")
        if n.lower().endswith(_PICKLE_NAMES):
            raise _refuse(path, f"entry {n!r} is a pickled model file; anchorvoice never loads pickles from a "
                                "shared archive (models travel as safetensors blobs)")
        if n != "manifest.json" and not _REF_NAME.match(n) and not (n.startswith("blobs/") and SHA_RE.match(n[6:])):
            raise _refuse(path, f"entry {n!r} is outside the archive layout (manifest.json, refs/*.wav, "
                                "blobs/<sha256>): a path like this could write outside the voice")
        if info.is_dir():
            raise _refuse(path, f"entry {n!r} is a folder entry")
        total += info.file_size
        if total > limits.max_bytes:
            raise _refuse(path, f"it unpacks to more than {limits.max_bytes / 1024**3:.1f} GiB (a zip bomb?)")
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            raise _refuse(path, f"entry {n!r} inflates {info.file_size / info.compress_size:.0f}-fold (at most "
                                f"{limits.max_ratio:.0f}): a zip bomb")
    if "manifest.json" not in seen:
        raise _refuse(path, "no manifest.json (not an anchorvoice voice archive)")
    return infos


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, path: Path) -> Path:
    """Copy one entry, stopping at its declared size (a zip whose headers lie is refused)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(dest, "wb") as fh:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise _refuse(path, f"entry {info.filename!r} inflates past its declared size (a zip bomb)")
            fh.write(chunk)
    return dest


def _looks_pickled(p: Path) -> bool:
    with open(p, "rb") as fh:
        head = fh.read(4)
    return head[:1] == b"\x80" or head[:2] == b"PK"


def unpack(path: Path, staging: Path, limits: ArchiveLimits | None = None) -> Unpacked:
    """Check and unpack an archive into ``staging`` (which the caller removes)."""
    limits = limits or ArchiveLimits()
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise _refuse(path, f"not a readable zip archive ({exc})") from None
    with zf:
        infos = _check_entries(path, zf, limits)
        try:
            manifest = json.loads(zf.read("manifest.json"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _refuse(path, f"manifest.json is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _refuse(path, "manifest.json is not an anchorvoice voice manifest")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise _refuse(path, f"format version {manifest.get('format_version')} is newer than this anchorvoice "
                                f"reads ({FORMAT_VERSION}); update anchorvoice")
        voice = manifest.get("voice")
        if not isinstance(voice, dict) or not isinstance(voice.get("references"), list):
            raise _refuse(path, "manifest.json has no voice with references")
        out = Unpacked(voice=voice, folder=staging)
        names = {i.filename for i in infos}
        for r in voice["references"]:
            if not isinstance(r, str) or r not in names:
                raise _refuse(path, f"the manifest names reference {r!r}, which the archive does not hold")
        for info in infos:
            n = info.filename
            if n == "manifest.json":
                continue
            dest = _extract(zf, info, staging / n, path)
            if _looks_pickled(dest):
                raise _refuse(path, f"entry {n!r} holds pickle or torch-zip bytes; anchorvoice never loads pickles "
                                    "from a shared archive")
            if n.startswith("blobs/"):
                if not is_blob_file(dest):
                    raise _refuse(path, f"blob {n!r} is not a safetensors file")
                if sha256_file(dest) != n[6:]:
                    raise _refuse(path, f"blob {n!r} does not hash to its name (damaged in transit?)")
                out.blobs[n[6:]] = dest
            elif not dest.read_bytes()[:4] == b"RIFF":
                raise _refuse(path, f"clip {n!r} is not a WAV file")
    return out


def import_voice(library: VoiceLibrary, path: Path, add: Callable[..., Voice], *, name: str | None = None,
                 replace: bool = False, limits: ArchiveLimits | None = None) -> Voice:
    """Import an archive: check and unpack it, move its blobs into the store, then add the voice through
    ``add`` (the engine's ``add_voice``: the plugins check it as any new voice). Refused with the reason;
    ``replace`` stores it as the next version of an existing voice of that name."""
    path = Path(path)
    library.home.mkdir(parents=True, exist_ok=True)
    staging = library.home / f".import-{os.getpid()}-{time.monotonic_ns()}"
    try:
        staging.mkdir()
        got = unpack(path, staging, limits)
        data = got.voice
        target = name or str(data.get("name", ""))
        if library.exists(target) and not replace:
            raise VoiceError(f"voice {target!r} already exists; import with --replace to store the archive as its "
                             f"next version, or with --as NEWNAME")
        models: dict[str, Path] = {}
        for kind, ref in dict(data.get("models", {})).items():
            sha = parse_ref(str(ref))
            if sha is None:
                raise _refuse(path, f"its {kind} model is not a blob reference")
            models[kind] = library.blobs.path(sha)
        with home_lock(library.home):
            for sha, p in got.blobs.items():
                if not library.blobs.exists(sha):
                    library.blobs.root.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(p), temp_sibling(library.blobs.path(sha)))
                    temp_sibling(library.blobs.path(sha)).replace(library.blobs.path(sha))
                    meta = read_meta(library.blobs.path(sha))
                    atomic_write_bytes(library.blobs.root / f"{sha}.json", json.dumps(meta, indent=1).encode())
            missing = [f"{k} ({p.name[:12]}...)" for k, p in models.items() if not p.is_file()]
            missing += [s[:12] for s in library.blobs.closure(p.name for p in models.values())
                        if not library.blobs.exists(s)]
            if missing:
                raise VoiceError(f"the archive's voice needs model blobs this home does not have: "
                                 f"{', '.join(sorted(set(missing)))}; ask for an archive exported with --with-base")
            extra: Mapping[str, Any] = {k: v for k, v in data.items() if k in ("styles",)}
            return add(target, [staging / r for r in data["references"]], ref_text=str(data.get("ref_text", "")),
                       ref_lang=str(data.get("ref_lang", "en")), models=models, overwrite=replace, extra=extra)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
