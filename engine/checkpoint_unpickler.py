"""Read a ``torch.save`` zip archive without running any pickled code.

A PyTorch checkpoint is a zip whose ``<prefix>/data.pkl`` is a pickle and whose tensor bytes live in
``<prefix>/data/<key>``. Unpickling can call any importable function (``__reduce__``), so a voice
file downloaded from the internet would be a program. This module replaces ``find_class`` with an
allowlist of *names* that map to our own harmless stand-ins; nothing from ``torch`` or ``utils`` is
ever looked up by the pickle, and any other global raises :class:`UnsafeCheckpointError` before it
can be called.

Allowed globals (the set that official GPT-SoVITS s1/s2 files, HuggingFace ``pytorch_model.bin``
and plain ``state_dict`` files use, found with ``pickletools`` on the reference set):

* ``collections.OrderedDict``
* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` / ``_rebuild_parameter_with_state``
* the typed storage names ``torch.FloatStorage``, ``torch.HalfStorage``, ... (dtype markers only)
* ``utils.HParams``, GPT-SoVITS' config class (pickled under the top-level module ``utils``),
  mapped to :class:`HParamsStandIn`, whose state is a plain dict.

The first two bytes of the file may be a GPT-SoVITS version tag instead of ``PK``
(``process_ckpt.my_save2``); :func:`open_checkpoint_zip` reads past it.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from anchorvoice.errors import CorruptCheckpointError, UnsafeCheckpointError

# data.pkl holds only structure (tensor bytes are separate entries): ~80 kB for a full-size SoVITS.
_MAX_PICKLE_BYTES = 64 * 1024 * 1024

# Storage class name (as torch.save writes it) -> dtype. torch.storage._LegacyStorage subclasses.
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class HParamsStandIn:
    """Takes the place of GPT-SoVITS ``utils.HParams``; holds only the pickled ``__dict__``."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafeCheckpointError("utils.HParams in the checkpoint has a non-dict state; refusing it")
        self.__dict__.update(state)


class _StorageMarker:
    """What ``torch.HalfStorage`` etc. resolve to: only the dtype, nothing callable from torch."""

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name = name
        self.dtype = dtype


def _rebuild_tensor(
    storage: torch.Tensor,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise CorruptCheckpointError("tensor record without a storage; the file is not a torch checkpoint")
    size_t, stride_t = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if any(s < 0 for s in size_t + stride_t) or storage_offset < 0:
        raise CorruptCheckpointError(f"tensor record with negative size/stride {size_t}/{stride_t}")
    # Last element index must lie inside the storage, or as_strided would read out of bounds.
    last = storage_offset + sum((n - 1) * s for n, s in zip(size_t, stride_t, strict=True)) if all(size_t) else -1
    if last >= storage.numel():
        raise CorruptCheckpointError(
            f"tensor of size {size_t} does not fit its storage ({storage.numel()} elements); file damaged"
        )
    return torch.as_strided(storage, size_t, stride_t, storage_offset)


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, *_: Any) -> torch.Tensor:
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("utils", "HParams"): HParamsStandIn,
    **{("torch", name): _StorageMarker(name, dt) for name, dt in _STORAGE_DTYPES.items()},
}


def _refuse(what: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"the checkpoint's pickle {what}, which a model file never does; refusing to load it "
        "(nothing was executed). Re-save the weights as a plain state_dict from a trusted source."
    )


def _load_build(self: Any) -> None:
    # BUILD calls __setstate__ / writes __dict__ of the object below it. On a tensor that is
    # Tensor.__setstate__ -> Tensor.set_ with file-chosen storage, offset, sizes and strides
    # (re-pointing tensors at other tensors' memory, or resizing storages). Only config stand-ins
    # and the state_dict's OrderedDict (its ``_metadata`` attribute) take state.
    state = self.stack.pop()
    inst = self.stack[-1]
    if isinstance(inst, HParamsStandIn):
        inst.__setstate__(state)
    elif type(inst) is OrderedDict and isinstance(state, dict):
        for key, value in state.items():
            setattr(inst, str(key), value)
    else:
        raise _refuse(f"sets the state of a {type(inst).__name__}")


def _checked_setitems(self: Any, items: list[Any]) -> None:
    target = self.stack[-1]
    if not isinstance(target, dict):
        raise _refuse(f"assigns items of a {type(target).__name__}")
    for i in range(0, len(items), 2):
        target[items[i]] = items[i + 1]


def _load_setitem(self: Any) -> None:
    value = self.stack.pop()
    key = self.stack.pop()
    _checked_setitems(self, [key, value])


def _load_setitems(self: Any) -> None:
    _checked_setitems(self, self.pop_mark())


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its opcode table can be restricted) with an allowlist of globals."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._source = source
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"{self._source}: the checkpoint references '{module}.{name}', which a model file does not "
                "need; it may try to run code. Refusing to load it (nothing was executed). Only use "
                "model files from sources you trust, or re-save the weights as a plain state_dict."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CorruptCheckpointError(f"{self._source}: unknown persistent record {str(pid)[:80]!r}")
        _, marker, key, _location, numel = pid
        if not isinstance(marker, _StorageMarker):
            raise CorruptCheckpointError(f"{self._source}: storage record without a storage type")
        key = str(key)
        if key in self._storages:
            return self._storages[key]
        member = f"{self._prefix}/data/{key}"
        itemsize = torch.empty((), dtype=marker.dtype).element_size()
        want = int(numel) * itemsize
        try:
            # Size from the directory first: a compressed member must not inflate past the tensor.
            size = self._archive.getinfo(member).file_size
            if size != want:
                raise CorruptCheckpointError(
                    f"{self._source}: tensor data '{member}' has {size} bytes, expected {want}"
                )
            raw = self._archive.read(member)
        except KeyError:
            raise CorruptCheckpointError(f"{self._source}: tensor data '{member}' is missing") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CorruptCheckpointError(f"{self._source}: tensor data '{member}' unreadable ({exc})") from exc
        if len(raw) != want:
            raise CorruptCheckpointError(
                f"{self._source}: tensor data '{member}' has {len(raw)} bytes, expected {want}"
            )
        flat = torch.frombuffer(bytearray(raw), dtype=marker.dtype) if raw else torch.empty(0, dtype=marker.dtype)
        self._storages[key] = flat
        return flat


def open_checkpoint_zip(path: Path) -> tuple[zipfile.ZipFile, bytes]:
    """Open a torch zip checkpoint; returns the archive and the file's first two bytes (its tag).

    GPT-SoVITS writes a version tag over the zip magic ``PK``; the archive is then read from memory
    with the magic restored (zip readers check it on the first member's local header).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            if head == b"PK":
                blob: io.BytesIO | None = None
            else:
                blob = io.BytesIO(b"PK" + fh.read())
        archive = zipfile.ZipFile(blob if blob is not None else path)
    except FileNotFoundError:
        raise CorruptCheckpointError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CorruptCheckpointError(
            f"{path}: not a PyTorch zip checkpoint or truncated ({exc}); download the file again"
        ) from exc
    return archive, head


def load_pickled(path: Path) -> tuple[Any, bytes]:
    """Unpickle ``path`` (a torch zip checkpoint) safely; returns the object and the 2-byte head tag."""
    archive, head = open_checkpoint_zip(path)
    with archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise CorruptCheckpointError(f"{path}: no single '<prefix>/data.pkl' inside; not a torch checkpoint")
        if archive.getinfo(pkls[0]).file_size > _MAX_PICKLE_BYTES:
            raise CorruptCheckpointError(f"{path}: data.pkl is implausibly large for a model file")
        prefix = pkls[0].split("/", 1)[0]
        order = f"{prefix}/byteorder"
        if order in archive.namelist() and archive.read(order).strip() not in (b"little", b""):
            raise CorruptCheckpointError(f"{path}: big-endian checkpoints are not supported; re-save it")
        try:
            data = archive.read(pkls[0])
            obj = _RestrictedUnpickler(data, archive, prefix, str(path)).load()
        except (UnsafeCheckpointError, CorruptCheckpointError):
            raise
        except Exception as exc:  # noqa: BLE001 - any failure parsing untrusted bytes = unusable file
            raise CorruptCheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from exc
    return obj, head


def to_plain(obj: Any) -> Any:
    """HParams stand-ins and OrderedDicts -> plain nested dicts/lists (tensors and scalars kept)."""
    if isinstance(obj, HParamsStandIn):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    return obj
