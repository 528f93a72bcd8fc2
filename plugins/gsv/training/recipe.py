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
from dataclasses import dataclass, field
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
from anchorvoice.plugins.gsv.training.bases import check_dataset_fits, load_discriminator, tokens_match
from anchorvoice.plugins.gsv.training.dataset import GsvDataset, match_length, write_semantic
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.gpt_step import GptTrainer, GptTrainModel, collate_gpt
from anchorvoice.plugins.gsv.training.options import (
    TrainOptions,
    check_bases,
    check_order,
    check_resume,
    gpt_train_config,
)
from anchorvoice.plugins.gsv.training.sovits_step import (
    SovitsTrainConfig,
    SovitsTrainer,
    SovitsTrainModel,
    collate_sovits,
    item_randomness,
    unwrap_ddp,
)


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
    lora: dict[str, Path] = field(default_factory=dict)
    """With ``--lora`` and a base: per stage (``sovits``, ``gpt``) the adapters as a voice-store ``"lora"``
    delta on the base file (:mod:`anchorvoice.plugins.gsv.training.lora_export`)."""


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
        self.lora_files: dict[str, Path] = {}
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
        result.lora = dict(self.lora_files)
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
        if opts.lora:
            overrides["lora_lr_scale"] = opts.lora_lr_scale
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
            unwrap_ddp(disc).load_state_dict(state["disc"])
            trainer.load_state_dict(state["trainer"])
            start = int(state["step"])
            self.say(f"resuming SoVITS at step {start}")
        per_epoch = len(items) // (self.batch * self.world)

        def step(epoch: int, index: int) -> dict[str, float]:
            order = _epoch_order(len(items), epoch, opts.seed)
            lo = index * self.batch * self.world + self.rank * self.batch
            picked = order[lo : lo + self.batch]
            batch = collate_sovits([items[j] for j in picked])
            # per-item draws: the same slices and noise however the global batch is split over processes
            seeds = [(opts.seed * 1_000_003 + epoch) * 1_000_003 + j for j in picked]
            starts, noise = item_randomness(batch, seg_frames, self.sovits_cfg.inter_channels, seeds)
            return trainer.step(batch, slice_starts=starts, noise=noise)

        def save(at: int) -> None:
            if self.rank == 0:
                atomic_save({"model": model.state_dict(), "disc": unwrap_ddp(disc).state_dict(),
                             "trainer": trainer.state_dict(), "step": at}, self._state_path("sovits"))

        loop = StageLoop("sovits", opts.sovits_epochs, per_epoch, step, save,
                         end_epoch=lambda e: trainer.end_epoch(), log=log, progress=self.progress,
                         max_steps=opts.max_steps or None)
        final = loop.run(start)
        out = self.run_dir / f"{opts.name}-sovits.pth"
        if self.rank == 0:
            epochs = max(1, final // max(1, per_epoch))
            s2_export = self._export(model, "sovits", self.sovits_ckpt.weights if self.sovits_ckpt else None)
            info = f"{epochs}epoch_{final}iteration"
            write_sovits(out, s2_export, self._base_config(), info, self.sovits_cfg.version)
            write_discriminator(self.run_dir / f"{opts.name}-disc.pth", unwrap_ddp(disc))
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
            base_weights: dict[str, Tensor] | None = ck.weights
        else:
            base_weights = None
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
        wrapped = GptTrainModel(t2s, dropout=opts.gpt_dropout)
        net: nn.Module = wrapped
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(wrapped)
        per_epoch = len(items) // (self.batch * self.world)
        gcfg = gpt_train_config(opts, per_epoch)
        if 1 < gcfg.accumulate and per_epoch <= gcfg.accumulate:
            self.say(f"GPT: {per_epoch} batch(es) per epoch; the official trainer steps only after batch 4, 8, ... "
                     "of an epoch and would never step: here each epoch steps once, after its last batch")
        trainer = GptTrainer(net, gcfg, opts.precision, params=params, loss_scale=float(self.world),
                             batches_per_epoch=per_epoch)
        state = self._load_state("gpt")
        start = 0
        if state is not None:
            wrapped.load_state_dict(state["model"])
            trainer.load_state_dict(state["trainer"])
            start = int(state["step"])
            self._restore_pending(trainer, state, start)
            self.say(f"resuming GPT at step {start}")

        def step(epoch: int, index: int) -> dict[str, float]:
            order = _epoch_order(len(items), epoch, opts.seed + 1)
            lo = index * self.batch * self.world + self.rank * self.batch
            return trainer.step(collate_gpt([items[j] for j in order[lo : lo + self.batch]], cfg.eos), index)

        def save(at: int) -> None:
            grads = trainer.pending()
            if self.world > 1:  # every process keeps its own share of the cycle (not all-reduced yet)
                atomic_save({"step": at, "world": self.world, "grads": grads}, self._pending_path(self.rank))
            if self.rank == 0:
                atomic_save({"model": wrapped.state_dict(), "trainer": trainer.state_dict(), "step": at,
                             "world": self.world, "mid_cycle": any(g is not None for g in grads),
                             "pending": grads if self.world == 1 else None},
                            self._state_path("gpt"))

        loop = StageLoop("gpt", opts.gpt_epochs, per_epoch, step, save, log=log, progress=self.progress,
                         max_steps=opts.max_steps or None)
        final = loop.run(start)
        out = self.run_dir / f"{opts.name}-gpt.ckpt"
        if self.rank == 0:
            write_gpt(out, self._export(t2s, "gpt", base_weights), config, f"GPT-e{max(1, final // max(1, per_epoch))}")
        return out, final

    def _export(self, model: nn.Module, kind: str, base_weights: dict[str, Tensor] | None) -> nn.Module:
        """The model to write in the official format: with ``--lora`` the adapters merged, and, when there is
        a base, the adapters also written as a voice-store delta on it (``<name>-<kind>.lora.safetensors``)."""
        if not self.opts.lora:
            return model
        from anchorvoice.plugins.gsv.training.lora import merged_copy
        from anchorvoice.plugins.gsv.training.lora_export import store_delta, write_delta

        if base_weights is not None:
            path = self.run_dir / f"{self.opts.name}-{kind}.lora.safetensors"
            self.lora_files[kind] = write_delta(path, store_delta(model, base_weights))
        return merged_copy(model)

    def _pending_path(self, rank: int) -> Path:
        return self.run_dir / f"pending-gpt-r{rank}.pt"

    def _restore_pending(self, trainer: GptTrainer, state: dict[str, Any], start: int) -> None:
        """Put back the gradients accumulated since the last optimiser step of the saved run."""
        if not state.get("mid_cycle", False):
            return
        saved_world = int(state.get("world", 1))
        if saved_world != self.world:
            self.say(f"GPT: the gradients accumulated by {saved_world} process(es) since the last optimiser step "
                     f"are dropped (this run has {self.world}); resume with {saved_world} to keep them")
            return
        if self.world == 1:
            grads = state.get("pending")
        else:
            path = self._pending_path(self.rank)
            obj = load_pickled(path)[0] if path.is_file() else None
            if not (isinstance(obj, dict) and obj.get("step") == start and obj.get("world") == self.world):
                self.say(f"GPT: {path.name} does not belong to step {start}; this process's gradients since the "
                         "last optimiser step are dropped")
                return
            grads = obj["grads"]
        if grads is not None:
            trainer.load_pending(grads)
