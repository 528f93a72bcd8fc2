"""torchrun with 2 CPU processes (gloo) gives the weights of one process on the same global batch, also when
the two stop mid-cycle and resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.plugins.gsv.checkpoint_writer import write_discriminator
from anchorvoice.plugins.gsv.training.dataset import GsvDataset
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from tests.gsv.training.datasets import make_dataset
from tests.gsv_voice import make_hubert_768

KEY_BIAS = ("conv_k.bias", "w_ks.bias")

REPO = Path(__file__).resolve().parents[3]


def _cmd(home: Path, ds: Path, ref: Path, hubert: Path, batch: int, stage: str = "gpt",
         disc: Path | None = None) -> list[str]:
    per_stage = ["--gpt-epochs", "1", "--lr-scale", "30", "--gpt-dropout", "0"] if stage == "gpt" else [
        "--sovits-epochs", "1", "--segment-size", "2560", "--base-disc", str(disc)]
    return ["mira", "--home", str(home), "--dataset", str(ds), "--stage", stage, "--batch-size", str(batch),
            "--base-gpt", str(ref / "s1_v2_small.ckpt"), "--base-sovits", str(ref / "s2_v2_small.pth"),
            "--hubert", str(hubert), *per_stage, "--json"]


def _one_and_two(tmp_path: Path, ds: Path, ref: Path, stage: str, port: int) -> tuple[dict, dict]:
    """Training states of one process with batch 2 and of two gloo processes with batch 1 each."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed next to this python")
    hubert = make_hubert_768(tmp_path / "hubert")
    torch.manual_seed(3)
    disc = write_discriminator(tmp_path / "disc.pth", MultiPeriodDiscriminator())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd_one = _cmd(tmp_path / "one", ds, ref, hubert, 2, stage, disc)
    one = subprocess.run([sys.executable, "-m", "anchorvoice.train", *cmd_one],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", str(port), "-m", "anchorvoice.train",
                          *_cmd(tmp_path / "two", ds, ref, hubert, 1, stage, disc)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr
    a, _ = load_pickled(tmp_path / "one" / "training" / "mira" / f"state-{stage}.pt")
    b, _ = load_pickled(tmp_path / "two" / "training" / "mira" / f"state-{stage}.pt")
    return a, b


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path, small_dataset: Path, gsv_reference: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed next to this python")
    hubert = make_hubert_768(tmp_path / "hubert")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    one = subprocess.run([sys.executable, "-m", "anchorvoice.train", *_cmd(tmp_path / "one", small_dataset,
                                                                            gsv_reference, hubert, 2)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr
    # The two processes stop after the first batch, which kept its gradient local (no_sync), and resume:
    # each must take its own accumulated share back for the all-reduce of the step to be the same.
    for extra in (["--max-steps", "1"], ["--resume", "--overwrite"]):
        two = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29517", "-m", "anchorvoice.train",
                              *_cmd(tmp_path / "two", small_dataset, gsv_reference, hubert, 1), *extra],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert two.returncode == 0, two.stderr
    a, _ = load_pickled(tmp_path / "one" / "training" / "mira" / "state-gpt.pt")
    b, _ = load_pickled(tmp_path / "two" / "training" / "mira" / "state-gpt.pt")
    assert a["step"] == b["step"] == 2  # 4 utterances / global batch 2, one epoch
    from anchorvoice.plugins.gsv.checkpoints import load_gpt

    base = load_gpt(gsv_reference / "s1_v2_small.ckpt").weights
    moved = max(float((a["model"][f"model.{k}"] - v.float()).abs().max()) for k, v in base.items())
    assert moved > 3e-4  # the steps changed the weights far more than the tolerance below
    for k, v in a["model"].items():
        got = b["model"][k]
        if k.endswith("self_attn.in_proj_bias"):
            # The key bias cannot change attention (softmax ignores a per-row constant): its true gradient
            # is 0, and Adam blows the rounding noise of the two all-reduce orders up to ~lr. Not compared.
            third = v.numel() // 3
            v, got = torch.cat([v[:third], v[2 * third :]]), torch.cat([got[:third], got[2 * third :]])
        torch.testing.assert_close(got, v, atol=1e-5, rtol=0, msg=k)


@pytest.mark.slow
def test_sovits_two_gloo_processes_match_one_process(tmp_path: Path, gsv_reference: Path) -> None:
    """Generator and discriminator under DDP. Slices and noise are drawn per item, so both runs draw alike.

    The utterances are cut to one length: the KL term is a mean over each process's frames and DDP
    averages the processes, which weighs the frames of unequal utterances differently from one process
    (the official trainer under DDP does the same)."""
    ds = make_dataset(tmp_path / "ds" / "mira", gsv_reference / "s2_v2_small.pth", n=4, seconds=0.7)
    data = GsvDataset.open(ds)
    assert len({data.wav(i).shape[-1] for i in range(len(data.items))}) == 1, "clips shorter than 0.7 s"
    a, b = _one_and_two(tmp_path, ds, gsv_reference, "sovits", 29518)
    assert a["step"] == b["step"] == 2  # 4 utterances / global batch 2, one epoch
    lr = 1e-4  # the base config's learning rate: an AdamW step moves an element by about lr
    flipped, total, worst = 0, 0, []
    for part in ("model", "disc"):
        assert a[part].keys() == b[part].keys()
        for k, v in a[part].items():
            got = b[part][k]
            if not v.is_floating_point() or k.endswith(KEY_BIAS):
                continue  # key biases: see tests/conformance/test_sovits_train_oracle.py (true gradient 0)
            diff = (got - v).abs()
            # Adam's first step moves every element by +-lr whatever its gradient's size: an element whose
            # gradient is within rounding noise of 0 (measured: ~0.1% of the decoder's) can take either sign
            assert float(diff.max()) <= 2 * 2.05 * lr, f"{part}.{k}: {float(diff.max()):.2e}"
            off = int((diff > 1e-5).sum())
            flipped += off
            total += v.numel()
            worst.append((off / v.numel(), f"{part}.{k}: {off} of {v.numel()}"))
    worst.sort(reverse=True)
    assert total > 10_000_000
    assert flipped <= 2e-3 * total, f"{flipped} of {total} elements differ by more than 1e-5; most in " + \
        "; ".join(w for _, w in worst[:25])
