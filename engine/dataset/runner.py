"""Running the plugin stages of ``dataset make``: ASR over untranscribed clips and the model steps."""

from __future__ import annotations

import hashlib
from pathlib import Path

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.dataset.progress import PhaseProgress, ProgressFn
from anchorvoice.engine.dataset.store import Manifest, save_manifest
from anchorvoice.engine.dataset_stages import DatasetClip, DatasetStep, Transcriber
from anchorvoice.engine.plugins import PluginManager
from anchorvoice.errors import DatasetError, StageError

SAVE_EVERY = 20
"""Clips between manifest saves during long phases (an interrupted run loses at most these)."""


def bind_steps(plugins: PluginManager, family: str, models: dict[str, Path]) -> list[DatasetStep]:
    """The steps of ``family`` whose models are given, bound (models loaded), in order."""
    classes = [c for c in plugins.stages("dataset_step") if issubclass(c, DatasetStep) and c.family == family]
    if not classes:
        raise DatasetError(f"no dataset steps for format {family!r} are installed (see `anchorvoice plugins`)")
    steps = []
    for cls in sorted(classes, key=lambda c: (c.order, c.name)):
        if any(k not in models for k in cls.needs):
            continue
        step = cls()
        assert isinstance(step, DatasetStep)
        step.bind(models, plugins)
        steps.append(step)
    return steps


def check_fingerprints(manifest: Manifest, steps: list[DatasetStep], name: str) -> None:
    """Refuse models other than the ones a dataset's outputs were made with (e.g. another base SoVITS)."""
    for step in steps:
        old = manifest.steps.get(step.name, {}).get("fingerprint")
        new = step.fingerprint()
        if old and new != old:
            raise DatasetError(
                f"dataset {name!r}: its {step.name} outputs were made with other models ({old[:16]}...), "
                f"not these ({new[:16]}...); what a step writes belongs to the base model that made it. "
                f"Use the same models, or make a new dataset (`dataset make NEW_NAME ...`)"
            )


def clip_key(clip: DatasetClip) -> str:
    """Cache key of a clip's step outputs: its audio and its transcript."""
    text = hashlib.sha256(f"{clip.language}|{clip.text}".encode()).hexdigest()[:16]
    return f"{clip.sha256}:{text}"


def dataset_clips(manifest: Manifest, folder: Path) -> list[DatasetClip]:
    return [
        DatasetClip(c.name, folder / "clips" / c.name, manifest.name, c.language, c.text, c.sha256, c.seconds)
        for c in sorted(manifest.clips.values(), key=lambda c: c.name) if c.text
    ]


def clip_groups(clips: list[DatasetClip], seconds: float) -> list[list[DatasetClip]]:
    """Consecutive clips in groups of at most ``seconds`` of audio (a longer clip alone; 0: one each)."""
    groups: list[list[DatasetClip]] = []
    total = 0.0
    for clip in clips:
        if not groups or seconds <= 0 or total + clip.seconds > seconds:
            groups.append([])
            total = 0.0
        groups[-1].append(clip)
        total += clip.seconds
    return groups


def run_asr(folder: Path, manifest: Manifest, asr: Transcriber, language: str, report: ProgressFn | None) -> None:
    """Transcribe every clip that has no text yet; clips where nothing was heard become rejects."""
    todo = [c for c in sorted(manifest.clips.values(), key=lambda c: c.name) if not c.text]
    phase = PhaseProgress("transcribe", len(todo), report)
    for n, clip in enumerate(todo, 1):
        audio = read_audio(folder / "clips" / clip.name, asr.sample_rate)
        heard = asr.transcribe(audio, language)
        if heard.text.strip():
            clip.text, clip.language = heard.text.strip(), heard.language or language
        else:
            manifest.clips.pop(clip.name)
            (folder / "clips" / clip.name).unlink(missing_ok=True)
            src = manifest.sources[clip.source]
            src.clips.remove(clip.name)
            src.rejects.append({"clip": clip.name, "seconds": clip.seconds, "reason": "no speech recognised"})
        if n % SAVE_EVERY == 0:
            save_manifest(folder, manifest)
        phase.step(clip.name)
    save_manifest(folder, manifest)


def run_steps(folder: Path, manifest: Manifest, steps: list[DatasetStep], report: ProgressFn | None) -> None:
    """Each step over the clips it has not done for their current hash, then its tables."""
    clips = dataset_clips(manifest, folder)
    for step in steps:
        state = manifest.steps.setdefault(step.name, {"fingerprint": step.fingerprint(), "hashes": {}})
        state["fingerprint"] = step.fingerprint()
        hashes: dict[str, str] = state.setdefault("hashes", {})
        settings = step.settings_key()
        if state.get("settings", "") != settings:
            hashes.clear()  # other settings: every clip's outputs are done again
            state["settings"] = settings
        for stale in [n for n in hashes if n not in manifest.clips]:
            del hashes[stale]
        phase = PhaseProgress(step.name, len(clips), report)
        todo = []
        for clip in clips:
            if hashes.get(clip.name) == clip_key(clip) and all(p.is_file() for p in step.outputs(clip, folder)):
                phase.step(clip.name, cached=True)
            else:
                todo.append(clip)
        done = 0
        for group in clip_groups(todo, step.batch_seconds):
            try:
                step.process_many(group, folder)
            except DatasetError:
                raise
            except Exception as exc:
                save_manifest(folder, manifest)
                where = group[0].name if len(group) == 1 else f"one of {', '.join(c.name for c in group)}"
                raise StageError(f"dataset step {step.name!r} failed on {where}: {type(exc).__name__}: {exc}") from exc
            for clip in group:
                hashes[clip.name] = clip_key(clip)
                phase.step(clip.name)
            if done // SAVE_EVERY != (done + len(group)) // SAVE_EVERY:
                save_manifest(folder, manifest)
            done += len(group)
        step.finish(clips, folder)
        manifest.warnings = [w for w in manifest.warnings if not w.startswith(f"{step.name}: ")]
        manifest.warnings += [f"{step.name}: {note}" for note in step.notes()]
        save_manifest(folder, manifest)
