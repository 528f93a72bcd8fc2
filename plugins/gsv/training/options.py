"""Options of a GPT-SoVITS fine-tune and the rules checked before anything trains.

Order rules (official facts): with the quantizer frozen (default) the dataset's semantic tokens
stay valid, so SoVITS and GPT may train in either order. With ``unfreeze_quantizer`` the codebook
moves: SoVITS must train first, then the tokens are re-extracted, then the GPT trains.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anchorvoice.errors import TrainingError
from anchorvoice.plugins.gsv.training.bases import DOWNLOAD_HINT
from anchorvoice.plugins.gsv.training.gpt_step import GptTrainConfig, steps_per_epoch

STAGES = ("sovits", "gpt")
RESUME_KEYS = ("dataset", "base_gpt", "base_sovits", "base_disc", "sovits_epochs", "gpt_epochs", "batch_size",
               "unfreeze_quantizer", "lora", "order", "stages", "from_scratch", "segment_size", "seed",
               "gpt_optimizer", "gpt_dropout")
"""Options that must be the same when a run is resumed."""


@dataclass
class TrainOptions:
    """One ``anchorvoice train`` run."""

    name: str
    """Voice name (and run folder name)."""
    dataset: str
    """Dataset folder in the official GPT-SoVITS layout."""
    run_dir: str
    """Where states, losses and exports go."""
    base_gpt: str = ""
    """Pretrained s1 ``.ckpt``."""
    base_sovits: str = ""
    """Pretrained s2G ``.pth``."""
    base_disc: str = ""
    """Pretrained s2D ``.pth`` (random discriminator when empty, with a warning)."""
    sovits_epochs: int = 8
    """SoVITS epochs (official default 8)."""
    gpt_epochs: int = 15
    """GPT epochs (official default 15)."""
    batch_size: int = 0
    """Items per step per process; 0 = from memory (``--batch-size auto``)."""
    device: str = "cpu"
    """``cpu`` or ``cuda`` (``cuda:N`` per process under torchrun)."""
    precision: str = "fp32"
    """``fp32``, ``fp16`` or ``bf16`` autocast (:mod:`.precision`: fp16 on CUDA only, bf16 also on AVX-512 CPUs)."""
    unfreeze_quantizer: bool = False
    """Train ``ssl_proj`` + codebook too (forces SoVITS first and token re-extraction)."""
    lora: int = 0
    """LoRA rank (0 = full fine-tune)."""
    lora_lr_scale: float = 30.0
    """With ``lora``: factor on the adapters' learning rate over the stage's rate (SoVITS AdamW 1e-4, GPT AdamW
    1e-4 peak). 30 from ``bench/train_curve.py``: a B that starts at zero moves its product B @ A far less per
    step than a full fine-tune moves the weight; in 40 steps at x1 the held-out losses moved a fifth (SoVITS)
    and a twelfth (GPT) of what a full fine-tune's did, at x30 they matched or beat it (the sweep: :mod:`.lora`)."""
    order: str = "sovits-first"
    """``sovits-first`` or ``gpt-first``."""
    stages: tuple[str, ...] = STAGES
    """Stages to run."""
    from_scratch: bool = False
    """Allow random initial weights where no base is given."""
    resume: bool = False
    """Continue a saved run."""
    segment_size: int = 0
    """Decoder slice in samples (0: the base config's, official 20480)."""
    max_steps: int = 0
    """Stop each stage after this many steps (0: run all epochs)."""
    seed: int = 1234
    """Shuffling / initialisation seed (official 1234)."""
    lr_scale: float = 1.0
    """Factor on both stages' learning rates."""
    gpt_optimizer: str = ""
    """``scaled_adam`` (the official) or ``adamw``; empty: AdamW with LoRA (ScaledAdam steps scale with a
    tensor's RMS, and LoRA's B starts at zero), ScaledAdam otherwise."""
    gpt_dropout: float = 0.1
    """GPT dropout in training (the official layers hard-code 0.1; 0 makes runs reproducible across process counts)."""

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(d[k]) if isinstance(d[k], tuple) else d[k]) for k in RESUME_KEYS}


def check_order(opts: TrainOptions) -> list[str]:
    """The stages in run order; :class:`TrainingError` saying why when the request breaks the rules."""
    if opts.order not in ("sovits-first", "gpt-first"):
        raise TrainingError(f"--order must be sovits-first or gpt-first, not {opts.order!r}")
    bad = [s for s in opts.stages if s not in STAGES]
    if bad or not opts.stages:
        raise TrainingError(f"unknown stage(s) {bad or '(none)'}; choose among {', '.join(STAGES)}")
    if opts.unfreeze_quantizer:
        if opts.order == "gpt-first":
            raise TrainingError(
                "--unfreeze-quantizer changes the codebook, so the semantic tokens the GPT learns from are only "
                "valid after SoVITS has trained and they are re-extracted: SoVITS must come first (drop "
                "--order gpt-first)"
            )
        if "gpt" in opts.stages and "sovits" not in opts.stages:
            raise TrainingError(
                "--unfreeze-quantizer with only the GPT stage: the tokens would not match any quantizer; "
                "train both stages (SoVITS first) or drop --unfreeze-quantizer"
            )
    order = list(STAGES) if opts.order == "sovits-first" else list(reversed(STAGES))
    return [s for s in order if s in opts.stages]


def check_bases(opts: TrainOptions, stages: list[str]) -> None:
    """Refuse to start from random weights unless asked to."""
    missing = []
    if "sovits" in stages and not opts.base_sovits:
        missing.append("--base-sovits")
    if "sovits" in stages and not opts.base_disc:
        missing.append("--base-disc")
    if "gpt" in stages and not opts.base_gpt:
        missing.append("--base-gpt")
    if "gpt" in stages and not opts.base_sovits:
        missing.append("--base-sovits (its quantizer defines the tokens)")
    if missing and not opts.from_scratch:
        raise TrainingError(
            f"no base weights given ({', '.join(missing)}): fine-tuning starts from pretrained models because "
            f"a few minutes of speech do not converge from random weights. {DOWNLOAD_HINT}"
        )


def check_resume(opts: TrainOptions, run_dir: Path) -> None:
    """``--resume`` needs the saved options to be the same; a new run must not overwrite a saved one."""
    saved_path = run_dir / "options.json"
    if opts.resume:
        if not saved_path.is_file():
            raise TrainingError(f"nothing to resume in {run_dir} (no options.json); start without --resume")
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        now = opts.key()
        diff = [f"{k}: saved {saved.get(k)!r}, now {now[k]!r}" for k in RESUME_KEYS if saved.get(k) != now[k]]
        if diff:
            raise TrainingError(
                "--resume with different options; use the saved ones or start a new run without --resume: "
                + "; ".join(diff)
            )
    elif any(run_dir.glob("state-*.pt")):
        raise TrainingError(
            f"{run_dir} holds a saved run of '{opts.name}'; continue it with --resume or remove the folder"
        )


def gpt_train_config(opts: TrainOptions, per_epoch: int) -> GptTrainConfig:
    """The GPT recipe of a run with ``per_epoch`` batches per epoch: the official ScaledAdam, or AdamW (default
    with LoRA) warmed up over a tenth of the run to 1e-4 and decayed to 1e-5; rates times ``lr_scale`` and,
    with LoRA (only adapters train), times ``lora_lr_scale``."""
    name = opts.gpt_optimizer or ("adamw" if opts.lora else "scaled_adam")
    factor = opts.lr_scale * (opts.lora_lr_scale if opts.lora else 1.0)
    if name == "scaled_adam":
        return GptTrainConfig().scaled(factor)
    if name != "adamw":
        raise TrainingError(f"unknown GPT optimizer {name!r}; choose scaled_adam or adamw")
    total = steps_per_epoch(per_epoch, GptTrainConfig.accumulate) * opts.gpt_epochs
    return GptTrainConfig.adamw(decay_steps=max(2, total), warmup_steps=min(50, max(1, total // 10))).scaled(factor)
