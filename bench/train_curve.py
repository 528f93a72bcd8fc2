"""Does SoVITS training converge, and what does LoRA give up against a full fine-tune?

Usage: ``.venv/bin/python bench/train_curve.py [--minutes 10] [--train-seconds 600] [--eval-every 60]
[--lora-rank 8] [--finetune-steps 60] [--threads 2] [--json]``

Part 1, convergence: a small SoVITS v2 generator (the reference fixtures' sizes: the flow, MRTE and
reference encoder keep their hard-coded official widths; decoder and text encoder are small) and a
multi-period discriminator, both from random weights, train on ``--minutes`` of one real speaker (Allison,
the voice of Debian's Asterisk prompts, transcripts from the package) for ``--train-seconds`` of wall time
on CPU with the official losses and optimiser (``SovitsTrainer``). Every ``--eval-every`` seconds of training
(evaluations not counted) it
prints the held-out loss curve on every 10th clip (at most ``--held-out``), clips that never train:

* ``recon``: mel L1 (the training loss's mel, without its x45) of the posterior path, spectrogram ->
  ``enc_q`` (mean, no noise) -> decoder, over whole clips: the decoder learning to speak;
* ``prior``: mel L1 of the inference path, semantic tokens + phones + the clip as its own reference ->
  ``decode`` (noise scale 0.5, fixed seed): what ``speak`` would produce;
* ``kl``: the KL term between posterior and prior on the held-out clips.

Content features come from a small random-weight HuBERT (768 wide, as ``ssl_proj`` needs): no
pretrained HuBERT is reachable here, so the prior learns from random projections of the audio. The
curve shows the optimisation converging, not the quality a pretrained base gives.

Part 2, LoRA vs full (``--lora-rank``): the part-1 model is the base; a second speaker (flite's ``slt``
reading the same transcripts) is the fine-tune target, split the same way. From the same base, the same
batches and seeds, ``--finetune-steps`` steps of a full fine-tune and of rank-R adapters (what
``train --lora`` trains: the prior's attention projections) are compared on slt's held-out clips, with
the trainable parameter count and the adapter size on disk.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from anchorvoice.audio_io import read_audio
from anchorvoice.frames import TextFrame
from anchorvoice.plugins.gsv.hubert import HubertConfig, HubertModel
from anchorvoice.plugins.gsv.sovits import SovitsConfig, official_v2_config
from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
from anchorvoice.plugins.gsv.training.dataset import match_length
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from anchorvoice.plugins.gsv.training.lora import add_lora_sovits, lora_state
from anchorvoice.plugins.gsv.training.mel import magnitude, spec_to_mel
from anchorvoice.plugins.gsv.training.sovits_step import (
    SovitsTrainConfig,
    SovitsTrainer,
    SovitsTrainModel,
    collate_sovits,
)
from anchorvoice.plugins.text_en.frontend import EnglishFrontend

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.* from the checkout
from bench.machine import machine_line  # noqa: E402

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
SMALL_MODEL = {"inter_channels": 64, "hidden_channels": 192, "filter_channels": 256, "n_heads": 2, "n_layers": 2,
               "kernel_size": 3, "upsample_initial_channel": 64}
"""The reference fixtures' reduced sizes (gsv_reference/README.md section 1.1); the rest official v2."""
HUBERT_768 = {"conv_dim": [64] * 7, "hidden_size": 768, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 256, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 16}

Item = tuple[Tensor, Tensor, Tensor, list[int]]


@dataclass
class Clip:
    name: str
    text: str
    item: Item
    """(ssl (768, T), spec (bins, T), wav (1, N) 32 kHz, phone ids)."""


def transcripts() -> dict[str, str]:
    out = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";") and (SOUNDS / f"{name.strip()}.g722").exists():
                out[name.strip()] = text.strip()
    return out


def flite(text: str, voice: str, out: Path) -> Path:
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True, capture_output=True)
    return out


def featurize(paths: list[tuple[str, str, Path]], cfg: SovitsConfig, hubert: HubertModel) -> list[Clip]:
    fe = EnglishFrontend()
    clips = []
    for name, text, path in paths:
        wav = torch.from_numpy(read_audio(path, 32000).samples.copy())
        wav = wav / max(1.0, float(wav.abs().max()) / 0.95)
        spec = linear_spectrogram(wav, cfg.spectrogram)[0]
        with torch.no_grad():
            a16 = torch.from_numpy(read_audio(path, 16000).samples.copy())
            ssl = hubert(a16[None]).transpose(1, 2)[0]
        ids = list(fe.phonemize(TextFrame(text, "en")).ids)
        clips.append(Clip(name, text, (match_length(ssl, spec.shape[1]), spec, wav[None], ids)))
    return clips


def select(names: list[str], texts: dict[str, str], minutes: float) -> list[str]:
    chosen, total = [], 0.0
    for n in names:
        if total >= minutes * 60:
            break
        dur = read_audio(SOUNDS / f"{n}.g722").duration
        if 1.0 <= dur <= 12.0:
            chosen.append(n)
            total += dur
    return chosen


class Evaluator:
    """Held-out losses of a model on fixed clips (deterministic: posterior mean, seeded prior noise)."""

    def __init__(self, clips: list[Clip], trainer: SovitsTrainer) -> None:
        self.clips = clips
        self.mel_basis = trainer.mel_basis
        self.c_mel = trainer.tcfg.c_mel

    def _mel(self, wav: Tensor, s: Any) -> Tensor:
        return spec_to_mel(magnitude(wav, s.n_fft, s.hop_length, s.win_length), self.mel_basis)

    @torch.no_grad()
    def __call__(self, model: SovitsTrainModel) -> dict[str, float]:
        model.eval()
        s = model.cfg.spectrogram
        recon, prior, kl = [], [], []
        for clip in self.clips:
            batch = collate_sovits([clip.item])
            frames = int(batch.spec_lengths[0])
            noise = torch.zeros(1, model.cfg.inter_channels, batch.spec.shape[2])  # posterior mean
            out = model(batch, frames, torch.zeros(1, dtype=torch.long), noise)
            target = self._mel(batch.wav[:, 0, : frames * s.hop_length], s)
            got = self._mel(out["y_hat"][:, 0], s)
            t = min(target.shape[-1], got.shape[-1])
            recon.append(float(F.l1_loss(got[..., :t], target[..., :t])))
            logs_p, m_p, z_p, logs_q = out["logs_p"], out["m_p"], out["z_p"], out["logs_q"]
            kl_frames = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
            kl.append(float(kl_frames.sum() / out["y_mask"].sum()))
            codes = model.extract_latent(batch.ssl)
            audio = model.decode(codes[:, :1], batch.text, [batch.spec], noise_scale=0.5,
                                 generator=torch.Generator().manual_seed(0))
            got = self._mel(audio[:, 0], s)
            t = min(target.shape[-1], got.shape[-1])
            prior.append(float(F.l1_loss(got[..., :t], target[..., :t])))
        model.train()
        n = len(self.clips)
        return {"recon_mel_l1": sum(recon) / n, "prior_mel_l1": sum(prior) / n, "kl": sum(kl) / n}


def batches(items: list[Item], batch: int, seed: int) -> Any:
    rng = random.Random(seed)
    while True:
        order = list(range(len(items)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch + 1, batch):
            yield collate_sovits([items[j] for j in order[i : i + batch]])


def new_trainer(model: SovitsTrainModel, disc: MultiPeriodDiscriminator, tcfg: SovitsTrainConfig,
                params: list[torch.nn.Parameter] | None = None) -> SovitsTrainer:
    return SovitsTrainer(model, disc, tcfg, "fp32", params=params)


def train_for(trainer: SovitsTrainer, data: Any, seconds: float, steps: int, evaluate: Any, every: float,
              label: str, rows: list[dict[str, Any]]) -> int:
    """Train until ``seconds`` of training (evaluations not counted) or ``steps`` steps; evaluate at the start,
    every ``every`` seconds of training and at the end."""
    trained, next_eval, step = 0.0, 0.0, 0
    while True:
        done = (steps and step >= steps) or (seconds and trained >= seconds)
        if trained >= next_eval or done:
            ev = evaluate(trainer.core)
            row = {"run": label, "step": step, "seconds": round(trained, 1), **{k: round(v, 4) for k, v in ev.items()}}
            rows.append(row)
            print(f"  {label:>10} step {step:5d}  {trained:7.1f} s  held-out recon mel L1 {ev['recon_mel_l1']:.3f}  "
                  f"prior mel L1 {ev['prior_mel_l1']:.3f}  kl {ev['kl']:.3f}", flush=True)
            next_eval = trained + every
        if done:
            return step
        t0 = time.perf_counter()
        trainer.step(next(data))
        trained += time.perf_counter() - t0
        step += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="speech of the base speaker (default 10)")
    ap.add_argument("--train-seconds", type=float, default=600.0, help="wall time of part 1 (default 600)")
    ap.add_argument("--eval-every", type=float, default=60.0, help="seconds between held-out evaluations")
    ap.add_argument("--held-out", type=int, default=12, help="held-out clips evaluated (default 12)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--segment-size", type=int, default=10240, help="decoder slice in samples (official 20480)")
    ap.add_argument("--lora-rank", type=int, default=8, help="part 2 adapter rank (0: skip part 2)")
    ap.add_argument("--target-minutes", type=float, default=2.0, help="speech of the fine-tune speaker")
    ap.add_argument("--finetune-steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    print(machine_line(args.threads), flush=True)
    if not TRANSCRIPTS.exists() or shutil.which("flite") is None:
        raise SystemExit("needs Debian's asterisk-core-sounds-en-g722 and flite (`make venv` installs them as root)")
    config = official_v2_config()
    config["model"].update(SMALL_MODEL)
    cfg = SovitsConfig.from_checkpoint_config(config)
    hubert = HubertModel(HubertConfig.from_json(HUBERT_768)).eval()
    texts = transcripts()
    names = select(sorted(texts), texts, args.minutes)
    t0 = time.perf_counter()
    clips = featurize([(n, texts[n], SOUNDS / f"{n}.g722") for n in names], cfg, hubert)
    held = clips[::10][:args.held_out]
    train = [c for c in clips if c not in held]
    seconds = sum(c.item[2].shape[-1] for c in clips) / 32000
    print(f"speaker Allison (Asterisk prompts): {len(clips)} clips, {seconds / 60:.1f} min; {len(held)} held out; "
          f"features in {time.perf_counter() - t0:.0f} s", flush=True)
    tcfg = SovitsTrainConfig.from_checkpoint_config(config, segment_size=args.segment_size)
    seg = args.segment_size // cfg.spectrogram.hop_length
    train = [c for c in train if c.item[1].shape[1] >= seg]
    model = SovitsTrainModel(cfg)
    disc = MultiPeriodDiscriminator()
    trainer = new_trainer(model, disc, tcfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"part 1: small SoVITS from random weights ({n_params / 1e6:.1f} M parameters), batch {args.batch_size}, "
          f"slice {args.segment_size} samples, {args.train_seconds:.0f} s of training", flush=True)
    rows: list[dict[str, Any]] = []
    steps = train_for(trainer, batches([c.item for c in train], args.batch_size, 0), args.train_seconds, 0,
                      Evaluator(held, trainer), args.eval_every, "from-zero", rows)
    first, last = rows[0], rows[-1]
    print(f"part 1: {steps} steps; held-out recon mel L1 {first['recon_mel_l1']:.3f} -> {last['recon_mel_l1']:.3f}, "
          f"prior mel L1 {first['prior_mel_l1']:.3f} -> {last['prior_mel_l1']:.3f}", flush=True)
    if args.lora_rank:
        lora_vs_full(args, model, disc, tcfg, cfg, hubert, texts, rows)
    if args.json:
        print(json.dumps(rows))


def lora_vs_full(args: argparse.Namespace, base: SovitsTrainModel, base_disc: MultiPeriodDiscriminator,
                 tcfg: SovitsTrainConfig, cfg: SovitsConfig, hubert: HubertModel, texts: dict[str, str],
                 rows: list[dict[str, Any]]) -> None:
    work = Path(tempfile.mkdtemp(prefix="av-lora-"))
    try:
        names = sorted(texts)[::-1]
        chosen, total = [], 0.0
        for n in names:
            if total >= args.target_minutes * 60:
                break
            p = flite(texts[n], "slt", work / f"{n}.wav")
            total += read_audio(p).duration
            chosen.append((n, texts[n], p))
        clips = featurize(chosen, cfg, hubert)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    held = clips[::5][:args.held_out]
    seg = tcfg.segment_size // cfg.spectrogram.hop_length
    train = [c.item for c in clips if c not in held and c.item[1].shape[1] >= seg]
    print(f"part 2: fine-tune speaker flite slt: {len(clips)} clips, {total / 60:.1f} min, {len(held)} held out; "
          f"{args.finetune_steps} steps each, same batches", flush=True)
    results = {}
    for label in ("full", f"lora-{args.lora_rank}"):
        torch.manual_seed(99)
        model, disc = copy.deepcopy(base), copy.deepcopy(base_disc)
        params = add_lora_sovits(model, args.lora_rank) if label != "full" else None
        trainer = new_trainer(model, disc, tcfg, params)
        trainable = sum(p.numel() for p in (params or [p for p in model.parameters() if p.requires_grad]))
        train_for(trainer, batches(train, args.batch_size, 1), 0.0, args.finetune_steps, Evaluator(held, trainer),
                  1e9, label, rows)
        ev = rows[-1]
        size = (sum(t.numel() * 2 for t in lora_state(model).values()) if params else
                sum(p.numel() * 2 for p in model.parameters()))
        results[label] = (ev, trainable, size)
    before = next(r for r in rows if r["run"] == "full")
    print(f"  before fine-tune (base): prior mel L1 {before['prior_mel_l1']:.3f}, recon {before['recon_mel_l1']:.3f}")
    for label, (ev, trainable, size) in results.items():
        print(f"  {label:>10}: held-out prior mel L1 {ev['prior_mel_l1']:.3f}, recon {ev['recon_mel_l1']:.3f}, "
              f"kl {ev['kl']:.3f}; {trainable / 1e6:.2f} M trainable, {size / 1e6:.2f} MB stored (fp16)", flush=True)


if __name__ == "__main__":
    main()
