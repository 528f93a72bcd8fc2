"""Model-agnostic safe loading: plain state_dict files, hostile pickles, key checks."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from anchorvoice.engine.state_dicts import check_keys, load_state_dict
from anchorvoice.errors import CorruptCheckpointError, UnsafeCheckpointError


def test_tensor_subclass_global_refused(tmp_path: Path) -> None:
    p = tmp_path / "param.pt"
    torch.save({"x": torch.nn.Module()}, p)
    with pytest.raises(UnsafeCheckpointError, match="torch.nn.modules.module.Module"):
        load_state_dict(p)


def test_damaged_tensor_bytes(tmp_path: Path) -> None:
    import zipfile

    src = tmp_path / "sd.pt"
    torch.save({"w": torch.arange(10.0)}, src)
    dst = tmp_path / "bad.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            zout.writestr(
                item, data[:8] if "/data/" in item.filename and "serialization" not in item.filename else data
            )
    with pytest.raises(CorruptCheckpointError, match="bytes, expected"):
        load_state_dict(dst)


def test_shared_storage_views_keep_values(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    p = tmp_path / "views.pt"
    torch.save({"base": base, "col": base[:, 1], "t": base.t()}, p)
    got = load_state_dict(p)
    assert torch.equal(got["col"], base[:, 1]) and torch.equal(got["t"], base.t())


def test_check_keys_lists_missing_and_extra() -> None:
    check_keys({"a", "b"}, {"a", "b"})
    with pytest.raises(CorruptCheckpointError) as err:
        check_keys({"a", "b", "c"}, {"a", "zz"}, what="voice.pth")
    msg = str(err.value)
    assert "voice.pth" in msg and "missing keys: b, c" in msg and "unexpected keys: zz" in msg


class _TensorWithState:
    """Pickles as a tensor rebuild followed by BUILD(state): Tensor.__setstate__ -> set_ (unchecked)."""

    def __init__(self, state: tuple) -> None:
        self.state = state

    def __reduce__(self) -> tuple:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            storage = torch.zeros(4).storage()  # typed storage: pickled as torch.FloatStorage
        args = (storage, 0, (4,), (1,), False, OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args, self.state)


def test_tensor_state_injection_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "oob.pt"
    torch.save({"w": _TensorWithState((torch.arange(3.0), 0, (1_000_000,), (1,)))}, p)
    with pytest.raises(UnsafeCheckpointError, match="sets the state of a Tensor"):
        load_state_dict(p)


class _ItemsOnTensor:
    def __reduce__(self) -> tuple:
        args = (torch.zeros(4).storage(), 0, (4,), (1,), False, OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args, None, None, iter([(0, 5.0)]))


def test_item_assignment_on_non_dicts_is_refused(tmp_path: Path) -> None:
    import warnings

    p = tmp_path / "items.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save({"w": _ItemsOnTensor()}, p)
    with pytest.raises(UnsafeCheckpointError, match="assigns items of a Tensor"):
        load_state_dict(p)


def test_state_dict_metadata_attribute_is_kept(tmp_path: Path) -> None:
    sd = torch.nn.Linear(2, 3).state_dict()  # an OrderedDict carrying `_metadata` (pickled via BUILD)
    p = tmp_path / "linear.pt"
    torch.save(sd, p)
    got = load_state_dict(p)
    assert set(got) == {"weight", "bias"} and torch.equal(got["weight"], sd["weight"])

