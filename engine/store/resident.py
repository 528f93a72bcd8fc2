"""What stays loaded: a least-recently-used cache of voice pipelines under a memory budget.

``[store] max_resident_mb`` caps the bytes of model weights kept in host memory (``max_gpu_mb`` the
bytes on accelerators), summed over the cached pipelines as measured from their tensors. Adding a
pipeline evicts the least recently used others until the sum fits again; the newest one always stays
(a host or GPU budget smaller than one voice's models is refused when the engine starts, see
:func:`check_budget`).
A pipeline that a caller is using (:meth:`ResidentCache.lease`) is taken out of the count when it is
evicted but closed only when the lease ends, so a speech in progress is never pulled from under it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from anchorvoice.errors import ConfigError

log = logging.getLogger(__name__)

MB = 1024 * 1024
_DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                "U16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
LOADED_BYTES_PER_ELEMENT = 4
"""Weights are upcast to float32 when a stage loads them (official files store float16)."""

T = TypeVar("T")


@dataclass
class StoreConfig:
    """The voice store's limits (``[store]``)."""

    max_resident_mb: float = 0.0
    """Most MiB of model weights kept loaded in host memory, over all cached voices (0: no limit);
    the least recently used voices are unloaded first."""
    max_gpu_mb: float = 0.0
    """The same for accelerator (GPU) memory (0: no limit)."""


@dataclass
class Footprint:
    """Bytes of tensors an object holds, by where they live."""

    host: int = 0
    """Bytes in host memory."""
    gpu: int = 0
    """Bytes on accelerators."""

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.host + other.host, self.gpu + other.gpu)


def footprint(obj: Any, depth: int = 8) -> Footprint:
    """Bytes of the distinct tensors and numpy arrays reachable from ``obj``'s attributes (modules,
    tensors, arrays, containers, objects), each storage counted once.

    ``depth`` bounds how many plain objects or containers deep the walk goes: a pipeline holds its stages
    in a dict, a stage its runtime, a runtime its model and the kernels' own weight arrays (the GPT's
    fused decode step keeps 75 MB of int8 or 302 MB of float32 weights as numpy arrays). An object whose
    class defines ``hidden_host_bytes()`` adds what it holds outside tensors and arrays (e.g. weights
    packed inside a kernel library's opaque object)."""
    import numpy as np
    import torch

    seen: set[object] = set()
    visited: set[int] = set()
    total = Footprint()

    def count(key: object, n: int, on_gpu: bool) -> None:
        nonlocal total
        if key in seen:
            return
        seen.add(key)
        total = total + (Footprint(gpu=n) if on_gpu else Footprint(host=n))

    def walk(o: Any, d: int) -> None:
        if isinstance(o, np.ndarray):
            owner = o
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            count(owner.__array_interface__["data"][0], owner.nbytes, False)
            return
        if isinstance(o, torch.nn.Module):
            tensors: Iterable[torch.Tensor] = [*o.parameters(), *o.buffers()]
        elif isinstance(o, torch.Tensor):
            tensors = [o]
        else:
            if d <= 0 or isinstance(o, str | bytes | int | float | bool) or o is None or id(o) in visited:
                return
            visited.add(id(o))
            hidden = getattr(type(o), "hidden_host_bytes", None)
            if callable(hidden):
                count(("hidden", id(o)), int(hidden(o)), False)
            items = o.values() if isinstance(o, dict) else o if isinstance(o, list | tuple | set) else \
                vars(o).values() if hasattr(o, "__dict__") else ()
            for x in list(items):
                walk(x, d - 1)
            return
        for t in tensors:
            if not t.is_meta:
                count(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes(), t.device.type != "cpu")

    walk(obj, depth)
    return total


def blob_loaded_bytes(path: Path) -> int:
    """Bytes a safetensors blob's tensors take once loaded as float32, from its header alone."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    total = 0
    for key, t in header.items():
        if key == "__metadata__":
            continue
        count = 1
        for s in t["shape"]:
            count *= int(s)
        total += count * max(LOADED_BYTES_PER_ELEMENT, _DTYPE_BYTES.get(t["dtype"], 4))
    return total


def model_bytes(path: Path, is_blob: bool) -> int:
    """Bytes a model takes loaded: from a blob's header, else twice the file (or folder) size, since
    official files store float16 that loading upcasts."""
    if is_blob:
        return blob_loaded_bytes(path)
    if path.is_dir():
        return 2 * sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 2 * path.stat().st_size if path.is_file() else 0


def check_budget(config: StoreConfig, needs: dict[str, int]) -> None:
    """Refuse a host or GPU budget smaller than the largest voice's models (``needs``: voice -> loaded
    bytes), naming the smallest budget that works.

    The same bytes bound both memories: a voice's weights sit in host memory when its stages run on the
    CPU and on the accelerator when they run there, and the newest voice always stays loaded, so either
    budget must hold the largest voice whole."""
    if not needs:
        return
    name, biggest = max(needs.items(), key=lambda kv: kv[1])
    smallest = -(-biggest // MB)
    for key, limit, where in (("max_resident_mb", config.max_resident_mb, "host memory"),
                              ("max_gpu_mb", config.max_gpu_mb, "GPU memory")):
        if 0 < limit and biggest > limit * MB:
            raise ConfigError(
                f"{key} = {limit:g} is smaller than voice {name!r} needs loaded in {where} "
                f"({biggest / MB:.1f} MiB); set at least {smallest}",
                key=f"store.{key}",
            )


@dataclass
class _Entry(Generic[T]):
    value: T
    size: Footprint
    leases: int = 0
    evicted: bool = False


@dataclass
class ResidentCache(Generic[T]):
    """LRU cache of loaded things (pipelines) under a :class:`StoreConfig` budget; thread-safe."""

    config: StoreConfig = field(default_factory=StoreConfig)
    close: Callable[[T], None] = lambda _v: None
    measure: Callable[[T], Footprint] = footprint
    evictions: int = 0
    _entries: OrderedDict[Any, _Entry[T]] = field(default_factory=OrderedDict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _building: dict[Any, threading.Lock] = field(default_factory=dict)

    def get_or_build(self, key: Any, build: Callable[[], T]) -> T:
        """The cached value of ``key`` (now the most recently used), or ``build()`` it and evict to fit.

        Two threads asking for one key build it once; a thread building one voice does not hold up a
        thread asking for another (the build runs outside the cache's lock)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry.value
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:  # built by the thread we waited for
                    self._entries.move_to_end(key)
                    return entry.value
            value = build()
            size = self.measure(value)
            with self._lock:
                self._entries[key] = _Entry(value, size)
                self._building.pop(key, None)
                self._fit(keep=key)
            return value

    @contextlib.contextmanager
    def lease(self, key: Any, build: Callable[[], T]) -> Iterator[T]:
        """:meth:`get_or_build`, with the value kept open (not closed by eviction) until the block ends."""
        while True:
            value = self.get_or_build(key, build)
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.value is value:  # not evicted between build and lease
                    entry.leases += 1
                    break
        try:
            yield value
        finally:
            with self._lock:
                entry.leases -= 1
                if entry.evicted and entry.leases == 0:
                    self.close(entry.value)

    def resident(self) -> Footprint:
        with self._lock:
            total = Footprint()
            for e in self._entries.values():
                total = total + e.size
            return total

    def keys(self) -> list[Any]:
        with self._lock:
            return list(self._entries)

    def _over(self) -> bool:
        r = self.resident()
        host = self.config.max_resident_mb > 0 and r.host > self.config.max_resident_mb * MB
        gpu = self.config.max_gpu_mb > 0 and r.gpu > self.config.max_gpu_mb * MB
        return host or gpu

    def _fit(self, keep: Any) -> None:
        while self._over():
            victim = next((k for k in self._entries if k != keep), None)
            if victim is None:
                return  # only the newest left: the start-up check keeps budgets above one voice
            entry = self._entries.pop(victim)
            entry.evicted = True
            self.evictions += 1
            log.info("unloaded %s to stay within [store] max_resident_mb / max_gpu_mb", victim)
            if entry.leases == 0:
                self.close(entry.value)

    def clear(self) -> None:
        with self._lock:
            for e in self._entries.values():
                e.evicted = True
                if e.leases == 0:
                    self.close(e.value)
            self._entries.clear()
