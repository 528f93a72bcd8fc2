"""`anchorvoice train` end to end on the fixture bases and a real-speech dataset (slow: real training steps)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from anchorvoice.engine.cli.main import main
from anchorvoice.engine.training import read_losses
from anchorvoice.plugins.gsv.checkpoint_writer import write_discriminator
from anchorvoice.plugins.gsv.checkpoints import load_gpt, load_sovits
from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator
from tests.conftest import needs_bf16_kernels
from tests.gsv_voice import make_hubert_768


def _args(home: Path, ds: Path, ref: Path, disc: Path, *extra: str) -> list[str]:
    hubert = home.parent / "hubert"
    if not hubert.exists():
        make_hubert_768(hubert)
    return ["--home", str(home), "train", "mira", "--dataset", str(ds), "--base-gpt", str(ref / "s1_v2_small.ckpt"),
            "--base-sovits", str(ref / "s2_v2_small.pth"), "--base-disc", str(disc),
            "--batch-size", "2", "--hubert", str(hubert),
            "--sovits-epochs", "1", "--gpt-epochs", "3", "--segment-size", "2560", *extra]


@pytest.mark.slow
def test_train_makes_a_voice_and_resume_continues(tmp_path: Path, small_dataset: Path, gsv_reference: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    disc = write_discriminator(tmp_path / "s2D.pth", MultiPeriodDiscriminator())
    home = tmp_path / "home"
    # first run stops after 2 steps per stage (as a time-boxed or interrupted run would)
    assert main(_args(home, small_dataset, gsv_reference, disc, "--max-steps", "2")) == 0
    run = home / "training" / "mira"
    rows = read_losses(run / "losses.csv")
    assert [(r["stage"], r["step"]) for r in rows] == [("sovits", "1"), ("sovits", "2"), ("gpt", "1"), ("gpt", "2")]
    # a second run without --resume would overwrite: refused
    assert main(_args(home, small_dataset, gsv_reference, disc)) == 2
    assert "--resume" in capsys.readouterr().err
    # --resume goes on from the saved steps: SoVITS is complete (1 epoch x 2 steps), the GPT continues at 3
    assert main(_args(home, small_dataset, gsv_reference, disc, "--resume", "--overwrite", "--json")) == 0
    capsys.readouterr()
    rows = read_losses(run / "losses.csv")
    assert [(r["stage"], r["step"]) for r in rows][4:] == [("gpt", "3"), ("gpt", "4"), ("gpt", "5"), ("gpt", "6")]
    # --resume with a changed option is refused, naming it
    assert main(_args(home, small_dataset, gsv_reference, disc, "--resume", "--lora", "4")) == 2
    assert "lora: saved 0, now 4" in capsys.readouterr().err
    # the exported files load with our loaders and hold config + version
    s2 = load_sovits(run / "mira-sovits.pth")
    assert s2.version == "v2" and s2.config["model"]["version"] == "v2"
    assert load_gpt(run / "mira-gpt.ckpt").version == "v2"
    assert main(["--home", str(home), "voices", "list", "--json"]) == 0
    assert "mira" in capsys.readouterr().out


@pytest.mark.slow
def test_gpt_resumed_mid_cycle_ends_where_an_unbroken_run_does(tmp_path: Path, small_dataset: Path,
                                                                gsv_reference: Path) -> None:
    from anchorvoice.engine.checkpoint_unpickler import load_pickled

    disc = write_discriminator(tmp_path / "s2D.pth", MultiPeriodDiscriminator())

    def args(home: Path, *extra: str) -> list[str]:  # batch 1: 4 batches per epoch, one optimiser step at the last
        a = _args(home, small_dataset, gsv_reference, disc, "--stage", "gpt", "--gpt-dropout", "0", *extra)
        a[a.index("--batch-size") + 1] = "1"
        a[a.index("--gpt-epochs") + 1] = "1"
        return a

    assert main(args(tmp_path / "whole")) == 0
    assert main(args(tmp_path / "split", "--max-steps", "2")) == 0  # stops with batches 0-1 accumulated
    assert main(args(tmp_path / "split", "--resume", "--overwrite")) == 0
    whole, _ = load_pickled(tmp_path / "whole" / "training" / "mira" / "state-gpt.pt")
    split, _ = load_pickled(tmp_path / "split" / "training" / "mira" / "state-gpt.pt")
    assert whole["step"] == split["step"] == 4 and whole["trainer"]["steps"] == split["trainer"]["steps"] == 1
    for k, v in whole["model"].items():
        torch.testing.assert_close(split["model"][k], v, atol=1e-6, rtol=0, msg=k)


def test_lora_lr_scale_needs_lora_and_a_positive_factor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--home", str(tmp_path), "train", "mira", "--dataset", str(tmp_path), "--lora-lr-scale"]
    assert main([*base, "10"]) == 2
    assert "together with --lora RANK" in capsys.readouterr().err
    assert main([*base, "0", "--lora", "8"]) == 2
    assert "positive factor" in capsys.readouterr().err


@pytest.mark.slow
def test_lora_voices_keep_only_their_adapters_on_one_shared_base(tmp_path: Path, small_dataset: Path,
                                                                gsv_reference: Path) -> None:
    """`train --lora`: each voice's models are delta blobs on the base, stored once for every voice on it; they
    load as whole models (the composed weights) through the safe loaders."""
    from anchorvoice.engine.engine import Engine, EngineConfig
    from anchorvoice.plugins.gsv.sovits import SynthesizerTrn
    from anchorvoice.plugins.gsv.t2s_model import T2SConfig, load_t2s_weights

    torch.manual_seed(0)
    disc = write_discriminator(tmp_path / "s2D.pth", MultiPeriodDiscriminator())
    home = tmp_path / "home"
    for name in ("mira", "kai"):
        args = _args(home, small_dataset, gsv_reference, disc, "--lora", "4", "--max-steps", "2")
        args[args.index("mira")] = name
        assert main(args) == 0
    engine = Engine(EngineConfig(home=home))
    try:
        blobs = engine.voices.blobs
        bases = {}
        for name in ("mira", "kai"):
            voice = engine.voices.get(name)
            for kind, base_file in (("sovits", "s2_v2_small.pth"), ("gpt", "s1_v2_small.ckpt")):
                info = blobs.info(voice.blobs[kind])
                assert info.base, f"{name} {kind} is a whole model, not a delta"
                assert info.size < (gsv_reference / base_file).stat().st_size / 4
                bases.setdefault(kind, set()).add(info.base)
            SynthesizerTrn.from_checkpoint(load_sovits(voice.models["sovits"]))
            gpt = load_gpt(voice.models["gpt"])
            load_t2s_weights(T2SConfig.from_checkpoint_config(gpt.config), gpt.weights)
        assert all(len(shas) == 1 for shas in bases.values())  # one stored base per kind for both voices
    finally:
        engine.close()


@pytest.mark.slow
@needs_bf16_kernels
def test_cpu_bf16_training_makes_a_voice(tmp_path: Path, small_dataset: Path, gsv_reference: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    disc = write_discriminator(tmp_path / "s2D.pth", MultiPeriodDiscriminator())
    home = tmp_path / "home"
    assert main(_args(home, small_dataset, gsv_reference, disc, "--precision", "bf16", "--max-steps", "2")) == 0
    run = home / "training" / "mira"
    rows = read_losses(run / "losses.csv")
    assert [(r["stage"], r["step"]) for r in rows] == [("sovits", "1"), ("sovits", "2"), ("gpt", "1"), ("gpt", "2")]
    losses = [float(v) for r in rows for k, v in r.items() if k.startswith("loss")]
    assert len(losses) >= 4 and all(math.isfinite(v) for v in losses)
    s2 = load_sovits(run / "mira-sovits.pth")  # the official formats, whatever the autocast dtype was
    assert all(torch.isfinite(t.float()).all() for t in s2.weights.values() if t.is_floating_point())
    assert load_gpt(run / "mira-gpt.ckpt").version == "v2"
    assert main(["--home", str(home), "voices", "list", "--json"]) == 0
    assert "mira" in capsys.readouterr().out
