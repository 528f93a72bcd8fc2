"""Seconds per SoVITS (s2) training step on CPU, ours and the official trainer's on the same batch.

Usage: ``.venv/bin/python bench/train_sovits_step.py --official GPT_SoVITS_DIR [--repeats 5] [--threads 2]
[--batch 4] [--seconds 4] [--bf16] [--keep-heap | --alone] [--tiny] [--json]``

Workload: the full-size v2 generator of the official ``configs/s2.json`` (random weights, with the
posterior encoder ``enc_q``) and the multi-period discriminator, a batch of ``--batch`` utterances of
``--seconds`` s (synthetic voiced audio, its linear spectrogram, random HuBERT features and
phones), the official hyper-parameters (AdamW 1e-4, betas (0.8, 0.99), the 20480-sample decoder
slice, mel x45, KL x1), float32, ``--threads`` torch threads. One step = the discriminator step and
the generator step, optimisers included. Both sides start from the same weights (ours are loaded
into the official modules under their official names) with dropout off (official p = 0) and the
same injected slice starts and posterior noise, so their first-step losses are printed side by side
to show that they compute the same thing. Each figure is the median of ``--repeats`` steps after one
warm-up step, the two sides timed alternately (:func:`bench.timing.time_alternately`) so that load
drift hits both alike.

Peak memory: each side's step runs once more in a fresh child process (this script with
``--memory-only``) that builds only that side's modules; it reports its resident set before the
step (interpreter, weights) and the peak during the step (+ gradients, optimiser state, activations;
sampled every 5 ms), and ``ru_maxrss``.

The official side is ``tests/fixtures/make_train_oracle_sovits.py``'s ``official_train_step`` (the
batch of ``s2_train.py``'s ``train_and_evaluate``), with its stubs for ``einops``/``f5_tts`` when
missing. ``--tiny`` shrinks everything for a smoke run (no figures worth reporting).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import resource
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: bench.*, tests.* and the packages come from the checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from bench.soak import machine_info  # noqa: E402
from bench.timing import KEEP_HEAP_HELP, heap_policy, roomy_onednn_cache, time_alternately  # noqa: E402

TINY_MODEL = {"inter_channels": 64, "filter_channels": 256, "n_layers": 2, "upsample_initial_channel": 64}
"""--tiny: the reduced sizes of the reference fixture's s2 (hidden 192 and gin 512 are fixed by MRTE)."""


def _config(tiny: bool) -> dict[str, Any]:
    from anchorvoice.plugins.gsv.sovits import official_v2_config
    from anchorvoice.plugins.gsv.training.sovits_step import SovitsTrainConfig

    cfg = official_v2_config()
    if tiny:
        cfg["model"].update(TINY_MODEL)
    t = SovitsTrainConfig(segment_size=2560 if tiny else 20480)  # defaults = configs/s2.json train values
    cfg["train"] = {"learning_rate": t.learning_rate, "betas": [t.beta1, t.beta2], "eps": t.eps,
                    "lr_decay": t.lr_decay, "segment_size": t.segment_size, "c_mel": t.c_mel, "c_kl": t.c_kl,
                    "text_low_lr_rate": t.text_low_lr_rate}
    cfg["data"].update({"n_mel_channels": t.n_mel_channels, "mel_fmin": t.mel_fmin, "mel_fmax": t.mel_fmax,
                        "n_speakers": 300})
    cfg["model"].update({"version": "v2", "freeze_quantizer": True, "use_spectral_norm": False})
    return cfg


def _namespace(d: Any) -> Any:
    """Nested dicts -> attribute access (what the official code reads from its ``hps``)."""
    if isinstance(d, dict):
        return types.SimpleNamespace(**{k: _namespace(v) for k, v in d.items()})
    return d


def make_batch(cfg: dict[str, Any], n: int, seconds: float, seed: int = 0) -> dict[str, Tensor]:
    """``n`` utterances of 0.8..1.0 x ``seconds`` (synthetic voiced audio), padded as the official collate pads."""
    from anchorvoice.plugins.gsv.sovits import SovitsConfig
    from anchorvoice.plugins.gsv.spectrogram import linear_spectrogram
    from anchorvoice.plugins.gsv.training.sovits_step import collate_sovits
    from tests.fixtures.make_train_oracle_sovits import synthetic_wav

    sc = SovitsConfig.from_checkpoint_config(cfg)
    hop, sr = sc.spectrogram.hop_length, sc.spectrogram.sampling_rate
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        frames = max(cfg["train"]["segment_size"] // hop, int(seconds * sr / hop * (1 - 0.2 * i / max(1, n - 1))))
        wav = torch.from_numpy(synthetic_wav(frames * hop, 120.0 + 25 * i, sr, rng))[None]
        spec = linear_spectrogram(wav[0], sc.spectrogram)[0]
        ssl = torch.from_numpy(rng.standard_normal((768, spec.shape[1])).astype(np.float32))
        items.append((ssl, spec, wav, rng.integers(1, 732, max(4, frames // 4)).tolist()))
    b = collate_sovits(items)
    return {"in_ssl": b.ssl, "in_spec": b.spec, "in_spec_lengths": b.spec_lengths, "in_wav": b.wav,
            "in_text": b.text, "in_text_lengths": b.text_lengths}


def build(cfg: dict[str, Any], batch: dict[str, Tensor], official: Path | None, ours: bool = True,
          bf16: bool = False) -> dict[str, Any]:
    """Our trainer, the official modules and optimisers on the same weights, and the injected randomness
    (``ours=False``: our modules only lend their weights to the official ones and are dropped)."""
    from anchorvoice.plugins.gsv.sovits import SovitsConfig
    from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
    from anchorvoice.plugins.gsv.training.sovits_step import (
        SovitsBatch,
        SovitsTrainConfig,
        SovitsTrainer,
        SovitsTrainModel,
        item_randomness,
    )

    torch.manual_seed(0)
    sc = SovitsConfig.from_checkpoint_config(cfg)
    model, disc = SovitsTrainModel(sc), MultiPeriodDiscriminator()
    with torch.no_grad():  # a codebook as a pretrained file has one (a fresh one would be k-means-initialised)
        for name, buf in model.named_buffers():
            if name.endswith("_codebook.embed"):
                buf.normal_()
            elif name.endswith("_codebook.inited"):
                buf.fill_(1.0)
    sb = SovitsBatch(*(batch[k] for k in ("in_ssl", "in_spec", "in_spec_lengths", "in_wav", "in_text",
                                          "in_text_lengths")))
    seg = cfg["train"]["segment_size"] // sc.spectrogram.hop_length
    starts, noise = item_randomness(sb, seg, sc.inter_channels, list(range(len(sb.spec_lengths))))
    out: dict[str, Any] = {"batch": batch, "ours_batch": sb, "starts": starts, "noise": noise}
    if official is not None:
        from tests.fixtures.make_train_oracle_sovits import import_official, official_optimizers

        off = import_official(official.resolve())
        hps = _namespace(cfg)
        net_g = off.models.SynthesizerTrn(cfg["data"]["filter_length"] // 2 + 1, seg, n_speakers=300, **cfg["model"])
        net_d = off.models.MultiPeriodDiscriminator(False, version="v2")
        net_g.load_state_dict(model.state_dict(), strict=True)
        net_d.load_state_dict(disc.state_dict(), strict=True)
        for m in net_g.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
        optim_g, optim_d = official_optimizers(net_g, net_d, hps.train)
        out["official"] = (off, net_g, net_d, optim_g, optim_d, hps)
    tcfg = SovitsTrainConfig.from_checkpoint_config(cfg)
    if bf16:
        out["trainer_bf16"] = SovitsTrainer(copy.deepcopy(model), copy.deepcopy(disc), tcfg, "bf16")
    if ours:
        out["trainer"] = SovitsTrainer(model, disc, tcfg)
    return out


def step_fns(b: dict[str, Any]) -> dict[str, Any]:
    """The two sides' one-step callables, each returning its losses."""
    fns = {}
    if "trainer" in b:
        fns["anchorvoice"] = lambda: b["trainer"].step(b["ours_batch"], slice_starts=b["starts"], noise=b["noise"])
    if "trainer_bf16" in b:
        fns["anchorvoice-bf16"] = lambda: b["trainer_bf16"].step(b["ours_batch"], slice_starts=b["starts"],
                                                                 noise=b["noise"])
    if "official" in b:
        from tests.fixtures.make_train_oracle_sovits import official_train_step

        off, net_g, net_d, optim_g, optim_d, hps = b["official"]

        def official() -> dict[str, float]:
            losses, _, _ = official_train_step(off, net_g, net_d, optim_g, optim_d, hps, b["batch"], b["starts"],
                                               b["noise"])
            return {k: float(v) for k, v in losses.items()}

        fns["official"] = official
    return fns


def _rss_mib() -> float:
    """Current resident set of this process (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def _memory_only(args: argparse.Namespace) -> None:
    """One step of one side; prints the resident set before it, its peak during it (sampled every 5 ms)
    and the process's lifetime peak (``ru_maxrss``)."""
    cfg = _config(args.tiny)
    batch = make_batch(cfg, args.batch, args.seconds)
    side = args.memory_only
    b = build(cfg, batch, args.official if side == "official" else None, ours=side == "anchorvoice",
              bf16=side == "anchorvoice-bf16")
    gc.collect()
    before, peak, done = _rss_mib(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    step_fns(b)[side]()
    done.set()
    sampler.join()
    print(json.dumps({"rss_before_step_mib": round(before), "rss_peak_in_step_mib": round(max(peak[0], before)),
                      "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def _peak(args: argparse.Namespace, side: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--memory-only", side, "--batch", str(args.batch), "--seconds", str(args.seconds),
           "--threads", str(args.threads)] + (["--tiny"] if args.tiny else [])
    cmd += ["--keep-heap"] if args.keep_heap else []
    if args.official is not None:
        cmd += ["--official", str(args.official)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def _alone(args: argparse.Namespace, side: str) -> dict[str, float]:
    """``side`` timed in a fresh process of its own, as a user runs one trainer: ours with the heap policy
    that `anchorvoice train` applies, the official trainer with the allocator's defaults."""
    cmd = [sys.executable, __file__, "--only", side, "--json", "--repeats", str(args.repeats), "--batch",
           str(args.batch), "--seconds", str(args.seconds), "--threads", str(args.threads)]
    cmd += (["--tiny"] if args.tiny else []) + (["--bf16"] if side.endswith("bf16") else [])
    cmd += ["--keep-heap"] if side != "official" else []
    if args.official is not None:
        cmd += ["--official", str(args.official)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(res.stdout)["seconds_per_step"][side])


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = _config(args.tiny)
    batch = make_batch(cfg, args.batch, args.seconds)
    b = build(cfg, batch, args.official, bf16=args.bf16)
    fns = step_fns(b)
    if args.only:
        fns = {args.only: fns[args.only]}
    first = {name: fn() for name, fn in fns.items()}  # same weights, same batch, same randomness
    if args.only:
        return {"seconds_per_step": time_alternately(fns, args.repeats)}
    timing = {side: _alone(args, side) for side in fns} if args.alone else time_alternately(fns, args.repeats)
    res: dict[str, Any] = {
        "machine": machine_info(), "threads": args.threads, "batch": args.batch,
        "frames": b["ours_batch"].spec_lengths.tolist(), "segment_size": cfg["train"]["segment_size"],
        "tiny": args.tiny, "torch": torch.__version__, "first_step_losses": first, "seconds_per_step": timing,
        "peak_memory": {side: _peak(args, side) for side in fns},
    }
    if "official" in timing:
        res["speedup"] = {n: timing["official"]["median_s"] / timing[n]["median_s"] for n in timing if n != "official"}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path, default=None, help="GPT-SoVITS checkout's GPT_SoVITS folder")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4.0, help="longest utterance (the others down to 0.8x)")
    ap.add_argument("--bf16", action="store_true", help="also time our trainer under CPU bf16 autocast")
    ap.add_argument("--tiny", action="store_true", help="small model and slice: a smoke run, no figures")
    ap.add_argument(
        "--keep-heap",
        action="store_true",
        help=KEEP_HEAP_HELP,
    )
    ap.add_argument(
        "--alone",
        action="store_true",
        help="time each side in a fresh process of its own instead of alternating in one: ours with "
        "`anchorvoice train`'s heap policy, the official trainer with the allocator's defaults (as users run them)",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", choices=("anchorvoice", "anchorvoice-bf16", "official"), help=argparse.SUPPRESS)
    ap.add_argument("--memory-only", choices=("anchorvoice", "anchorvoice-bf16", "official"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    onednn_cache = roomy_onednn_cache()
    heap = heap_policy(args.keep_heap)
    if args.memory_only:
        _memory_only(args)
        return
    res = run(args)
    res["heap"] = "ours: policy, official: defaults (--alone)" if args.alone else heap
    if args.json:
        print(json.dumps(res, indent=1))
        return
    m = res["machine"]
    print(f"cpu: {m['cpu']} ({m['cores']} cores; {', '.join(m['isa']) or 'no AVX-512/AMX'}), "
          f"load average {m['load_avg']}, torch {res['torch']}, {res['threads']} threads, oneDNN primitive cache "
          f"{onednn_cache}; {res['heap']}")
    print(f"batch {res['batch']} (frames {res['frames']}), decoder slice {res['segment_size']} samples"
          + (" [--tiny: smoke run]" if res["tiny"] else ""))
    names = list(res["first_step_losses"])
    for key in res["first_step_losses"][names[0]]:
        print(f"  {key:11s}" + "".join(f"  {n}: {res['first_step_losses'][n][key]:<14.6g}" for n in names))
    for n in names:
        t, mem = res["seconds_per_step"][n], res["peak_memory"][n]
        print(f"{n:12s} {t['median_s']:.3f} s/step (median of {args.repeats}, min {t['min_s']:.3f}); RSS "
              f"{mem['rss_before_step_mib']} MiB before the step, peak {mem['rss_peak_in_step_mib']} MiB in it")
    if "speedup" in res:
        for n, x in res["speedup"].items():
            print(f"speed-up vs the official float32 step: {n} {x:.2f}x")


if __name__ == "__main__":
    main()
