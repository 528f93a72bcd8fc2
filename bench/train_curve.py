"""Does SoVITS training converge, and what does LoRA give up against a full fine-tune (SoVITS and GPT)?

Usage: ``.venv/bin/python bench/train_curve.py [--minutes 10] [--train-steps 80 | --train-seconds 600]
[--eval-steps 20 | --eval-every 60] [--lora-rank 8] [--finetune-steps 40] [--finetune-eval-steps 10]
[--variants full,lora=prior_attention@1,lora@1,lora] [--gpt-steps 40] [--save-base F | --load-base F]
[--threads 2] [--json]``

Part 1, convergence: a small SoVITS v2 generator (the reference fixtures' sizes: the flow, MRTE and
reference encoder keep their hard-coded official widths; decoder and text encoder are small) and a
multi-period discriminator, both from random weights, train on ``--minutes`` of one real speaker (Allison,
the voice of Debian's Asterisk prompts, transcripts from the package) with the official losses and
optimiser (``SovitsTrainer``) for ``--train-steps`` optimiser steps (the figures then do not depend on
the machine's speed or load; the held-out losses every ``--eval-steps`` steps) or, without it, for
``--train-seconds`` of wall time (evaluations every ``--eval-every`` seconds of training, not counted).
Held-out clips (every 10th, at most ``--held-out``) never train:

* ``recon``: mel L1 (the training loss's mel, without its x45) of the posterior path, spectrogram ->
  ``enc_q`` (mean, no noise) -> decoder, over whole clips: the decoder learning to speak;
* ``prior``: mel L1 of the inference path, semantic tokens + phones + the clip as its own reference ->
  ``decode`` (noise scale 0.5, fixed seed): what ``speak`` would produce;
* ``kl``: the KL term between posterior and prior on the held-out clips.

Content features come from a small random-weight HuBERT (768 wide, as ``ssl_proj`` needs): no
pretrained HuBERT is reachable here, so the prior learns from random projections of the audio. The
curve shows the optimisation converging, not the quality a pretrained base gives. ``--save-base`` keeps
the part-1 model (and discriminator) in a file, ``--load-base`` starts parts 2 and 3 from it.

Part 2, SoVITS LoRA vs full (``bench/sovits_lora_curve.py``): the part-1 model is the base, flite's
``slt`` reading other transcripts the fine-tune target; from the same base, batches, slices and noise,
``--finetune-steps`` steps of each ``--variants`` entry, held-out losses every ``--finetune-eval-steps``.

Part 3, GPT LoRA vs full (``bench/gpt_lora_curve.py``): a fixture-size GPT learns the base speaker's
(phones, semantic tokens), the tokens from the part-1 model's frozen quantizer, then fine-tunes to
slt's for ``--gpt-steps`` optimiser steps: the official recipe against ``train --lora``'s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel
from anchorvoice.plugins.gsv.sovits import SovitsConfig, official_v2_config
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.sovits_step import SovitsTrainConfig, SovitsTrainer, SovitsTrainModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.* from the checkout
from bench.curve_data import base_speaker, batches, have_speech, seconds, target_speaker, transcripts  # noqa: E402
from bench.curve_eval import Evaluator, train_for  # noqa: E402
from bench.machine import machine_line  # noqa: E402

SMALL_MODEL = {"inter_channels": 64, "hidden_channels": 192, "filter_channels": 256, "n_heads": 2, "n_layers": 2,
               "kernel_size": 3, "upsample_initial_channel": 64}
"""The reference fixtures' reduced sizes (gsv_reference/README.md section 1.1); the rest official v2."""
HUBERT_768 = {"conv_dim": [64] * 7, "hidden_size": 768, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 256, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 16}


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="speech of the base speaker (default 10)")
    ap.add_argument("--train-steps", type=int, default=0, help="part 1 optimiser steps (0: --train-seconds)")
    ap.add_argument("--train-seconds", type=float, default=600.0, help="part 1 wall time without --train-steps")
    ap.add_argument("--eval-steps", type=int, default=20, help="steps between held-out evaluations (--train-steps)")
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds between evaluations (--train-seconds)")
    ap.add_argument("--held-out", type=int, default=12, help="held-out clips evaluated (default 12)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--segment-size", type=int, default=10240, help="decoder slice in samples (official 20480)")
    ap.add_argument("--save-base", default="", help="write the part-1 model and discriminator here")
    ap.add_argument("--load-base", default="", help="skip part 1: start from this --save-base file")
    ap.add_argument("--lora-rank", type=int, default=8, help="adapter rank of parts 2 and 3 (0: skip them)")
    ap.add_argument("--target-minutes", type=float, default=2.0, help="speech of the fine-tune speaker")
    ap.add_argument("--finetune-steps", type=int, default=40, help="part 2 steps per variant")
    ap.add_argument("--finetune-eval-steps", type=int, default=10, help="part 2 steps between evaluations")
    ap.add_argument("--variants", default="full,lora=prior_attention@1,lora@1,lora",
                    help="part 2 runs: full, or lora[=GROUP+GROUP][@LR_SCALE] (default groups and scale: "
                         "train --lora's)")
    ap.add_argument("--gpt-steps", type=int, default=40, help="part 3 fine-tune optimiser steps (0: skip part 3)")
    ap.add_argument("--gpt-base-steps", type=int, default=300, help="part 3 base GPT optimiser steps")
    ap.add_argument("--gpt-lora-scales", default="1,30",
                    help="part 3 LoRA lr factors, comma-separated (empty: train --lora's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    return ap.parse_args()


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    print(machine_line(args.threads), flush=True)
    if not have_speech():
        raise SystemExit("needs Debian's asterisk-core-sounds-en-g722 and flite (`make venv` installs them as root)")
    config = official_v2_config()
    config["model"].update(SMALL_MODEL)
    cfg = SovitsConfig.from_checkpoint_config(config)
    hubert = HubertModel(HubertConfig.from_json(HUBERT_768)).eval()
    texts = transcripts()
    t0 = time.perf_counter()
    clips = base_speaker(texts, args.minutes, cfg, hubert)
    held = clips[::10][:args.held_out]
    train = [c for c in clips if c not in held]
    print(f"speaker Allison (Asterisk prompts): {len(clips)} clips, {seconds(clips) / 60:.1f} min; {len(held)} held "
          f"out; features in {time.perf_counter() - t0:.0f} s", flush=True)
    tcfg = SovitsTrainConfig.from_checkpoint_config(config, segment_size=args.segment_size)
    seg = args.segment_size // cfg.spectrogram.hop_length
    train = [c for c in train if c.item[1].shape[1] >= seg]
    model = SovitsTrainModel(cfg)
    disc = MultiPeriodDiscriminator()
    rows: list[dict[str, Any]] = []
    if args.load_base:
        saved = torch.load(args.load_base, weights_only=True)
        model.load_state_dict(saved["model"])
        disc.load_state_dict(saved["disc"])
        print(f"part 1: base loaded from {args.load_base} ({saved['steps']} steps)", flush=True)
    else:
        trainer = SovitsTrainer(model, disc, tcfg, "fp32")
        n_params = sum(p.numel() for p in model.parameters())
        budget = f"{args.train_steps} steps" if args.train_steps else f"{args.train_seconds:.0f} s"
        print(f"part 1: small SoVITS from random weights ({n_params / 1e6:.1f} M parameters), batch {args.batch_size}, "
              f"slice {args.segment_size} samples, {budget} of training", flush=True)
        data = batches([c.item for c in train], args.batch_size, 0, seg, cfg.inter_channels)
        steps = train_for(trainer, data, Evaluator(held, trainer), "from-zero", rows, steps=args.train_steps,
                          seconds=args.train_seconds, every_steps=args.eval_steps if args.train_steps else 0,
                          every_seconds=args.eval_every)
        first, last = rows[0], rows[-1]
        print(f"part 1: {steps} steps; held-out recon mel L1 {first['recon_mel_l1']:.3f} -> {last['recon_mel_l1']:.3f},"
              f" prior mel L1 {first['prior_mel_l1']:.3f} -> {last['prior_mel_l1']:.3f}", flush=True)
        if args.save_base:
            torch.save({"model": model.state_dict(), "disc": disc.state_dict(), "steps": steps}, args.save_base)
    if args.lora_rank and (args.finetune_steps or args.gpt_steps):
        from bench.gpt_lora_curve import gpt_lora_vs_full
        from bench.sovits_lora_curve import sovits_lora_vs_full

        target = target_speaker(texts, args.target_minutes, cfg, hubert)
        print(f"fine-tune speaker flite slt: {len(target)} clips, {seconds(target) / 60:.1f} min", flush=True)
        if args.finetune_steps:
            sovits_lora_vs_full(args, model, disc, tcfg, target, rows)
        if args.gpt_steps:
            gpt_lora_vs_full(args, model, clips, target, rows)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
