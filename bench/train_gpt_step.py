"""Seconds per GPT (s1) training step, ours against the official ``training_step``, same batch, same run.

    python -m bench.train_gpt_step [--size full|tiny] [--batch 4] [--threads 2] [--repeats 5] [--bf16] [--keep-heap]
    python -m bench.train_gpt_step --compare [--compare-batches 240]     # ScaledAdam vs AdamW held-out loss

Both sides start from the same random full-size v2 s1 file (``bench/fullsize.py``) with dropout off
and train on the same fixed batch (``--batch`` items of ``--phones`` phones and ``--tokens`` tokens;
BERT features random). The timed unit is one official accumulation cycle: batch indices 1..4, i.e.
four forward/backward passes and one optimiser step; the figures are per cycle and per batch.
The official side is ``Text2SemanticLightningModule.training_step`` itself, unmodified, in a
subclass that supplies what a Lightning ``Trainer`` would (``optimizers``, ``lr_schedulers``,
``manual_backward`` = ``loss.backward()``, ``log`` = nothing); ``pytorch_lightning`` and
``torchmetrics`` are used when installed, else stubbed (the official top-3 accuracy is then computed
by a stand-in here; the line says which). Peak memory: each side runs one cycle in a child process
and reports its own peak RSS. ``--compare`` trains a fixture-size model from the same start with
ScaledAdam (official rates) and AdamW, on synthetic data where phones determine the tokens, and
prints the held-out loss per token. ``--bf16`` adds a third side, our trainer under CPU bf16 autocast
(``--precision bf16``); the official trainer's CPU mode is float32 (Lightning's ``precision`` there
is set for CUDA).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.fullsize import write_gpt
from bench.official_stubs import stub_module
from bench.soak import machine_info
from bench.timing import KEEP_HEAP_HELP, heap_policy, roomy_onednn_cache, time_alternately

OFFICIAL = Path("/work/official/GPT_SoVITS")
OPTIMIZER_SECTION = {"lr": 0.01, "lr_init": 1e-5, "lr_end": 1e-4, "warmup_steps": 2000, "decay_steps": 40000}
"""``optimizer`` of GPT_SoVITS/configs/s1longer-v2.yaml."""


def sizes(name: str) -> Any:
    from anchorvoice.plugins.gsv.t2s_model import T2SConfig

    return T2SConfig() if name == "full" else T2SConfig(hidden_dim=128, embedding_dim=128, head=4, n_layer=3)


def make_batch(b: int, phones: int, tokens: int, phone_vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"phoneme_ids": torch.randint(1, phone_vocab, (b, phones), generator=g),
            "phoneme_ids_len": torch.full((b,), phones),
            "semantic_ids": torch.randint(0, 1024, (b, tokens), generator=g),
            "semantic_ids_len": torch.full((b,), tokens),
            "bert_feature": torch.randn(b, 1024, phones, generator=g)}


class _TopK:
    """Stand-in for torchmetrics' MulticlassAccuracy(top_k, micro, ignore_index) when it is not installed."""

    def __init__(self, classes: int, top_k: int = 1, ignore_index: int = -1, **_: Any) -> None:
        self.k, self.ignore = top_k, ignore_index

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # logits (B, V, T)
        keep = target != self.ignore
        hit = (logits.topk(self.k, 1).indices == target[:, None]).any(1)
        return (hit & keep).sum() / keep.sum().clamp(min=1)


def official_module(folder: Path, ckpt: Path, out_dir: Path) -> tuple[Any, str]:
    """The official Lightning module with what its ``training_step`` needs from a Trainer."""
    real = []
    for name in ("pytorch_lightning", "torchmetrics"):
        try:
            __import__(name)
            real.append(name)
        except ImportError:
            pass
    stub_module("tqdm", tqdm=lambda it, *a, **k: it)
    stub_module("torchmetrics")
    stub_module("torchmetrics.classification", MulticlassAccuracy=_TopK)

    class _LightningStub(torch.nn.Module):
        def save_hyperparameters(self, *a: Any, **k: Any) -> None:
            pass

    stub_module("pytorch_lightning", LightningModule=_LightningStub)
    sys.path.insert(0, str(folder))
    from AR.models.t2s_lightning_module import Text2SemanticLightningModule  # type: ignore[import-not-found]

    class Harness(Text2SemanticLightningModule):  # type: ignore[misc]
        def optimizers(self, *a: Any, **k: Any) -> Any:
            return self._opt

        def lr_schedulers(self) -> Any:
            return self._sched

        def manual_backward(self, loss: torch.Tensor, *a: Any, **k: Any) -> None:
            loss.backward()

        def log(self, *a: Any, **k: Any) -> None:
            pass

    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    config = {**raw["config"], "pretrained_s1": str(ckpt), "train": {"if_dpo": False},
              "optimizer": OPTIMIZER_SECTION}
    with contextlib.redirect_stdout(sys.stderr):  # its constructor prints the load_state_dict result
        module = Harness(config, out_dir, is_train=True)
    conf = module.configure_optimizers()
    module._opt, module._sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if isinstance(getattr(m, "dropout", None), float):
            m.dropout = 0.0
    return module.train(), "real: " + ", ".join(real) if real else "stubbed pytorch_lightning and torchmetrics"


def ours_trainer(ckpt: Path, precision: str = "fp32") -> Any:
    from anchorvoice.plugins.gsv.t2s_model import load_t2s
    from anchorvoice.plugins.gsv.training.gpt_step import GptTrainConfig, GptTrainer, GptTrainModel

    model = GptTrainModel(load_t2s(ckpt).requires_grad_(True), dropout=0.0)
    return GptTrainer(model, GptTrainConfig(), precision, batches_per_epoch=1000)


def as_gpt_batch(batch: dict[str, torch.Tensor]) -> Any:
    from anchorvoice.plugins.gsv.training.gpt_step import GptBatch

    return GptBatch(batch["phoneme_ids"], batch["phoneme_ids_len"], batch["bert_feature"], batch["semantic_ids"],
                    batch["semantic_ids_len"])


def cycle(args: argparse.Namespace, ckpt: Path, tmp: Path, side: str) -> tuple[Any, list[float], str]:
    """A callable running one 4-batch cycle (batch indices 1..4) of ``side``, the list its losses go to,
    and how the official side was harnessed."""
    batch = make_batch(args.batch, args.phones, args.tokens, sizes(args.size).phoneme_vocab_size)
    losses: list[float] = []
    if side in ("ours", "ours-bf16"):
        ours, gb = ours_trainer(ckpt, "bf16" if side == "ours-bf16" else "fp32"), as_gpt_batch(batch)

        def run_ours() -> None:
            for i in range(1, 5):
                losses.append(ours.step(gb, i)["loss"])

        return run_ours, losses, ""
    official, mode = official_module(args.official, ckpt, tmp)
    forward_old = official.model.forward_old

    def recording(*a: Any) -> Any:
        loss, acc = forward_old(*a)
        losses.append(float(loss.detach()))
        return loss, acc

    official.model.forward_old = recording

    def run_official() -> None:
        for i in range(1, 5):
            official.training_step(batch, i)

    return run_official, losses, mode


def _vm_hwm_mb() -> float:
    """Peak resident set of this process's own memory (``VmHWM``): ``ru_maxrss`` would also count the
    parent, whose peak a spawned child inherits across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _peak_child(args: argparse.Namespace, ckpt: str, tmp: str, side: str, queue: Any) -> None:
    torch.set_num_threads(args.threads)
    heap_policy(args.keep_heap)
    sizes(args.size)  # the imports both sides share, before the baseline
    baseline = _vm_hwm_mb()
    run, _, _ = cycle(args, Path(ckpt), Path(tmp), side)
    run()
    queue.put((baseline, _vm_hwm_mb()))


def peak_rss_mb(args: argparse.Namespace, ckpt: Path, tmp: Path, side: str) -> dict[str, float]:
    """Peak RSS of a child process that builds ``side`` and runs one cycle, and its RSS after the imports."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(args, str(ckpt), str(tmp), side, queue))
    proc.start()
    baseline, peak = queue.get(timeout=3600)
    proc.join()
    return {"peak": round(peak, 1), "after_imports": round(baseline, 1)}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    roomy_onednn_cache()
    heap = heap_policy(args.keep_heap)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ckpt = write_gpt(tmp / "s1.ckpt", sizes=sizes(args.size))
        run_ours, l_ours, _ = cycle(args, ckpt, tmp, "ours")
        run_official, l_off, mode = cycle(args, ckpt, tmp, "official")
        runs, lists = {"ours": run_ours, "official": run_official}, {"ours": l_ours, "official": l_off}
        if args.bf16:
            runs["ours-bf16"], lists["ours-bf16"], _ = cycle(args, ckpt, tmp, "ours-bf16")
        for _ in range(2):  # two cycles: the second after a step
            for run in runs.values():
                run()
        first = {k: list(v) for k, v in lists.items()}
        times = time_alternately(runs, args.repeats)
        del run_ours, run_official, runs
        peaks = {side: peak_rss_mb(args, ckpt, tmp, side) for side in times}
    return {"machine": machine_info(), "size": args.size, "batch": args.batch, "phones": args.phones,
            "tokens": args.tokens, "threads": args.threads, "repeats": args.repeats, "official_harness": mode,
            "onednn_primitive_cache": roomy_onednn_cache(), "heap": heap, "losses_two_cycles": first,
            "seconds_per_cycle": {k: round(v["median_s"], 4) for k, v in times.items()},
            "seconds_per_batch": {k: round(v["median_s"] / 4, 4) for k, v in times.items()},
            "speedup": {k: round(times["official"]["median_s"] / v["median_s"], 3) for k, v in times.items()
                        if k != "official"},
            "peak_rss_mb": peaks}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("full", "tiny"), default="full")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--phones", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--official", type=Path, default=OFFICIAL)
    ap.add_argument("--bf16", action="store_true", help="also time our trainer under CPU bf16 autocast")
    ap.add_argument(
        "--keep-heap",
        action="store_true",
        help=KEEP_HEAP_HELP,
    )
    ap.add_argument("--compare", action="store_true", help="ScaledAdam vs AdamW held-out loss instead of timing")
    ap.add_argument("--compare-batches", type=int, default=240)
    args = ap.parse_args(argv)
    if args.compare:
        from bench.train_gpt_compare import compare

        torch.set_num_threads(args.threads)
        print(json.dumps(compare(args.compare_batches), indent=2))
        return
    print(json.dumps(bench(args), indent=2))


if __name__ == "__main__":
    main()
