"""Held-out SoVITS losses and the step loop of the training curves (``bench/train_curve.py``)."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from anchorvoice.plugins.gsv.training.mel import magnitude, spec_to_mel
from anchorvoice.plugins.gsv.training.sovits_step import SovitsTrainer, SovitsTrainModel, collate_sovits
from bench.curve_data import Clip


class Evaluator:
    """Held-out losses of a model on fixed clips (deterministic: posterior mean, seeded prior noise)."""

    def __init__(self, clips: list[Clip], trainer: SovitsTrainer) -> None:
        self.clips = clips
        self.mel_basis = trainer.mel_basis

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


def train_for(trainer: SovitsTrainer, data: Any, evaluate: Evaluator, label: str, rows: list[dict[str, Any]], *,
              steps: int = 0, seconds: float = 0.0, every_steps: int = 0, every_seconds: float = 0.0) -> int:
    """Train for ``steps`` optimiser steps (or, when 0, ``seconds`` of training, evaluations not counted);
    evaluate at the start, every ``every_steps`` steps (or ``every_seconds``) and at the end."""
    trained, next_eval, step = 0.0, 0.0, 0
    while True:
        done = step >= steps if steps else trained >= seconds
        due = step % every_steps == 0 if every_steps else trained >= next_eval
        if due or done:
            ev = evaluate(trainer.core)
            rows.append({"run": label, "step": step, "seconds": round(trained, 1),
                         **{k: round(v, 4) for k, v in ev.items()}})
            print(f"  {label:>22} step {step:4d} {trained:7.1f} s  held-out prior mel L1 {ev['prior_mel_l1']:.3f}  "
                  f"recon {ev['recon_mel_l1']:.3f}  kl {ev['kl']:.3f}", flush=True)
            next_eval = trained + every_seconds
        if done:
            return step
        batch, starts, noise = next(data)
        t0 = time.perf_counter()
        trainer.step(batch, slice_starts=starts, noise=noise)
        trained += time.perf_counter() - t0
        step += 1
