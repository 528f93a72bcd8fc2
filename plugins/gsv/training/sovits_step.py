"""The SoVITS (s2) training step of the official trainer (``s2_train.py``, ``module/models.py``).

Forward (``SynthesizerTrn.forward``): the reference encoder reads the utterance's own spectrogram
(first 704 bins in v2) -> ``ge``; HuBERT features -> ``ssl_proj`` -> quantizer (frozen by default:
eval mode, no gradient, no EMA update, commitment loss 0) -> x2 upsampled -> prior ``enc_p``
(mean/log-std); the posterior encoder ``enc_q`` on the linear spectrogram samples ``z``; the flow
maps ``z`` to ``z_p``; a random ``segment_size`` slice of ``z`` goes through the decoder.

Step: discriminator first (least squares on the detached fake), then the generator with
``mel L1 x c_mel(45) + KL x c_kl(1) + feature matching x2 + adversarial + commitment``. AdamW
(lr 1e-4, betas (0.8, 0.99), eps 1e-9, torch's default weight decay 0.01) with the text embedding,
text encoder and MRTE at ``text_low_lr_rate`` (0.4) x lr; ExponentialLR(0.999875) stepped per epoch
(and once before the first, as the official trainer does). On CUDA, fp16/bf16 autocast with a
GradScaler for fp16; the losses are computed in float32.

Weight-normed convs train their (g, v) pairs as the official layers do (a step on the folded weight
would move it by a different amount). Difference from the official code, on purpose: dropout is
off (the inference modules have none; official p_dropout 0.1 in the prior's attention layers).
``tests/conformance/test_sovits_train_oracle.py`` checks one step against the official trainer.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anchorvoice.engine.training import NonFiniteLoss
from anchorvoice.errors import CorruptCheckpointError
from anchorvoice.plugins.gsv.modules.flow import WN
from anchorvoice.plugins.gsv.modules.weight_norm import official_key_shapes, train_weight_norm
from anchorvoice.plugins.gsv.sovits import SovitsConfig, SynthesizerTrn
from anchorvoice.plugins.gsv.training.lora import is_adapter
from anchorvoice.plugins.gsv.training.mel import magnitude, mel_filterbank, spec_to_mel
from anchorvoice.plugins.gsv.training.precision import autocast, training_precision


@dataclass
class SovitsTrainConfig:
    """Hyper-parameters of the s2 fine-tune (official ``configs/s2.json`` ``train``/``data`` values)."""

    learning_rate: float = 1e-4
    """Peak AdamW learning rate."""
    beta1: float = 0.8
    """AdamW beta1."""
    beta2: float = 0.99
    """AdamW beta2."""
    eps: float = 1e-9
    """AdamW epsilon."""
    lr_decay: float = 0.999875
    """ExponentialLR gamma, stepped once per epoch."""
    segment_size: int = 20480
    """Audio samples per decoder slice (a multiple of the hop length)."""
    c_mel: float = 45.0
    """Weight of the mel L1 loss."""
    c_kl: float = 1.0
    """Weight of the KL loss."""
    text_low_lr_rate: float = 0.4
    """Learning-rate factor of the text embedding, text encoder and MRTE."""
    n_mel_channels: int = 128
    """Mel bands of the mel loss."""
    mel_fmin: float = 0.0
    """Lowest mel frequency."""
    mel_fmax: float | None = None
    """Highest mel frequency (None: Nyquist)."""
    freeze_quantizer: bool = True
    """Keep ``ssl_proj`` and the codebook fixed (tokens stay valid; the GPT may train in either order)."""
    lora_lr_scale: float = 1.0
    """Learning-rate factor of LoRA adapter tensors (``lora_A``/``lora_B``) over the rate of the weight they adapt."""

    @classmethod
    def from_checkpoint_config(cls, config: dict[str, Any], **overrides: Any) -> SovitsTrainConfig:
        """Values from an s2 checkpoint's ``train``/``data`` sections where present, then ``overrides``."""
        train, data = config.get("train") or {}, config.get("data") or {}
        found: dict[str, Any] = {}
        for f in fields(cls):
            for section in (train, data):
                if f.name in section and section[f.name] is not None:
                    found[f.name] = section[f.name]
        if isinstance(train.get("betas"), (list, tuple)) and len(train["betas"]) == 2:
            found["beta1"], found["beta2"] = train["betas"]
        found.pop("freeze_quantizer", None)
        return cls(**{**found, **overrides})


class PosteriorEncoder(nn.Module):
    """``enc_q``: linear spectrogram (B, bins, T) -> ``z`` = m + noise * exp(logs) (official names)."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, gin_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, 5, 1, 16, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, x: Tensor, x_mask: Tensor, g: Tensor, noise: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        h = self.enc(self.pre(x) * x_mask, x_mask, g=g.detach())
        stats = self.proj(h) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        noise = torch.randn_like(m) if noise is None else noise
        return (m + noise * torch.exp(logs)) * x_mask, m, logs


def sequence_mask(lengths: Tensor, length: int) -> Tensor:
    """(B,) lengths -> (B, 1, length) float mask."""
    return (torch.arange(length, device=lengths.device)[None] < lengths[:, None]).unsqueeze(1).float()


@dataclass
class SovitsBatch:
    """A zero-padded s2 batch (official ``TextAudioSpeakerCollate``)."""

    ssl: Tensor
    """(B, 768, T) HuBERT features."""
    spec: Tensor
    """(B, bins, T) linear spectrogram."""
    spec_lengths: Tensor
    """(B,) frames."""
    wav: Tensor
    """(B, 1, N) audio."""
    text: Tensor
    """(B, P) phone ids."""
    text_lengths: Tensor
    """(B,) phones."""

    def to(self, device: torch.device | str) -> SovitsBatch:
        return SovitsBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


def collate_sovits(items: list[tuple[Tensor, Tensor, Tensor, list[int]]]) -> SovitsBatch:
    """Items ``(ssl (768, T), spec (bins, T), wav (1, N), phones)`` -> padded batch (frames to an even count)."""
    t = max(x[1].shape[1] for x in items)
    t = 2 * (t // 2 + 1)
    n = max(x[2].shape[1] for x in items)
    p = max(len(x[3]) for x in items)
    b = len(items)
    ssl = torch.zeros(b, items[0][0].shape[0], t)
    spec = torch.zeros(b, items[0][1].shape[0], t)
    wav = torch.zeros(b, 1, n)
    text = torch.zeros(b, p, dtype=torch.long)
    spec_len = torch.zeros(b, dtype=torch.long)
    text_len = torch.zeros(b, dtype=torch.long)
    for i, (s, sp, w, ph) in enumerate(items):
        ssl[i, :, : s.shape[1]] = s[:, :t]
        spec[i, :, : sp.shape[1]] = sp
        spec_len[i] = sp.shape[1]
        wav[i, :, : w.shape[1]] = w
        text[i, : len(ph)] = torch.tensor(ph, dtype=torch.long)
        text_len[i] = len(ph)
    return SovitsBatch(ssl, spec, spec_len, wav, text, text_len)


class SovitsTrainModel(SynthesizerTrn):
    """``SynthesizerTrn`` with the posterior encoder ``enc_q`` and the training forward."""

    def __init__(self, cfg: SovitsConfig, freeze_quantizer: bool = True) -> None:
        super().__init__(cfg)
        self.freeze_quantizer = freeze_quantizer
        bins = cfg.spectrogram.n_fft // 2 + 1
        self.enc_q = PosteriorEncoder(bins, cfg.inter_channels, cfg.hidden_channels, cfg.gin_channels)
        self.decoder.channels_last = False  # plain conv1d modules: autograd through every weight
        train_weight_norm(self)  # the official parameters: (g, v) pairs, not the folded weights

    def load_base(self, weights: dict[str, Tensor], what: str) -> bool:
        """Load a base generator (fp16 ok); returns False when it had no ``enc_q`` (then initialised at random,
        as the official trainer's non-strict load leaves it)."""
        expected = official_key_shapes(self)
        has_q = any(k.startswith("enc_q.") for k in weights)
        need = {k: s for k, s in expected.items() if has_q or not k.startswith("enc_q.")}
        missing = sorted(set(need) - set(weights))
        extra = sorted(set(weights) - set(expected))
        bad = [k for k in need if k in weights and tuple(weights[k].shape) != need[k]]
        if missing or extra or bad:
            detail = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                      else f"{bad[0]} is {tuple(weights[bad[0]].shape)}, expected {need[bad[0]]}")
            raise CorruptCheckpointError(
                f"{what}: does not fit the SoVITS model its config describes ({detail}); "
                "use a GPT-SoVITS v2 s2G file and the dataset made with it"
            )
        self.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
        return has_q

    def forward(
        self, batch: SovitsBatch, seg_frames: int, slice_starts: Tensor | None = None, noise: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The official training forward plus the decoder on a ``seg_frames`` slice of ``z``.

        ``slice_starts`` (B,) frame indices and ``noise`` (shape of ``m_q``) may be injected
        (conformance tests), else they are drawn from torch's RNG as officially."""
        spec, lengths = batch.spec, batch.spec_lengths
        y_mask = sequence_mask(lengths, spec.size(2)).to(spec.dtype)
        ge = self.ref_enc(spec[:, : self.cfg.ref_bins] * y_mask, y_mask)
        frozen = self.freeze_quantizer
        if frozen:
            self.ssl_proj.eval()
            self.quantizer.eval()
        with torch.no_grad() if frozen else contextlib.nullcontext():
            with torch.autocast(spec.device.type, enabled=False):
                ssl = self.ssl_proj(batch.ssl.float())
                quantized, _, commit_loss, _ = self.quantizer(ssl, layers=[0])
        quantized = F.interpolate(quantized, size=int(quantized.shape[-1] * 2), mode="nearest")
        text_mask = sequence_mask(batch.text_lengths, batch.text.size(1)).to(spec.dtype)
        _, m_p, logs_p, _ = self.enc_p(quantized, y_mask, batch.text, text_mask, ge)
        z, m_q, logs_q = self.enc_q(spec, y_mask, ge, noise)
        z_p = self.flow(z, y_mask, g=ge)
        if slice_starts is None:  # official rand_slice_segments
            slice_starts = (torch.rand(z.size(0), device=z.device) * (lengths - seg_frames + 1)).long()
        y_hat = self.decoder(slice_segments(z, slice_starts, seg_frames), g=ge)
        return {"y_hat": y_hat, "starts": slice_starts, "z_p": z_p, "m_p": m_p, "logs_p": logs_p, "m_q": m_q,
                "logs_q": logs_q, "y_mask": y_mask, "commit_loss": commit_loss.float().reshape(())}


def item_randomness(batch: SovitsBatch, seg_frames: int, channels: int, seeds: list[int]) -> tuple[Tensor, Tensor]:
    """Slice starts (B,) and posterior noise (B, channels, T) with item i drawn from a generator seeded
    by ``seeds[i]`` (same distributions as the official draws: a uniform start that leaves a whole
    slice, standard normal noise over the item's frames). A batch split over DDP processes then gets
    what one process gets for the whole batch, which torch's global RNG cannot give."""
    lengths = batch.spec_lengths.cpu()
    if len(seeds) != lengths.numel():
        raise ValueError(f"{len(seeds)} seeds for a batch of {lengths.numel()}")
    starts = torch.zeros(len(seeds), dtype=torch.long)
    noise = torch.zeros(len(seeds), channels, batch.spec.size(2))
    for i, (seed, n) in enumerate(zip(seeds, lengths.tolist())):
        gen = torch.Generator().manual_seed(seed)
        starts[i] = int(torch.rand((), generator=gen) * (n - seg_frames + 1))
        noise[i, :, :n] = torch.randn(channels, n, generator=gen)
    return starts, noise


def slice_segments(x: Tensor, starts: Tensor, size: int) -> Tensor:
    """(B, C, T) -> (B, C, size) windows starting at ``starts`` (official ``commons.slice_segments``)."""
    return torch.stack([x[i, :, int(s) : int(s) + size] for i, s in enumerate(starts)])


def kl_loss(z_p: Tensor, logs_q: Tensor, m_p: Tensor, logs_p: Tensor, mask: Tensor) -> Tensor:
    """Official ``losses.kl_loss`` (float32)."""
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)


def feature_loss(fmap_r: list[list[Tensor]], fmap_g: list[list[Tensor]]) -> Tensor:
    """Official feature matching: 2 x sum of mean |real - fake| over every feature map."""
    loss = sum(torch.mean(torch.abs(r.float().detach() - g.float())) for dr, dg in zip(fmap_r, fmap_g)
               for r, g in zip(dr, dg))
    return torch.as_tensor(loss) * 2


def discriminator_loss(real: list[Tensor], fake: list[Tensor]) -> Tensor:
    """Least-squares GAN: sum of mean (1 - D(real))^2 + mean D(fake)^2."""
    terms = [torch.mean((1 - r.float()) ** 2) + torch.mean(g.float() ** 2) for r, g in zip(real, fake)]
    return torch.stack(terms).sum()


def generator_loss(fake: list[Tensor]) -> Tensor:
    """Least-squares GAN: sum of mean (1 - D(fake))^2."""
    return torch.stack([torch.mean((1 - g.float()) ** 2) for g in fake]).sum()


def unwrap_ddp(m: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


def _core(model: nn.Module) -> SovitsTrainModel:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    inner = unwrap_ddp(model)
    if not isinstance(inner, SovitsTrainModel):
        raise TypeError(f"SovitsTrainer needs a SovitsTrainModel, got {type(inner).__name__}")
    return inner


class SovitsTrainer:
    """One optimisation step at a time for a generator + discriminator pair (official step order)."""

    def __init__(
        self,
        model: nn.Module,
        disc: nn.Module,
        tcfg: SovitsTrainConfig,
        precision: str = "fp32",
        params: list[nn.Parameter] | None = None,
    ) -> None:
        self.model, self.disc, self.tcfg = model, disc, tcfg
        self.device = next(model.parameters()).device
        self.precision = training_precision(precision, self.device)
        core = _core(model)
        self.core = core
        if tcfg.freeze_quantizer:
            core.ssl_proj.requires_grad_(False)
            core.quantizer.requires_grad_(False)
        lr, betas = tcfg.learning_rate, (tcfg.beta1, tcfg.beta2)
        low_mods = [core.enc_p.text_embedding, core.enc_p.encoder_text, core.enc_p.mrte]
        low = [p for m in low_mods for p in m.parameters()]
        low_ids = {id(p) for p in low}
        adapter_ids = {id(p) for n, p in core.named_parameters() if is_adapter(n)}
        trainable = params if params is not None else [p for p in core.parameters() if p.requires_grad]
        chosen = {id(p) for p in trainable}
        ordered = [p for p in trainable if id(p) not in low_ids] + [p for p in low if id(p) in chosen]
        by_factor: dict[float, list[nn.Parameter]] = {}  # groups: the rest, text side, adapters (official order)
        for p in ordered:
            factor = tcfg.text_low_lr_rate if id(p) in low_ids else 1.0
            factor *= tcfg.lora_lr_scale if id(p) in adapter_ids else 1.0
            by_factor.setdefault(factor, []).append(p)
        groups = [{"params": ps, "lr": lr * f} for f, ps in by_factor.items()]
        self.optim_g = torch.optim.AdamW(groups, lr, betas=betas, eps=tcfg.eps)
        self.optim_d = torch.optim.AdamW(disc.parameters(), lr, betas=betas, eps=tcfg.eps)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, tcfg.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, tcfg.lr_decay)
        with warnings.catch_warnings():  # the official trainer steps them epoch_str (= 1) times before epoch 1
            warnings.simplefilter("ignore", UserWarning)
            self.end_epoch()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        s = core.cfg.spectrogram
        self.mel_basis = mel_filterbank(s.sampling_rate, s.n_fft, tcfg.n_mel_channels, tcfg.mel_fmin, tcfg.mel_fmax)
        self.mel_basis = self.mel_basis.to(self.device)

    def _autocast(self) -> Any:
        return autocast(self.device, self.precision)

    def end_epoch(self) -> None:
        """Decay both learning rates (official: once per epoch)."""
        self.sched_g.step()
        self.sched_d.step()

    def step(
        self, batch: SovitsBatch, slice_starts: Tensor | None = None, noise: Tensor | None = None
    ) -> dict[str, float]:
        """Discriminator step, then generator step; returns the float losses (official names)."""
        s = self.core.cfg.spectrogram
        seg_frames = self.tcfg.segment_size // s.hop_length
        batch = batch.to(self.device)
        self.model.train()
        self.disc.train()
        with self._autocast():
            out = self.model(batch, seg_frames, slice_starts, noise)
            y_hat, starts = out["y_hat"], out["starts"]
            with torch.autocast(self.device.type, enabled=False):  # the mel loss compares float32 mels
                y_mel = slice_segments(spec_to_mel(batch.spec.float(), self.mel_basis), starts, seg_frames)
                y_hat_mel = spec_to_mel(magnitude(y_hat.squeeze(1).float(), s.n_fft, s.hop_length, s.win_length),
                                        self.mel_basis)
            y = slice_segments(batch.wav, starts * s.hop_length, self.tcfg.segment_size)
            real, fake, _, _ = self.disc(y, y_hat.detach())
            loss_disc = discriminator_loss(real, fake)
        if not torch.isfinite(loss_disc):
            raise NonFiniteLoss(f"SoVITS discriminator loss is {float(loss_disc)}")
        self.optim_d.zero_grad()
        self.scaler.scale(loss_disc).backward()
        self.scaler.step(self.optim_d)
        # The generator step needs the discriminator's gradient with respect to y_hat only: the official
        # trainer also computes (and all-reduces) its weight gradients here and throws them away. Frozen and
        # outside its DDP wrapper, its convolutions skip that half of their backward; the numbers are the same.
        disc = unwrap_ddp(self.disc)
        disc.requires_grad_(False)
        try:
            with self._autocast():
                real, fake, fmap_r, fmap_g = disc(y, y_hat)
                loss_mel = F.l1_loss(y_mel, y_hat_mel) * self.tcfg.c_mel
                loss_kl = kl_loss(out["z_p"], out["logs_q"], out["m_p"], out["logs_p"], out["y_mask"]) * self.tcfg.c_kl
                loss_fm = feature_loss(fmap_r, fmap_g)
                loss_gen = generator_loss(fake)
                loss_all = loss_gen + loss_fm + loss_mel + out["commit_loss"] + loss_kl
            if not torch.isfinite(loss_all):
                raise NonFiniteLoss(f"SoVITS generator loss is {float(loss_all)}")
            self.optim_g.zero_grad()
            self.scaler.scale(loss_all).backward()
        finally:
            disc.requires_grad_(True)
        self.scaler.step(self.optim_g)
        self.scaler.update()
        named = {"loss_disc": loss_disc, "loss_gen": loss_gen, "loss_fm": loss_fm, "loss_mel": loss_mel,
                 "kl_ssl": out["commit_loss"], "loss_kl": loss_kl, "loss_total": loss_all}
        return {k: float(v.detach()) for k, v in named.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"optim_g": self.optim_g.state_dict(), "optim_d": self.optim_d.state_dict(),
                "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optim_g.load_state_dict(state["optim_g"])
        self.optim_d.load_state_dict(state["optim_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.scaler.load_state_dict(state["scaler"])
