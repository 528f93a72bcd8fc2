"""Per-stage CUDA streams for pipelines that run on a GPU, with an identical CPU path.

DESIGN.md: "On a GPU each stage gets its own CUDA stream so that stage N on chunk k overlaps stage
N+1 on chunk k-1; on CPU the same code runs without streams." A pipeline wraps each stage call in
``with streams.use(name):`` and orders consumers after producers with ``record``/``wait``; on CPU
every call is a no-op, and torch is not even imported.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any


class StageStreams:
    """One CUDA stream per named stage on a CUDA ``device``; no-op contexts on CPU.

    ``with streams.use("decoder"): ...`` runs the block's kernels on that stage's stream, so stage
    N of block k can overlap stage N+1 of block k-1 when a pipeline enqueues them from its worker;
    ``record(name)``/``wait(name, before)`` order a stage after its producer. torch is imported only
    for a CUDA device, so the CPU path never pays for it. ``device="auto"`` picks CUDA when torch is
    already loaded (a neural stage imported it) and sees a GPU, else CPU.
    """

    def __init__(self, names: list[str], device: str = "cpu") -> None:
        if device == "auto":
            torch_mod = sys.modules.get("torch")  # never import torch just to look for a GPU
            device = "cuda" if torch_mod is not None and torch_mod.cuda.is_available() else "cpu"
        self.device = device
        self._streams: dict[str, Any] = {}
        self._events: dict[str, Any] = {}
        self._torch: Any = None
        if device.startswith("cuda"):
            import torch  # lazy: CPU paths must not import it for this

            if not torch.cuda.is_available():
                from anchorvoice.errors import DeviceError

                raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA GPU (use device='cpu')")
            self._torch = torch
            for name in names:
                self._streams[name] = torch.cuda.Stream(device=device)

    @property
    def enabled(self) -> bool:
        """True when stages really run on separate CUDA streams."""
        return bool(self._streams)

    def use(self, name: str) -> AbstractContextManager[Any]:
        """Context that makes ``name``'s stream current (nullcontext on CPU or for unknown names)."""
        stream = self._streams.get(name)
        if stream is None:
            return nullcontext()
        return self._torch.cuda.stream(stream)  # type: ignore[no-any-return]

    def record(self, name: str) -> None:
        """Mark the work queued so far on ``name``'s stream (for a later ``wait``)."""
        stream = self._streams.get(name)
        if stream is not None:
            event = self._torch.cuda.Event()
            event.record(stream)
            self._events[name] = event

    def wait(self, name: str, before: str) -> None:
        """Make stage ``name``'s stream wait for the last ``record(before)``."""
        stream, event = self._streams.get(name), self._events.get(before)
        if stream is not None and event is not None:
            stream.wait_event(event)

    def synchronize(self) -> None:
        """Block until every stage stream is idle."""
        for stream in self._streams.values():
            stream.synchronize()


