"""Model-agnostic safe loading of weight files: a ``torch.save(state_dict)`` file, and key checks.

Loading goes through :mod:`anchorvoice.engine.checkpoint_unpickler` (no pickled code runs). What a
particular model family's files hold (containers, versions, key names) is its plugin's business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.errors import CorruptCheckpointError


def tensor_dict(obj: Any, path: Path, what: str) -> dict[str, torch.Tensor]:
    """``obj`` as a non-empty ``{str: Tensor}`` dict, or :class:`CorruptCheckpointError` naming ``path``."""
    if not isinstance(obj, dict) or not obj:
        raise CorruptCheckpointError(f"{path}: '{what}' is not a non-empty state_dict; not a {what} file")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CorruptCheckpointError(f"{path}: '{what}' holds non-tensor entries: {bad[:5]}")
    return dict(obj)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain ``torch.save(state_dict)`` file, loaded safely."""
    p = Path(path)
    obj, _ = load_pickled(p)
    return tensor_dict(obj, p, "state_dict")


def check_keys(expected: set[str], got: set[str], what: str = "checkpoint") -> None:
    """Raise :class:`CorruptCheckpointError` listing missing and unexpected keys, if any."""
    missing, extra = sorted(expected - got), sorted(got - expected)
    if not missing and not extra:
        return

    def show(keys: list[str]) -> str:
        head = ", ".join(keys[:12])
        return head + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {show(missing)}")
    if extra:
        parts.append(f"unexpected keys: {show(extra)}")
    raise CorruptCheckpointError(
        f"{what} does not match the model ({'; '.join(parts)}); is it the right kind of model file?"
    )
