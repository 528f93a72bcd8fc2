"""`anchorvoice train NAME`: fine-tune GPT-SoVITS v2 from pretrained weights and add the voice.

The same command runs under ``torchrun --nproc-per-node N -m anchorvoice.train NAME ...``: each
process then trains on its share of every global batch with DistributedDataParallel (NCCL on
GPUs, gloo on CPUs). A single process never starts a process group.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from anchorvoice.engine.cli.common import emit, home_of, make_engine, progress
from anchorvoice.engine.cli.heap import keep_heap
from anchorvoice.engine.training import Progress, RunLock
from anchorvoice.errors import TrainingError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune a GPT-SoVITS voice from a dataset and pretrained weights")
    add_arguments(p)
    p.set_defaults(func=run_train)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="voice name (also the run folder <home>/training/NAME)")
    p.add_argument("--dataset", required=True,
                   help="dataset folder in the GPT-SoVITS layout, or the name of one in <home>/datasets")
    p.add_argument("--base-gpt", default="", help="pretrained GPT (s1) .ckpt")
    p.add_argument("--base-sovits", default="", help="pretrained SoVITS generator (s2G) .pth")
    p.add_argument("--base-disc", default="", help="pretrained SoVITS discriminator (s2D) .pth")
    p.add_argument("--hubert", default="",
                   help="chinese-hubert-base folder the dataset was made with (recorded with the voice)")
    p.add_argument("--sovits-epochs", type=int, default=8, help="SoVITS epochs (default 8)")
    p.add_argument("--gpt-epochs", type=int, default=15, help="GPT epochs (default 15)")
    p.add_argument("--batch-size", default="auto", help="items per step per process, or 'auto' (from memory)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32",
                   help="autocast precision: fp16/bf16 on CUDA; bf16 on a CPU with AVX-512 (with AVX512-bf16 or AMX "
                        "about 2x the float32 step, losses within 0.1%%; emulated and slower without; refused on "
                        "AVX2-only CPUs); fp32 is exact")
    p.add_argument("--unfreeze-quantizer", action="store_true",
                   help="train the codebook too (then SoVITS first, tokens re-extracted, then GPT)")
    p.add_argument("--lora", type=int, default=0, metavar="RANK", help="train low-rank adapters of this rank")
    p.add_argument("--lora-lr-scale", type=float, default=None, metavar="FACTOR",
                   help="with --lora: factor on the adapters' learning rate (default: the measured recipe's)")
    p.add_argument("--order", choices=("sovits-first", "gpt-first"), default="sovits-first")
    p.add_argument("--stage", choices=("both", "sovits", "gpt"), default="both", help="stages to run")
    p.add_argument("--from-scratch", action="store_true", help="allow random initial weights where no base is given")
    p.add_argument("--resume", action="store_true", help="continue the saved run of NAME")
    p.add_argument("--segment-size", type=int, default=0, help="decoder slice in samples (default: base config)")
    p.add_argument("--max-steps", type=int, default=0, help="stop each stage after this many steps")
    p.add_argument("--lr-scale", type=float, default=1.0, help="factor on the learning rates")
    p.add_argument("--gpt-optimizer", choices=("auto", "scaled-adam", "adamw"), default="auto",
                   help="GPT optimiser: auto = ScaledAdam as the official trainer (AdamW with --lora)")
    p.add_argument("--gpt-dropout", type=float, default=0.1, help="GPT training dropout (official 0.1)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--overwrite", action="store_true", help="replace an existing voice of that name")
    # accepted after the command too, for `python -m anchorvoice.train NAME --home ...` (torchrun)
    p.add_argument("--home", default=argparse.SUPPRESS, help="user data directory (as before the command)")


def _dataset_path(args: argparse.Namespace) -> Path:
    given = Path(args.dataset).expanduser()
    if given.is_dir():
        return given.resolve()
    named = home_of(args) / "datasets" / args.dataset
    if named.is_dir():
        return named.resolve()
    raise TrainingError(f"dataset '{args.dataset}' is neither a folder nor a dataset in {named.parent}; "
                        "make one with `anchorvoice dataset make`")


def _batch_size(raw: str) -> int:
    if raw == "auto":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise TrainingError(f"--batch-size must be a positive integer or 'auto', not {raw!r}") from None
    if value < 1:
        raise TrainingError(f"--batch-size must be at least 1, not {value}")
    return value


def _init_distributed(device: str) -> tuple[str, bool]:
    """Under torchrun (WORLD_SIZE > 1): start the process group; returns (device for this rank, started)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device, False
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return f"cuda:{local}", True
    dist.init_process_group("gloo")
    return device, True


def run_train(args: argparse.Namespace) -> int:
    from anchorvoice.plugins.gsv.training.options import TrainOptions
    from anchorvoice.plugins.gsv.training.recipe import FineTune

    if args.lora_lr_scale is not None and (not args.lora or args.lora_lr_scale <= 0):
        raise TrainingError(f"--lora-lr-scale {args.lora_lr_scale}: give a positive factor, together with --lora RANK")
    if not args.hubert:  # checked before hours of training, not when the voice is added at the end
        raise TrainingError(
            "the trained voice needs the HuBERT feature extractor its dataset was made with: "
            "add --hubert path/to/chinese-hubert-base"
        )
    if not (Path(args.hubert).expanduser() / "config.json").is_file():
        raise TrainingError(f"--hubert {args.hubert}: not a HuBERT folder (no config.json); point it at "
                            "chinese-hubert-base/")
    stages = ("sovits", "gpt") if args.stage == "both" else (args.stage,)
    run_dir = home_of(args) / "training" / args.name
    device, distributed = _init_distributed(args.device)
    opts = TrainOptions(
        name=args.name, dataset=str(_dataset_path(args)), run_dir=str(run_dir), base_gpt=args.base_gpt,
        base_sovits=args.base_sovits, base_disc=args.base_disc, sovits_epochs=args.sovits_epochs,
        gpt_epochs=args.gpt_epochs, batch_size=_batch_size(args.batch_size), device=device,
        precision=args.precision, unfreeze_quantizer=args.unfreeze_quantizer, lora=args.lora, order=args.order,
        stages=stages, from_scratch=args.from_scratch, resume=args.resume, segment_size=args.segment_size,
        max_steps=args.max_steps, seed=args.seed, lr_scale=args.lr_scale,
        gpt_optimizer="" if args.gpt_optimizer == "auto" else args.gpt_optimizer.replace("-", "_"),
        gpt_dropout=args.gpt_dropout,
        **({} if args.lora_lr_scale is None else {"lora_lr_scale": args.lora_lr_scale}),
    )
    try:
        rank = int(os.environ.get("RANK", "0")) if distributed else 0
        quiet = getattr(args, "quiet", False) or getattr(args, "json", False) or rank != 0
        bar = Progress(None if quiet else sys.stderr)
        lock = RunLock(run_dir / "lock") if rank == 0 else None
        if lock:
            lock.__enter__()
        try:
            heap = keep_heap()  # each step frees and reallocates the same tensors: keep them off mmap
            if rank == 0:
                progress(args, heap)
            job = FineTune(opts, log=lambda m: progress(args, m) if rank == 0 else None, progress=bar)
            result = job.run()
        finally:
            if lock:
                lock.__exit__(None, None, None)
        if rank != 0:
            return 0
        models: dict[str, str | Path] = {}
        if result.sovits:
            models["sovits"] = result.sovits
        elif opts.base_sovits:
            models["sovits"] = opts.base_sovits
        if result.gpt:
            models["gpt"] = result.gpt
        elif opts.base_gpt:
            models["gpt"] = opts.base_gpt
        if args.hubert:
            models["hubert"] = args.hubert
        engine = make_engine(args)
        try:
            assert result.reference is not None
            # --lora: the voice keeps only its adapters, as a delta on the shared base (a few MB, not a model)
            from safetensors.torch import load_file

            bases = {"sovits": opts.base_sovits, "gpt": opts.base_gpt}
            for kind, delta_file in result.lora.items():
                if bases.get(kind):
                    models[kind] = engine.store_model_delta(kind, bases[kind], load_file(str(delta_file)))
            voice = engine.add_voice(args.name, [result.reference], ref_text=result.reference_text,
                                     ref_lang=result.reference_lang, models=models, overwrite=args.overwrite)
        finally:
            engine.close()
        emit(args, {"voice": voice.name, "models": {k: str(v) for k, v in models.items()}, "steps": result.steps,
                    "run_dir": str(run_dir)},
             f"voice '{voice.name}' trained ({', '.join(f'{k} {v} steps' for k, v in result.steps.items())}); "
             f"files in {run_dir}")
        return 0
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anchorvoice.train`` (torchrun entry): the ``train`` command's arguments only."""
    from anchorvoice.engine.cli.main import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])
