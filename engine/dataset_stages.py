"""Stage bases for making training sets: transcribers, denoisers and model-specific preparation steps.

They follow :mod:`anchorvoice.engine.stages` (``name``, ``Config``, ``prepare``, ``reset``, ``close``) and are
registered through their own hooks (``register_asr``, ``register_denoisers``, ``register_dataset_steps``);
``anchorvoice dataset make`` drives them (:mod:`anchorvoice.engine.dataset`).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from anchorvoice.engine.stages import Stage
from anchorvoice.frames import AudioFrame


@dataclass
class Transcript:
    """What a :class:`Transcriber` heard in one clip."""

    text: str
    """The words, as spoken (no phonemes)."""
    language: str
    """ISO 639-1 code of ``text`` (the one asked for, or the one detected)."""


class Transcriber(Stage):
    """Speech -> text for training sets: one whole clip at ``sample_rate`` in, a :class:`Transcript` out.

    ``language`` is the ISO 639-1 code the user expects (None: detect it); a transcriber that cannot
    write that language raises ``UnsupportedLanguageError`` naming the model to install.
    """

    kind = "asr"
    sample_rate: int = 16000

    @abstractmethod
    def transcribe(self, audio: AudioFrame, language: str | None) -> Transcript: ...


class Denoiser(Stage):
    """Whole-clip noise reduction: an ``AudioFrame`` in, the same length and rate out (offline, not live)."""

    kind = "denoiser"

    @abstractmethod
    def denoise(self, audio: AudioFrame) -> AudioFrame: ...


@dataclass
class DatasetClip:
    """One accepted training clip, as a :class:`DatasetStep` sees it."""

    name: str
    """File name of the clip (``<source>_<start>_<end>.wav``, the official slicer's naming)."""
    path: Path
    """The sliced, loudness-normalised 32 kHz mono 16-bit WAV."""
    speaker: str
    """Speaker (the dataset's name)."""
    language: str
    """ISO 639-1 code of ``text``."""
    text: str
    """Transcript of the clip."""
    sha256: str
    """Hash of the clip file: cached outputs are keyed by it."""
    seconds: float = 0.0
    """Duration of the clip."""


class DatasetStep(Stage):
    """A model-specific preparation step over a dataset's accepted clips (features, tokens, tables).

    The engine calls ``bind(models, plugins)`` once, then ``process(clip, folder)`` for every clip
    whose ``outputs(clip)`` are missing (or whose hash changed), then ``finish(clips, folder)`` with
    every accepted clip (to write tables). Files are written with :func:`anchorvoice.engine.dataset.store.
    atomic_write` so that an interrupted run leaves no half-written file. ``fingerprint()`` names the
    models whose outputs these are: a dataset made under another fingerprint is refused.
    """

    kind = "dataset_step"
    family: ClassVar[str] = ""
    """Training recipe this step prepares for (``gpt-sovits``); ``dataset make --format`` picks one."""
    order: ClassVar[int] = 0
    """Steps run in ascending order (a step may read what an earlier one wrote)."""
    needs: ClassVar[tuple[str, ...]] = ()
    """Model keys (``hubert``, ``sovits``) this step needs; it is left out when one is not given."""
    batch_seconds: ClassVar[float] = 0.0
    """Up to this much audio is handed to :meth:`process_many` at once (0: one clip at a time)."""

    def bind(self, models: dict[str, Path], plugins: Any) -> None:  # noqa: B027 - optional hook
        """Load the models (paths by key) and look up other stages (text frontends) in ``plugins``."""

    def fingerprint(self) -> str:
        """Identity of the models this step's outputs depend on ('' when none)."""
        return ""

    def settings_key(self) -> str:
        """Identity of settings that change this step's outputs but not the models they belong to (e.g. which
        tagger read the text): when it changes, every clip is done again instead of the dataset being refused."""
        return ""

    def notes(self) -> list[str]:
        """Warnings for ``dataset show`` after a run (e.g. a capability read by a weaker fallback)."""
        return []

    @abstractmethod
    def outputs(self, clip: DatasetClip, folder: Path) -> list[Path]:
        """Files ``process`` writes for ``clip`` (all present = done)."""

    @abstractmethod
    def process(self, clip: DatasetClip, folder: Path) -> None: ...

    def process_many(self, clips: list[DatasetClip], folder: Path) -> None:
        """Process several clips (consecutive ones, up to :attr:`batch_seconds` of audio); override where a
        batch runs faster than its clips one by one. Each clip's files are written as in :meth:`process`."""
        for clip in clips:
            self.process(clip, folder)

    def finish(self, clips: list[DatasetClip], folder: Path) -> None:  # noqa: B027 - optional hook
        """Write the tables that cover every clip (called after all clips are processed)."""
