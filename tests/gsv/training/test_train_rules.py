"""What `anchorvoice train` refuses, and why: order rules, missing bases, resume, locks, bad files."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from anchorvoice.engine.training import NonFiniteLoss, RunLock, StageLoop, TrainingInterrupted
from anchorvoice.errors import TrainingDatasetError, TrainingError, UnsafeCheckpointError
from anchorvoice.plugins.gsv.checkpoint_writer import atomic_save
from anchorvoice.plugins.gsv.training.bases import load_discriminator
from anchorvoice.plugins.gsv.training.options import TrainOptions, check_order, check_resume
from anchorvoice.plugins.gsv.training.recipe import FineTune


def _opts(tmp: Path, ds: Path, ref: Path, **kw) -> TrainOptions:
    base = {"base_gpt": str(ref / "s1_v2_small.ckpt"), "base_sovits": str(ref / "s2_v2_small.pth"),
            "base_disc": "", "from_scratch": False}
    return TrainOptions(name="mira", dataset=str(ds), run_dir=str(tmp / "run"), **{**base, **kw})


def test_frozen_quantizer_allows_either_order(tmp_path: Path) -> None:
    assert check_order(TrainOptions("v", "d", "r")) == ["sovits", "gpt"]
    assert check_order(TrainOptions("v", "d", "r", order="gpt-first")) == ["gpt", "sovits"]


def test_unfrozen_quantizer_refuses_gpt_first_with_the_reason() -> None:
    with pytest.raises(TrainingError, match="SoVITS must come first"):
        check_order(TrainOptions("v", "d", "r", unfreeze_quantizer=True, order="gpt-first"))
    with pytest.raises(TrainingError, match="tokens would not match"):
        check_order(TrainOptions("v", "d", "r", unfreeze_quantizer=True, stages=("gpt",)))


def test_no_base_is_refused_with_what_to_download(tmp_path: Path, small_dataset: Path) -> None:
    opts = TrainOptions("mira", str(small_dataset), str(tmp_path / "run"))
    with pytest.raises(TrainingError, match="s2G2333k.pth") as err:
        FineTune(opts)
    assert "--base-gpt" in str(err.value) and "--from-scratch" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_dataset_made_with_another_base_is_refused(tmp_path: Path, small_dataset: Path, gsv_reference: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(small_dataset, ds)
    tsv = ds / "6-name2semantic.tsv"
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join([lines[0]] + [n + "\t" + " ".join(str((int(t) + 7) % 1024) for t in s.split())
                                           for n, s in (ln.split("\t") for ln in lines[1:])]) + "\n")
    with pytest.raises(TrainingError, match="made with another base"):
        FineTune(_opts(tmp_path, ds, gsv_reference, base_disc="x"))


def test_dataset_smaller_than_one_batch_is_refused(tmp_path: Path, small_dataset: Path, gsv_reference: Path) -> None:
    with pytest.raises(TrainingDatasetError, match="fewer than one batch of 8"):
        FineTune(_opts(tmp_path, small_dataset, gsv_reference, base_disc="x", batch_size=8))


def test_missing_dataset_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    opts = TrainOptions("v", str(tmp_path / "ds"), str(tmp_path / "run"), from_scratch=True)
    with pytest.raises(TrainingDatasetError, match="2-name2text.txt is missing"):
        FineTune(opts)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/anchorvoice-pwned",))


def test_a_base_that_runs_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    evil = tmp_path / "s2D.pth"
    torch.save({"weight": {"x": _Boom()}}, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    Path("/tmp/anchorvoice-pwned").unlink(missing_ok=True)
    with pytest.raises(UnsafeCheckpointError):
        load_discriminator(evil)
    assert not Path("/tmp/anchorvoice-pwned").exists()


def test_resume_with_other_options_lists_them(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    saved = TrainOptions("v", "d", str(run), gpt_epochs=15, batch_size=4)
    (run / "options.json").write_text(json.dumps(saved.key()))
    now = TrainOptions("v", "d", str(run), gpt_epochs=20, batch_size=2, resume=True)
    with pytest.raises(TrainingError) as err:
        check_resume(now, run)
    assert "gpt_epochs: saved 15, now 20" in str(err.value) and "batch_size: saved 4, now 2" in str(err.value)
    check_resume(TrainOptions("v", "d", str(run), gpt_epochs=15, batch_size=4, resume=True), run)


def test_a_new_run_does_not_overwrite_a_saved_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "state-gpt.pt").write_bytes(b"x")
    with pytest.raises(TrainingError, match="--resume"):
        check_resume(TrainOptions("v", "d", str(run)), run)


def test_second_run_on_the_same_voice_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path / "lock"):
        with pytest.raises(TrainingError, match="another training run"):
            with RunLock(tmp_path / "lock"):
                pass
    with RunLock(tmp_path / "lock"):  # released: free again
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / "lock").write_text("999999999")
    with RunLock(tmp_path / "lock"):
        assert (tmp_path / "lock").read_text() == str(os.getpid())


def _loop(saved: list[int], fail_at: int | None = None, exc: type[BaseException] = KeyboardInterrupt) -> StageLoop:
    def step(epoch: int, index: int) -> dict[str, float]:
        if epoch * 3 + index == fail_at:
            if exc is NonFiniteLoss:
                raise NonFiniteLoss("loss is nan")
            raise exc()
        return {"loss": 1.0}

    return StageLoop("gpt", epochs=2, batches_per_epoch=3, step=step, save=saved.append)


def test_ctrl_c_saves_the_step_reached() -> None:
    saved: list[int] = []
    with pytest.raises(TrainingInterrupted, match="--resume"):
        _loop(saved, fail_at=4).run()
    assert saved[-1] == 4
    saved.clear()
    assert _loop(saved).run(4) == 6  # resumed: continues from the saved step


def test_nan_loss_stops_with_the_step_and_a_lower_rate_hint() -> None:
    saved: list[int] = []
    with pytest.raises(NonFiniteLoss, match="last good state \\(step 2\\).*Lower the learning rate"):
        _loop(saved, fail_at=2, exc=NonFiniteLoss).run()
    assert saved == [2]


def test_nan_returned_by_a_step_also_stops() -> None:
    saved: list[int] = []
    loop = StageLoop("gpt", 1, 3, lambda e, i: {"loss": float("nan")}, saved.append)
    with pytest.raises(NonFiniteLoss, match="step 0"):
        loop.run()


def test_killed_mid_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.pt"
    atomic_save({"step": 1}, path)
    good = path.read_bytes()

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        atomic_save({"step": 2}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_cli_refuses_bad_flags_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from anchorvoice.engine.cli.main import main

    home = tmp_path / "home"
    ds = tmp_path / "ds"
    ds.mkdir()
    assert main(["--home", str(home), "train", "v", "--dataset", str(ds)]) == 2
    assert "--hubert" in capsys.readouterr().err
    assert main(["--home", str(home), "train", "v", "--dataset", str(ds), "--hubert", "nothere"]) == 2
    assert "not a HuBERT folder" in capsys.readouterr().err
    hub = tmp_path / "hubert"
    hub.mkdir()
    (hub / "config.json").write_text("{}")
    flags = ["--dataset", str(ds), "--hubert", str(hub)]
    assert main(["--home", str(home), "train", "v", *flags, "--batch-size", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["--home", str(home), "train", "v", "--dataset", "nope", "--hubert", str(hub)]) == 2
    assert "dataset make" in capsys.readouterr().err
    assert not (home / "training").exists()


def test_auto_batch_size_on_cpu_fits_the_dataset() -> None:
    from anchorvoice.plugins.gsv.training.recipe import auto_batch_size

    assert auto_batch_size(torch.device("cpu"), 100) == 4
    assert auto_batch_size(torch.device("cpu"), 3) == 3


def test_clips_shorter_than_a_slice_leave_too_few_for_a_batch(tmp_path: Path, small_dataset: Path,
                                                              gsv_reference: Path) -> None:
    from anchorvoice.plugins.gsv.checkpoint_writer import write_discriminator
    from anchorvoice.plugins.gsv.training.discriminator import MultiPeriodDiscriminator

    disc = str(write_discriminator(tmp_path / "d.pth", MultiPeriodDiscriminator()))
    job = FineTune(_opts(tmp_path, small_dataset, gsv_reference, base_disc=disc, batch_size=2,
                         segment_size=640 * 200, stages=("sovits",)))
    with pytest.raises(TrainingDatasetError, match="only 0 clip\\(s\\) are at least one decoder slice"):
        job.run()
    assert not list((tmp_path / "run").glob("state-*.pt"))
