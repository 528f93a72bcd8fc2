"""Model-agnostic training plumbing: run lock, loss CSV, progress line, the epoch/step loop.

Model recipes (e.g. the GPT-SoVITS fine-tune in ``plugins/gsv/training``) give the loop a step
function and a save function; the loop handles what every trainer needs the same way:

* one run per output folder at a time (:class:`RunLock`, a lock file holding the owner's pid; a
  lock whose process is gone is taken over);
* losses appended to ``losses.csv`` (and TensorBoard when ``torch.utils.tensorboard`` imports);
* a progress line with stage, epoch, step, losses and ETA;
* Ctrl-C: the current state is saved and :class:`TrainingInterrupted` raised (``--resume`` goes on);
* a non-finite loss stops the run with the step named, after saving the last good state.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from anchorvoice.errors import TrainingError


class TrainingInterrupted(TrainingError):
    """Ctrl-C during training: the state was saved; run again with --resume to continue."""


class NonFiniteLoss(TrainingError):
    """A step produced a NaN or infinite loss; nothing of that step was applied."""


class RunLock:
    """Exclusive lock file ``path`` for the duration of a ``with`` block."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = _read_pid(self.path)
                if owner is not None and _alive(owner):
                    raise TrainingError(
                        f"another training run (pid {owner}) is using {self.path.parent}; wait for it to end "
                        f"or stop it (a lock left by a crashed run is removed automatically)"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return self
        raise TrainingError(f"could not take the lock {self.path}; remove it if no training is running")

    def __exit__(self, *exc: object) -> None:
        if _read_pid(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LossLog:
    """Appends ``stage, epoch, step, <losses>`` rows to a CSV (header written once per stage's columns)."""

    def __init__(self, path: Path, tensorboard: bool = True) -> None:
        self.path = path
        self._columns: list[str] | None = None
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(path.parent / "tensorboard"))
            except Exception:  # noqa: BLE001 - tensorboard is optional
                self._tb = None

    def write(self, stage: str, epoch: int, step: int, losses: dict[str, float]) -> None:
        columns = ["stage", "epoch", "step", *sorted(losses)]
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if new or columns != self._columns:
                w.writerow(columns)
                self._columns = columns
            w.writerow([stage, epoch, step, *(f"{losses[k]:.6g}" for k in sorted(losses))])
        if self._tb is not None:
            for k, v in losses.items():
                self._tb.add_scalar(f"{stage}/{k}", v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_losses(path: Path) -> list[dict[str, str]]:
    """Rows of a loss CSV written by :class:`LossLog` (header lines skipped)."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    with open(path, encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if row and row[0] == "stage":
                header = row
            elif header:
                rows.append(dict(zip(header, row)))
    return rows


@dataclass
class Progress:
    """One status line: ``stage epoch e/E step s/S loss=... ETA mm:ss`` (silent when ``stream`` is None)."""

    stream: IO[str] | None = field(default_factory=lambda: sys.stderr)
    """Where the line goes."""
    _t0: float = 0.0
    _s0: int = 0

    def start(self, step: int) -> None:
        self._t0, self._s0 = time.monotonic(), step

    def update(self, stage: str, epoch: int, epochs: int, step: int, total: int, losses: dict[str, float]) -> None:
        if self.stream is None:
            return
        done = step - self._s0
        rate = (time.monotonic() - self._t0) / done if done else 0.0
        eta = int(rate * (total - step))
        shown = " ".join(f"{k}={v:.4g}" for k, v in list(losses.items())[:4])
        line = f"\r{stage} epoch {epoch}/{epochs} step {step}/{total} {shown} ETA {eta // 60}:{eta % 60:02d}"
        self.stream.write(line)
        self.stream.flush()

    def end(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class StageLoop:
    """The epoch loop of one training stage."""

    stage: str
    """Name shown and logged ("sovits", "gpt")."""
    epochs: int
    """Epochs to run in total."""
    batches_per_epoch: int
    """Steps per epoch."""
    step: Callable[[int, int], dict[str, float]]
    """``step(epoch, index_in_epoch)`` -> losses; raises :class:`NonFiniteLoss` before applying a bad step."""
    save: Callable[[int], None]
    """``save(global_step)``: write the resumable state."""
    end_epoch: Callable[[int], None] = lambda epoch: None
    """Called after each full epoch (learning-rate schedules, per-epoch exports)."""
    log: LossLog | None = None
    """Where losses go."""
    progress: Progress | None = None
    """The status line."""
    max_steps: int | None = None
    """Stop (and save) after this many steps of this stage in total (tests, time-boxed runs)."""

    @property
    def total_steps(self) -> int:
        return self.epochs * self.batches_per_epoch

    def run(self, start_step: int = 0) -> int:
        """Run from ``start_step`` (a global step of this stage) to the end; returns the final step."""
        step = start_step
        last = min(self.total_steps, self.max_steps) if self.max_steps is not None else self.total_steps
        if self.progress:
            self.progress.start(step)
        try:
            while step < last:
                epoch, index = divmod(step, self.batches_per_epoch)
                losses = self.step(epoch, index)
                if not all(math.isfinite(v) for v in losses.values()):
                    raise NonFiniteLoss(f"{self.stage}: non-finite loss at step {step}")
                step += 1
                if self.log:
                    self.log.write(self.stage, epoch + 1, step, losses)
                if self.progress:
                    self.progress.update(self.stage, epoch + 1, self.epochs, step, last, losses)
                if step % self.batches_per_epoch == 0:
                    self.end_epoch(epoch + 1)
                    self.save(step)
        except KeyboardInterrupt:
            self.save(step)
            raise TrainingInterrupted(
                f"{self.stage} interrupted at step {step}; its state is saved: run the same command with --resume"
            ) from None
        except NonFiniteLoss as exc:
            self.save(step)
            raise NonFiniteLoss(
                f"{exc}; the last good state (step {step}) is saved. Lower the learning rate "
                "(--lr-scale 0.5) or check the dataset for silent or clipped clips, then --resume"
            ) from None
        finally:
            if self.progress:
                self.progress.end()
        self.save(step)
        return step
