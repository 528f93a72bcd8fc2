"""Part 2 of ``bench/train_curve.py``: SoVITS fine-tune to a new speaker, in full and with LoRA variants.

Every variant starts from the same base model and discriminator and trains on the same batches, slices
and posterior noise for ``--finetune-steps`` steps; the held-out losses (slt clips that never train) are
printed every ``--finetune-eval-steps`` steps and side by side at the end, with each variant's trainable
parameters and what it stores (fp16): the whole generator for a full fine-tune, the adapters for LoRA.
A variant is ``full`` or ``lora[=GROUP+GROUP][@LR_SCALE]`` (groups of ``lora.SOVITS_GROUPS``; defaults:
what ``train --lora`` uses). The last lines give the adapter size of the full-size official v2 SoVITS
and GPT at ``--lora-rank``, from parameter counts (models built on the meta device).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass, replace
from typing import Any

import torch

from anchorvoice.plugins.gsv.sovits import SovitsConfig, official_v2_config
from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.lora import SOVITS_TARGETS, add_lora_gpt, add_lora_sovits, lora_state
from anchorvoice.plugins.gsv.training.options import TrainOptions
from anchorvoice.plugins.gsv.training.sovits_step import SovitsTrainConfig, SovitsTrainer, SovitsTrainModel
from bench.curve_data import Clip, batches
from bench.curve_eval import Evaluator, train_for


@dataclass(frozen=True)
class Variant:
    label: str
    groups: tuple[str, ...] | None
    """Adapted groups (None: full fine-tune)."""
    lr_scale: float = 1.0


def parse_variants(spec: str) -> list[Variant]:
    default_scale = TrainOptions("", "", "").lora_lr_scale
    out = []
    for raw in spec.split(","):
        raw = raw.strip()
        if raw == "full":
            out.append(Variant("full", None))
            continue
        if not raw.startswith("lora"):
            raise SystemExit(f"--variants: {raw!r} is neither full nor lora[=GROUP+GROUP][@LR_SCALE]")
        body, _, scale = raw[4:].partition("@")
        groups = tuple(body.removeprefix("=").split("+")) if body else SOVITS_TARGETS
        lr = float(scale) if scale else default_scale
        name = "all" if groups == SOVITS_TARGETS else "+".join(groups)
        out.append(Variant(f"lora {name} x{lr:g}", groups, lr))
    labels = [v.label for v in out]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"--variants names one run twice: {', '.join(labels)}")
    return out


def sizes_full_size(rank: int) -> tuple[int, int]:
    """Adapter parameters of the full-size official v2 SoVITS (``train --lora``'s groups) and GPT at ``rank``."""
    with torch.device("meta"):
        sovits = SovitsTrainModel(SovitsConfig.from_checkpoint_config(official_v2_config()))
        gpt = Text2SemanticDecoder(T2SConfig())
        return (sum(p.numel() for p in add_lora_sovits(sovits, rank)),
                sum(p.numel() for p in add_lora_gpt(gpt, rank)))


def sovits_lora_vs_full(args: argparse.Namespace, base: SovitsTrainModel, base_disc: MultiPeriodDiscriminator,
                        tcfg: SovitsTrainConfig, clips: list[Clip], rows: list[dict[str, Any]]) -> None:
    held = clips[::5][:args.held_out]
    seg = tcfg.segment_size // base.cfg.spectrogram.hop_length
    train = [c.item for c in clips if c not in held and c.item[1].shape[1] >= seg]
    variants = parse_variants(args.variants)
    print(f"part 2: SoVITS fine-tune to slt, {len(train)} training clips, {len(held)} held out; "
          f"{args.finetune_steps} steps per variant, same batches, slices and noise", flush=True)
    results: dict[str, tuple[int, int]] = {}
    for v in variants:
        torch.manual_seed(99)  # the same adapter initialisation (A) whatever ran before
        model, disc = copy.deepcopy(base), copy.deepcopy(base_disc)
        params = add_lora_sovits(model, args.lora_rank, v.groups) if v.groups else None
        trainer = SovitsTrainer(model, disc, replace(tcfg, lora_lr_scale=v.lr_scale), "fp32", params=params)
        trainable = sum(p.numel() for p in (params or [p for p in model.parameters() if p.requires_grad]))
        stored = (sum(t.numel() for t in lora_state(model).values()) if params else
                  sum(t.numel() for k, t in model.state_dict().items() if not k.startswith("enc_q.")))
        results[v.label] = (trainable, stored)
        train_for(trainer, batches(train, args.batch_size, 1, seg, base.cfg.inter_channels), Evaluator(held, trainer),
                  v.label, rows, steps=args.finetune_steps, every_steps=args.finetune_eval_steps)
    print("part 2 summary: held-out prior mel L1 / recon mel L1 at step", flush=True)
    steps = sorted({r["step"] for r in rows if r["run"] == variants[0].label})
    print(f"  {'variant':>22} " + " ".join(f"{s:>13d}" for s in steps) + "   trainable    stored (fp16)")
    for v in variants:
        got = {r["step"]: r for r in rows if r["run"] == v.label}
        cells = " ".join(f"{got[s]['prior_mel_l1']:6.3f}/{got[s]['recon_mel_l1']:6.3f}" for s in steps)
        trainable, stored = results[v.label]
        print(f"  {v.label:>22} {cells}   {trainable / 1e6:6.2f} M  {stored * 2 / 1e6:8.2f} MB", flush=True)
    sovits_n, gpt_n = sizes_full_size(args.lora_rank)
    print(f"full-size official v2 at rank {args.lora_rank}: SoVITS adapters ({'+'.join(SOVITS_TARGETS)}) "
          f"{sovits_n / 1e6:.2f} M parameters = {sovits_n * 2 / 1e6:.2f} MB fp16; GPT adapters "
          f"{gpt_n / 1e6:.2f} M = {gpt_n * 2 / 1e6:.2f} MB", flush=True)
