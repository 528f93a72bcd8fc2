"""The GPT-SoVITS v2 fine-tune: SoVITS then GPT (or GPT then SoVITS), resumable, single or multi process.

Order rules (official facts): with the quantizer frozen (default) the semantic tokens of the
dataset stay valid, so the two stages may run in either order. With ``unfreeze_quantizer`` the
codebook moves: SoVITS must train first, the tokens are then re-extracted with the new
quantizer (written to the run folder's ``6-name2semantic.tsv``) and only then the GPT trains.

Run folder (``<home>/training/<name>/``): ``options.json`` (what ``--resume`` must match),
``state-<stage>.pt`` (weights + optimiser, our own resumable format), ``losses.csv``, and the
exports ``<name>-sovits.pth`` / ``<name>-gpt.ckpt`` (official formats) and ``<name>-disc.pth``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.engine.training import LossLog, Progress, StageLoop
from anchorvoice.errors import TrainingDatasetError, TrainingError
from anchorvoice.plugins.gsv.checkpoint_writer import atomic_save, write_discriminator, write_gpt, write_sovits
from anchorvoice.plugins.gsv.checkpoints import check_phoneme_vocab, load_gpt, load_sovits
from anchorvoice.plugins.gsv.sovits import SovitsConfig
from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder, load_t2s_weights
from anchorvoice.plugins.gsv.training.bases import DOWNLOAD_HINT, check_dataset_fits, load_discriminator, tokens_match
from anchorvoice.plugins.gsv.training.dataset import GsvDataset, match_length, write_semantic
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.gpt_step import GptTrainConfig, GptTrainer, GptTrainModel, collate_gpt
from anchorvoice.plugins.gsv.training.sovits_step import (
    SovitsTrainConfig,
    SovitsTrainer,
    SovitsTrainModel,
    collate_sovits,
)

STAGES = ("sovits", "gpt")
RESUME_KEYS = ("dataset", "base_gpt", "base_sovits", "base_disc", "sovits_epochs", "gpt_epochs", "batch_size",
               "unfreeze_quantizer", "lora", "order", "stages", "from_scratch", "segment_size", "seed")
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
    """``fp32``, ``fp16`` or ``bf16`` (autocast on CUDA only)."""
    unfreeze_quantizer: bool = False
    """Train ``ssl_proj`` + codebook too (forces SoVITS first and token re-extraction)."""
    lora: int = 0
    """LoRA rank (0 = full fine-tune)."""
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

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(d[k]) if isinstance(d[k], tuple) else d[k]) for k in RESUME_KEYS}


@dataclass
class TrainResult:
    """What a finished run produced."""

    sovits: Path | None = None
    """Official-format s2 file."""
    gpt: Path | None = None
    """Official-format s1 file."""
    steps: dict[str, int] = field(default_factory=dict)
    """Final step of each stage."""
    reference: Path | None = None
    """Dataset clip chosen as the voice's reference."""
    reference_text: str = ""
    """Its transcript."""
    reference_lang: str = "en"
    """Its language."""


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


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def auto_batch_size(device: torch.device, n_items: int) -> int:
    """Items per step from the memory at hand: CUDA ~1 item per 2 GiB free (max 32), CPU 4."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        size = max(1, min(32, int(free / 2**31)))
    else:
        size = 4
    return max(1, min(size, n_items))


def _epoch_order(n: int, epoch: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return order


class FineTune:
    """Runs the stages of one :class:`TrainOptions`; :meth:`run` returns a :class:`TrainResult`."""

    def __init__(self, opts: TrainOptions, log: Callable[[str], None] = lambda m: None,
                 progress: Progress | None = None) -> None:
        self.opts = opts
        self.say = log
        self.progress = progress
        self.run_dir = Path(opts.run_dir)
        self.device = torch.device(opts.device)
        self.rank, self.world = _rank()
        self.stage_order = check_order(opts)
        check_bases(opts, self.stage_order)
        self.data = GsvDataset.open(opts.dataset)
        self.batch = opts.batch_size or auto_batch_size(self.device, len(self.data))
        if len(self.data) < self.batch * self.world:
            raise TrainingDatasetError(
                f"dataset {opts.dataset} has {len(self.data)} utterances, fewer than one batch of "
                f"{self.batch * self.world} ({self.batch} x {self.world} processes); lower --batch-size or add clips"
            )
        self.sovits_ckpt = load_sovits(opts.base_sovits) if opts.base_sovits else None
        self.sovits_cfg = self._sovits_config()
        self._check_dataset()

    # ----- setup -----
    def _sovits_config(self) -> SovitsConfig:
        if self.sovits_ckpt is not None:
            return SovitsConfig.from_checkpoint_config(self.sovits_ckpt.config, self.sovits_ckpt.version)
        from anchorvoice.plugins.gsv.sovits import official_v2_config

        return SovitsConfig.from_checkpoint_config(official_v2_config())

    def _base_config(self) -> dict[str, Any]:
        if self.sovits_ckpt is not None:
            return dict(self.sovits_ckpt.config)
        from anchorvoice.plugins.gsv.sovits import official_v2_config

        return official_v2_config()

    def _check_dataset(self) -> None:
        rows = 732 if self.sovits_cfg.version == "v2" else 322
        check_dataset_fits(self.data, rows)
        if self.sovits_ckpt is None or self.opts.from_scratch:
            return
        model = self._new_sovits(quiet=True)
        extracted = self._extract_tokens(model)
        share = tokens_match(self.data, extracted)
        if share < 0.9:
            raise TrainingError(
                f"dataset {self.opts.dataset}: only {share:.0%} of its semantic tokens are what the base SoVITS "
                f"{self.opts.base_sovits} gives its HuBERT features: it was made with another base. Train with the "
                "base the dataset was made with, or remake the dataset with this one"
            )

    def _new_sovits(self, quiet: bool = False) -> SovitsTrainModel:
        torch.manual_seed(self.opts.seed)
        model = SovitsTrainModel(self.sovits_cfg, freeze_quantizer=not self.opts.unfreeze_quantizer)
        if self.sovits_ckpt is not None:
            if not model.load_base(self.sovits_ckpt.weights, str(self.opts.base_sovits)) and not quiet:
                self.say("base SoVITS has no posterior encoder (enc_q): it starts from random weights")
        return model.to(self.device)

    @torch.no_grad()
    def _extract_tokens(self, model: SovitsTrainModel) -> dict[str, Tensor]:
        model.eval()
        out = {}
        for i, u in enumerate(self.data.items):
            ssl = self.data.hubert(i)[None].to(self.device)
            out[u.name] = model.extract_latent(ssl)[0, 0].cpu()
        return out

    # ----- state -----
    def _state_path(self, stage: str) -> Path:
        return self.run_dir / f"state-{stage}.pt"

    def _load_state(self, stage: str) -> dict[str, Any] | None:
        path = self._state_path(stage)
        if not (self.opts.resume and path.is_file()):
            return None
        obj, _ = load_pickled(path)
        if not isinstance(obj, dict):
            raise TrainingError(f"{path}: not a training state; remove it and start again without --resume")
        return obj

    # ----- stages -----
    def run(self) -> TrainResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        check_resume(self.opts, self.run_dir)
        if self.rank == 0:
            (self.run_dir / "options.json").write_text(json.dumps(self.opts.key(), indent=2), encoding="utf-8")
        result = TrainResult()
        log = LossLog(self.run_dir / "losses.csv") if self.rank == 0 else None
        try:
            for stage in self.stage_order:
                if stage == "sovits":
                    result.sovits, result.steps["sovits"] = self._run_sovits(log)
                else:
                    result.gpt, result.steps["gpt"] = self._run_gpt(log)
        finally:
            if log:
                log.close()
        ref = self._reference()
        result.reference, result.reference_text, result.reference_lang = ref
        return result

    def _reference(self) -> tuple[Path, str, str]:
        """The dataset clip closest to 5 s within 3-10 s (what GPT-SoVITS references need), with its
        transcript; when every clip is shorter, consecutive clips of one language joined with 0.2 s pauses
        (written to the run folder) and their transcripts joined."""
        import numpy as np
        import soundfile as sf

        paths = [self.data.root / "5-wav32k" / u.name for u in self.data.items]
        secs = [sf.info(str(p)).duration for p in paths]
        fitting = [i for i, d in enumerate(secs) if 3.0 <= d <= 10.0]
        if fitting:
            best = min(fitting, key=lambda i: abs(secs[i] - 5.0))
            u = self.data.items[best]
            return paths[best], u.text, u.lang
        lang = self.data.items[0].lang
        parts, texts, total = [], [], 0.0
        for i, u in enumerate(self.data.items):
            if u.lang != lang or total + secs[i] > 10.0:
                continue
            parts += [self.data.wav(i)[0].numpy(), np.zeros(6400, dtype=np.float32)]
            texts.append(u.text)
            total += secs[i] + 0.2
            if total >= 5.0:
                break
        out = self.run_dir / "reference.wav"
        if self.rank == 0:
            sf.write(str(out), np.concatenate(parts), 32000)
        return out, " ".join(texts), lang

    def _sovits_items(self) -> list[tuple[Tensor, Tensor, Tensor, list[int]]]:
        items = []
        for i, u in enumerate(self.data.items):
            wav = self.data.wav(i)
            spec = linear_spectrogram(wav[0], self.sovits_cfg.spectrogram)[0]
            ssl = match_length(self.data.hubert(i), spec.shape[1])
            items.append((ssl, spec, wav, u.phones))
        return items

    def _run_sovits(self, log: LossLog | None) -> tuple[Path, int]:
        opts = self.opts
        model = self._new_sovits()
        disc = load_discriminator(opts.base_disc) if opts.base_disc else MultiPeriodDiscriminator()
        disc = disc.to(self.device)
        overrides: dict[str, Any] = {"freeze_quantizer": not opts.unfreeze_quantizer}
        if opts.segment_size:
            overrides["segment_size"] = opts.segment_size
        tcfg = SovitsTrainConfig.from_checkpoint_config(self._base_config(), **overrides)
        tcfg.learning_rate *= opts.lr_scale
        items = self._sovits_items()
        seg_frames = tcfg.segment_size // self.sovits_cfg.spectrogram.hop_length
        short = [u.name for u, it in zip(self.data.items, items) if it[1].shape[1] < seg_frames]
        if short:  # the official loader drops clips under 0.6 s (one 20480-sample slice is 0.64 s)
            items = [it for it in items if it[1].shape[1] >= seg_frames]
            self.say(f"SoVITS skips {len(short)} clip(s) shorter than one decoder slice "
                     f"({tcfg.segment_size} samples), e.g. {short[0]}")
        if len(items) < self.batch * self.world:
            raise TrainingDatasetError(
                f"only {len(items)} clip(s) are at least one decoder slice ({tcfg.segment_size} samples) long, "
                f"fewer than one batch of {self.batch * self.world}; add longer clips or lower --batch-size"
            )
        params = None
        if opts.lora:
            from anchorvoice.plugins.gsv.training.lora import add_lora_sovits

            params = add_lora_sovits(model, opts.lora)
        net: nn.Module = model
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
            disc = nn.parallel.DistributedDataParallel(disc)  # type: ignore[assignment]
        trainer = SovitsTrainer(net, disc, tcfg, opts.precision, params=params)  # type: ignore[arg-type]
        state = self._load_state("sovits")
        start = 0
        if state is not None:
            model.load_state_dict(state["model"])
            _unwrap(disc).load_state_dict(state["disc"])
            trainer.load_state_dict(state["trainer"])
            start = int(state["step"])
            self.say(f"resuming SoVITS at step {start}")
        per_epoch = len(items) // (self.batch * self.world)

        def step(epoch: int, index: int) -> dict[str, float]:
            order = _epoch_order(len(items), epoch, opts.seed)
            lo = index * self.batch * self.world + self.rank * self.batch
            batch = collate_sovits([items[j] for j in order[lo : lo + self.batch]])
            return trainer.step(batch)

        def save(at: int) -> None:
            if self.rank == 0:
                atomic_save({"model": model.state_dict(), "disc": _unwrap(disc).state_dict(),
                             "trainer": trainer.state_dict(), "step": at}, self._state_path("sovits"))

        loop = StageLoop("sovits", opts.sovits_epochs, per_epoch, step, save,
                         end_epoch=lambda e: trainer.end_epoch(), log=log, progress=self.progress,
                         max_steps=opts.max_steps or None)
        final = loop.run(start)
        out = self.run_dir / f"{opts.name}-sovits.pth"
        if self.rank == 0:
            epochs = max(1, final // max(1, per_epoch))
            s2_export: nn.Module = model
            if opts.lora:
                from anchorvoice.plugins.gsv.training.lora import merged_copy

                s2_export = merged_copy(model)
            info = f"{epochs}epoch_{final}iteration"
            write_sovits(out, s2_export, self._base_config(), info, self.sovits_cfg.version)
            write_discriminator(self.run_dir / f"{opts.name}-disc.pth", _unwrap(disc))
        if opts.unfreeze_quantizer:
            tokens = self._extract_tokens(model)
            self.data.with_semantic({k: v.tolist() for k, v in tokens.items()})
            if self.rank == 0:
                write_semantic(self.run_dir / "6-name2semantic.tsv", {k: v.tolist() for k, v in tokens.items()})
            self.say("semantic tokens re-extracted with the fine-tuned quantizer")
        return out, final

    def _run_gpt(self, log: LossLog | None) -> tuple[Path, int]:
        opts = self.opts
        if opts.base_gpt:
            ck = load_gpt(opts.base_gpt)
            if self.sovits_ckpt is not None:
                check_phoneme_vocab(int(ck.weights["ar_text_embedding.word_embeddings.weight"].shape[0]),
                                    int(self.sovits_ckpt.weights["enc_p.text_embedding.weight"].shape[0]))
            cfg = T2SConfig.from_checkpoint_config(ck.config)
            t2s = load_t2s_weights(cfg, ck.weights)
            config = dict(ck.config)
        else:
            torch.manual_seed(opts.seed)
            cfg = T2SConfig()
            t2s = Text2SemanticDecoder(cfg)
            config = {"model": {"hidden_dim": cfg.hidden_dim, "embedding_dim": cfg.embedding_dim, "head": cfg.head,
                                "n_layer": cfg.n_layer, "vocab_size": cfg.vocab_size,
                                "phoneme_vocab_size": cfg.phoneme_vocab_size, "EOS": cfg.eos, "dropout": 0,
                                "random_bert": 0, "linear_units": 4 * cfg.hidden_dim},
                      "data": {"max_sec": cfg.max_sec}}
        t2s.train().requires_grad_(True).to(self.device)
        items = []
        for i, u in enumerate(self.data.items):
            if u.semantic is None:
                raise TrainingDatasetError(
                    f"{u.name} has no semantic tokens in 6-name2semantic.tsv; finish the dataset (step 3) first"
                )
            items.append((u.phones, self.data.bert(i), u.semantic))
        params = None
        if opts.lora:
            from anchorvoice.plugins.gsv.training.lora import add_lora_gpt

            params = add_lora_gpt(t2s, opts.lora)
        wrapped = GptTrainModel(t2s)
        net: nn.Module = wrapped
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(wrapped)
        per_epoch = len(items) // (self.batch * self.world)
        gcfg = GptTrainConfig(decay_steps=max(2, per_epoch * opts.gpt_epochs),
                              warmup_steps=min(200, max(1, per_epoch * opts.gpt_epochs // 10)))
        gcfg.lr_init *= opts.lr_scale
        gcfg.lr_peak *= opts.lr_scale
        gcfg.lr_end *= opts.lr_scale
        trainer = GptTrainer(net, gcfg, opts.precision, params=params, loss_scale=float(self.world))
        state = self._load_state("gpt")
        start = 0
        if state is not None:
            wrapped.load_state_dict(state["model"])
            trainer.load_state_dict(state["trainer"])
            start = int(state["step"])
            self.say(f"resuming GPT at step {start}")

        def step(epoch: int, index: int) -> dict[str, float]:
            order = _epoch_order(len(items), epoch, opts.seed + 1)
            lo = index * self.batch * self.world + self.rank * self.batch
            return trainer.step(collate_gpt([items[j] for j in order[lo : lo + self.batch]], cfg.eos))

        def save(at: int) -> None:
            if self.rank == 0:
                atomic_save({"model": wrapped.state_dict(), "trainer": trainer.state_dict(), "step": at},
                            self._state_path("gpt"))

        loop = StageLoop("gpt", opts.gpt_epochs, per_epoch, step, save, log=log, progress=self.progress,
                         max_steps=opts.max_steps or None)
        final = loop.run(start)
        out = self.run_dir / f"{opts.name}-gpt.ckpt"
        if self.rank == 0:
            export: nn.Module = t2s
            if opts.lora:
                from anchorvoice.plugins.gsv.training.lora import merged_copy

                export = merged_copy(t2s)
            write_gpt(out, export, config, f"GPT-e{max(1, final // max(1, per_epoch))}")
        return out, final


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m
