"""Voice library: a voice is a named folder with a TOML manifest, reference clips and model paths.

Layout under ``<home>/voices/<folder>/``::

    voice.toml      manifest (name, reference text/language, clip list, model paths, analysis)
    refs/ref0.wav   reference clips, cleaned mono 16-bit WAV at their original rate

``analysis`` holds, per voice converter, the statistics it computed from the references once at
``add`` time (e.g. the DSP converter's pitch and spectral-envelope statistics), so that live
conversion never re-analyses. Model files (``models``: kind -> file or folder, e.g. a GPT-SoVITS
voice's ``gpt``/``sovits``/``hubert``) are referenced by absolute path; the plugins that use them
check them (and any rule they have for the clips) when the voice is added, through ``check``.

Names may use any script; :mod:`anchorvoice.engine.voice_names` derives their folders. Generic reference
rules are in :mod:`anchorvoice.engine.references`.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anchorvoice.audio_io import read_audio, resample, write_audio
from anchorvoice.engine.config import load_toml
from anchorvoice.engine.references import note_reference, validate_reference
from anchorvoice.engine.store import history
from anchorvoice.engine.store.blobs import SHA_RE, BlobStore, blob_ref, parse_ref
from anchorvoice.engine.store.features import FeatureCache
from anchorvoice.engine.store.files import home_lock, sha256_file
from anchorvoice.engine.store.styles import DEFAULT_STYLE, Style, dump_styles, parse_styles, pick_style
from anchorvoice.engine.voice_names import folder_name, normalize_name, split_version
from anchorvoice.errors import ReferenceAudioError, VoiceError, VoiceExistsError, VoiceNotFoundError
from anchorvoice.frames import AudioFrame

MANIFEST = "voice.toml"
Analyzer = Callable[[AudioFrame], dict[str, Any]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceDraft:
    """A voice about to be added, as the plugins' ``check_voice`` hook sees it (nothing written yet)."""

    name: str
    """The requested voice name."""
    references: list[tuple[str, AudioFrame]]
    """(where it came from, the decoded clip at its own rate) per reference, in the order given."""
    ref_text: str
    """Transcript of the reference ("" if none)."""
    ref_lang: str
    """Language of ``ref_text``."""
    models: dict[str, Path]
    """Model files by kind, absolute and existing."""


VoiceCheck = Callable[[VoiceDraft], None]


@dataclass
class Voice:
    """A voice as stored in the library (one version of it)."""

    name: str
    path: Path
    references: list[Path]
    ref_text: str = ""
    ref_lang: str = "en"
    models: dict[str, Path] = field(default_factory=dict)
    """Model files by kind, as paths the stages load (a stored blob resolves to ``<home>/blobs/<sha256>``)."""
    analysis: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: str = ""
    version: int = 1
    """Which version of the voice this is (``voices history``)."""
    blobs: dict[str, str] = field(default_factory=dict)
    """Model kind -> SHA-256 of the store blob it is (kinds missing here are plain paths)."""
    change: str = ""
    """What this version changed."""
    styles: dict[str, Style] = field(default_factory=dict)
    """Tagged extra references (``speak --style``), by style name."""

    @property
    def is_neural(self) -> bool:
        """True when the voice carries model files: presets then fill their neural slots for it."""
        return bool(self.models)

    @property
    def key(self) -> str:
        """Identifies this exact content (name and version) for caches."""
        return f"{self.name}@{self.version}"

    def style(self, wanted: str | None) -> Style | None:
        """The style a request for ``wanted`` gets (None: the default reference)."""
        return pick_style(self.styles, wanted)

    def features(self) -> FeatureCache:
        """Features computed from this voice's references, kept on disk (see :mod:`.store.features`)."""
        return FeatureCache(self.path)

    def load_reference(self, sample_rate: int | None = None, index: int = 0) -> AudioFrame:
        """The ``index``-th reference clip, resampled to ``sample_rate`` when given."""
        return read_audio(self.references[index], sample_rate)

    def to_manifest(self) -> dict[str, Any]:
        models = {k: blob_ref(self.blobs[k]) if k in self.blobs else str(v) for k, v in self.models.items()}
        return {
            "name": self.name,
            "created": self.created,
            "ref_text": self.ref_text,
            "ref_lang": self.ref_lang,
            "references": [p.relative_to(self.path).as_posix() for p in self.references],
            "models": models,
            "analysis": self.analysis,
            **({"styles": dump_styles(self.path, self.styles)} if self.styles else {}),
        }

    @classmethod
    def from_manifest(cls, folder: Path, data: dict[str, Any], blobs_root: Path | None = None) -> Voice:
        """A voice from its manifest; ``models`` values are absolute paths (voices made before the store)
        or ``sha256:<hex>`` blobs under ``blobs_root`` (default ``<home>/blobs`` above ``folder``)."""
        root = blobs_root if blobs_root is not None else folder.parent.parent / "blobs"
        try:
            models: dict[str, Path] = {}
            blobs: dict[str, str] = {}
            for k, v in dict(data.get("models", {})).items():
                sha = parse_ref(str(v))
                if sha is not None:
                    blobs[k] = sha
                    models[k] = root / sha
                else:
                    models[k] = Path(str(v))
            refs = [str(r) for r in data.get("references", [])]
            if any(Path(r).is_absolute() or ".." in Path(r).parts for r in refs):
                raise ValueError("a reference path leaves the voice folder")
            return cls(
                name=str(data["name"]),
                path=folder,
                references=[folder / r for r in refs],
                ref_text=str(data.get("ref_text", "")),
                ref_lang=str(data.get("ref_lang", "en")),
                models=models,
                analysis={k: dict(v) for k, v in dict(data.get("analysis", {})).items()},
                created=str(data.get("created", "")),
                version=int(data.get("version", 1)),
                blobs=blobs,
                change=str(data.get("change", "")),
                styles=parse_styles(folder, data.get("styles")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VoiceError(
                f"voice manifest {folder / MANIFEST} is damaged ({exc}); delete the folder {folder} "
                "and add the voice again"
            ) from None


ModelImporter = Callable[[str, Path], "tuple[dict[str, Any], dict[str, Any]] | None"]
"""(kind, file) -> (tensors, metadata) for the blob store, or None to keep the file by path."""


class VoiceLibrary:
    """The voices under ``<home>/voices``, their versions, and the model blobs under ``<home>/blobs``."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.root = self.home / "voices"
        self.blobs = BlobStore(self.home)

    def _folder(self, name: str) -> Path:
        return self.root / folder_name(name)

    def _stored_name(self, folder: Path) -> str:
        """The name in a voice folder's manifest (the folder name if the manifest cannot say)."""
        try:
            return str(load_toml(folder / MANIFEST).get("name", folder.name))
        except Exception:  # a damaged manifest is reported by get(); here it only needs a name
            return folder.name

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(self._stored_name(p) for p in self.root.iterdir()
                      if not p.name.startswith(".") and (p / MANIFEST).is_file())

    def list(self) -> builtins.list[Voice]:
        return [self.get(n) for n in self.names()]

    def exists(self, name: str) -> bool:
        try:
            folder = self._folder(normalize_name(name))
        except VoiceError:
            return False
        return (folder / MANIFEST).is_file()

    def folder_of(self, name: str) -> Path:
        """The folder of an existing voice (VoiceNotFoundError listing the voices otherwise)."""
        try:
            wanted = normalize_name(name)
        except VoiceError:
            wanted = ""
        folder = self.root / folder_name(wanted) if wanted else None
        if folder is None or not (folder / MANIFEST).is_file() or self._stored_name(folder) != wanted:
            have = ", ".join(self.names()) or "none yet"
            raise VoiceNotFoundError(
                f"Unable to find voice {name!r} (voices: {have}; run `anchorvoice voices list`, or add one "
                f"with `anchorvoice voices add NAME --ref clip.wav`)"
            )
        return folder

    def get(self, name: str) -> Voice:
        """The voice in use under ``name``, or one of its versions with ``name@N``."""
        if not self.exists(name):
            base, version = split_version(name)
            if version is not None:
                folder = self.folder_of(base)
                return Voice.from_manifest(folder, history.load_version(folder, version, base), self.blobs.root)
        folder = self.folder_of(name)
        return Voice.from_manifest(folder, load_toml(folder / MANIFEST), self.blobs.root)

    # -- versions ----------------------------------------------------------------------------
    def history(self, name: str) -> builtins.list[Voice]:
        """Every version of a voice, oldest first."""
        folder = self.folder_of(name)
        return [Voice.from_manifest(folder, d, self.blobs.root) for d in history.history(folder)]

    def use(self, name: str, version: int) -> Voice:
        """Make ``version`` the one ``name`` means (no new version)."""
        with home_lock(self.home):
            folder = self.folder_of(name)
            return Voice.from_manifest(folder, history.use(folder, version, name), self.blobs.root)

    def rollback(self, name: str, version: int) -> Voice:
        """A new version with ``version``'s content, now in use."""
        with home_lock(self.home):
            history.rollback(self.folder_of(name), version, name)
        return self.get(name)

    def referenced_blobs(self) -> set[str]:
        """Every blob any version of any voice names."""
        out: set[str] = set()
        for n in self.names():
            folder = self.folder_of(n)
            for data in history.all_manifests(folder):
                out.update(sha for v in dict(data.get("models", {})).values() if (sha := parse_ref(str(v))))
        return out

    # -- adding ------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        references: Iterable[str | Path],
        *,
        ref_text: str = "",
        ref_lang: str = "en",
        models: dict[str, str | Path] | None = None,
        analyzers: Mapping[str, tuple[int, Analyzer]] | None = None,
        check: VoiceCheck | None = None,
        importer: ModelImporter | None = None,
        overwrite: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> Voice:
        """Create a voice, or with ``overwrite`` a new version of it: validate and copy the clips, check
        the model files, store them as blobs (``importer``), run each analyzer once.

        ``analyzers`` maps a converter name to (its sample rate, its ``analyze_reference``); ``check``
        (the plugins' ``check_voice``) sees the voice after the generic checks and before anything is
        written, and raises to refuse it. ``extra`` adds manifest entries (e.g. ``styles``).
        """
        name = normalize_name(name)
        if self.exists(name) and not overwrite:
            raise VoiceExistsError(f"voice {name!r} already exists (pass --replace or --force to store this as "
                                   "its next version, or remove it first)")
        twin = self._case_twin(name)
        if twin is not None:
            raise VoiceExistsError(f"voice {twin!r} already exists and differs from {name!r} only in case; "
                                   "pick a more distinct name (or remove the other one first)")
        folder = self._folder(name)
        if (folder / MANIFEST).is_file() and self._stored_name(folder) != name:
            raise VoiceExistsError(f"the folder {folder.name!r} belongs to voice {self._stored_name(folder)!r}; "
                                   f"pick another name than {name!r}")
        model_paths = {k: Path(v).expanduser().resolve() for k, v in (models or {}).items()}
        for kind, p in model_paths.items():
            if not p.exists():
                raise VoiceError(f"{kind} model not found: {p} (check the path)")
        refs = [Path(r) for r in references]
        if not refs:
            raise ReferenceAudioError("a voice needs at least one reference clip (--ref clip.wav)")
        frames = [read_audio(r) for r in refs]
        for r, fr in zip(refs, frames):
            validate_reference(fr, str(r))
            note_reference(r, fr)
        if check is not None:
            check(VoiceDraft(name, [(str(r), fr) for r, fr in zip(refs, frames)], ref_text, ref_lang, model_paths))

        with home_lock(self.home):
            blobs = self._import_models(model_paths, importer)
            analysis: dict[str, dict[str, Any]] = {}
            for conv_name, (rate, analyze) in (analyzers or {}).items():
                joined = np.concatenate([resample(f.samples, f.sample_rate, rate) for f in frames])
                analysis[conv_name] = analyze(AudioFrame(joined, rate))
            if (folder / MANIFEST).is_file():
                return self._new_version(folder, name, frames, ref_text, ref_lang, model_paths, blobs, analysis,
                                         extra)
            return self._create(folder, name, frames, ref_text, ref_lang, model_paths, blobs, analysis, extra)

    def _case_twin(self, name: str) -> str | None:
        """A voice whose name differs from ``name`` only in case. Only folders that could hold one are read
        (a plain name's twin has a case variant of its folder name; other names' folders hash the casefolded
        name), so adding to a library of hundreds of voices does not read every manifest."""
        if not self.root.is_dir():
            return None
        mine = self._folder(name)
        for p in self.root.iterdir():
            if p.name.casefold() == mine.name.casefold() and (p / MANIFEST).is_file():
                other = self._stored_name(p)
                if other != name and other.casefold() == name.casefold():
                    return other
        return None

    def store_delta(self, kind: str, base: Path, delta: Mapping[str, Any], importer: ModelImporter,
                    fmt: str = "lora") -> Path:
        """Store what one voice changed on the base model file ``base`` (imported once, shared by every voice on
        it) as a delta blob; returns the blob's path, which ``add(models={kind: path})`` takes as it is."""
        got = importer(kind, Path(base))
        if got is None:
            raise VoiceError(f"no plugin stores {kind} models, so a {kind} delta has no base to go on")
        tensors, meta = got
        with home_lock(self.home):
            base_sha = self.blobs.put(tensors, {**meta, "kind": kind})
            return self.blobs.path(self.blobs.put_delta(base_sha, delta, fmt=fmt))

    def _import_models(self, paths: Mapping[str, Path], importer: ModelImporter | None) -> dict[str, str]:
        blobs: dict[str, str] = {}
        for kind, p in paths.items():
            if p.parent == self.blobs.root.resolve() and SHA_RE.match(p.name):
                blobs[kind] = p.name  # already in this home's store (an imported archive, another voice's blob)
                continue
            got = importer(kind, p) if importer is not None else None
            if got is not None:
                tensors, meta = got
                # no file name in the metadata: the same content is the same blob
                blobs[kind] = self.blobs.put(tensors, {**meta, "kind": kind})
        return blobs

    def _write_refs(self, folder: Path, frames: builtins.list[AudioFrame]) -> builtins.list[Path]:
        """Each clip as ``refs/<hash>.wav`` (content-named, so versions share unchanged clips)."""
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        stored = []
        for i, fr in enumerate(frames):
            tmp = write_audio(folder / "refs" / f".incoming-{os.getpid()}-{i}.wav", fr)
            final = folder / "refs" / f"{sha256_file(tmp)[:16]}.wav"
            if final.is_file():
                tmp.unlink()
            else:
                tmp.replace(final)
            stored.append(final)
        return stored

    def _manifest(self, folder: Path, name: str, refs: builtins.list[Path], ref_text: str, ref_lang: str,
                  model_paths: dict[str, Path], blobs: dict[str, str], analysis: dict[str, dict[str, Any]],
                  extra: Mapping[str, Any] | None) -> dict[str, Any]:
        voice = Voice(name=name, path=folder, references=refs, ref_text=ref_text, ref_lang=ref_lang,
                      models={k: self.blobs.path(blobs[k]) if k in blobs else p for k, p in model_paths.items()},
                      analysis=analysis, created=time.strftime("%Y-%m-%dT%H:%M:%S"), blobs=blobs)
        return {**voice.to_manifest(), **dict(extra or {})}

    def _create(self, folder: Path, name: str, frames: builtins.list[AudioFrame], ref_text: str, ref_lang: str,
                model_paths: dict[str, Path], blobs: dict[str, str], analysis: dict[str, dict[str, Any]],
                extra: Mapping[str, Any] | None) -> Voice:
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{folder.name}.tmp-{time.monotonic_ns()}"
        try:
            refs = [folder / "refs" / p.name for p in self._write_refs(staging, frames)]
            manifest = self._manifest(folder, name, refs, ref_text, ref_lang, model_paths, blobs, analysis, extra)
            history.commit(staging, manifest, "new voice")
            if folder.exists():  # a folder without a manifest: debris of an interrupted older version
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return self.get(name)

    def _new_version(self, folder: Path, name: str, frames: builtins.list[AudioFrame], ref_text: str, ref_lang: str,
                     model_paths: dict[str, Path], blobs: dict[str, str], analysis: dict[str, dict[str, Any]],
                     extra: Mapping[str, Any] | None) -> Voice:
        old = load_toml(folder / MANIFEST)
        refs = self._write_refs(folder, frames)
        if "styles" in old and not (extra and "styles" in extra):
            extra = {**dict(extra or {}), "styles": old["styles"]}  # styles outlive a new default reference
        manifest = self._manifest(folder, name, refs, ref_text, ref_lang, model_paths, blobs, analysis, extra)
        history.commit(folder, manifest, history.describe_change(old, manifest))
        return self.get(name)

    def set_style(self, name: str, style: str, *, clip: str | Path | None = None, text: str | None = None,
                  lang: str | None = None, tags: Iterable[str] | None = None) -> Voice:
        """Add or change a style (a new version): its clip (checked like any reference), transcript, tags."""
        style = style.strip()
        if not style or style == DEFAULT_STYLE or not re.fullmatch(r"[\w.:-]{1,40}", style):
            raise VoiceError(f"invalid style name {style!r}: 1-40 letters, digits, '.', ':', '-' "
                             f"('{DEFAULT_STYLE}' is the voice's first reference)")
        with home_lock(self.home):
            voice = self.get(name)
            old = voice.styles.get(style)
            if clip is None and old is None:
                raise VoiceError(f"style {style!r} is new: give its reference clip (--ref clip.wav)")
            ref = old.reference if old is not None else voice.path
            if clip is not None:
                frame = read_audio(Path(clip))
                validate_reference(frame, str(clip))
                ref = self._write_refs(voice.path, [frame])[0]
            voice.styles = {**voice.styles, style: Style(
                style, ref, text if text is not None else (old.text if old else ""),
                lang or (old.lang if old else voice.ref_lang),
                tuple(tags) if tags is not None else (old.tags if old else ()))}
            manifest = voice.to_manifest()
            what = "added" if old is None else "changed"
            history.commit(voice.path, manifest, f"style {style!r} {what}")
        return self.get(name)

    def migrate(self, name: str, importer: ModelImporter) -> Voice | None:
        """Copy the models a voice names by path (voices made before the store) into blobs, as a new version;
        None when there is nothing to move (already in the store, or no plugin imports those kinds)."""
        with home_lock(self.home):
            voice = self.get(name)
            by_path = {k: p for k, p in voice.models.items() if k not in voice.blobs}
            for kind, p in by_path.items():
                if not p.exists():
                    raise VoiceError(f"voice {voice.name!r}: its {kind} model {p} is gone; add the voice again "
                                     f"with the model (`anchorvoice voices add {voice.name} --replace ...`)")
            moved = self._import_models(by_path, importer)
            if not moved:
                return None
            voice.blobs = {**voice.blobs, **moved}
            voice.models = {k: self.blobs.path(moved[k]) if k in moved else p for k, p in voice.models.items()}
            history.commit(voice.path, voice.to_manifest(), f"models moved into the store: {', '.join(sorted(moved))}")
        return self.get(name)

    def remove(self, name: str) -> None:
        """Delete a voice and all its versions (its blobs stay until `voices gc`)."""
        with home_lock(self.home):
            shutil.rmtree(self.folder_of(name))
