"""Model-agnostic safe loading of weight files: a ``torch.save(state_dict)`` file, and key checks.

Loading goes through :mod:`anchorvoice.engine.checkpoint_unpickler` (no pickled code runs). What a
particular model family's files hold (containers, versions, key names) is its plugin's business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from anchorvoice.engine.checkpoint_unpickler import load_pickled
from anchorvoice.errors import CorruptCheckpointError

M = TypeVar("M", bound=torch.nn.Module)


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


def build_unset(factory: Callable[[], M]) -> M:
    """``factory()`` built on the ``meta`` device: shapes and dtypes, no memory, no random initialisation.

    For a model whose every parameter and buffer a checkpoint is about to provide (then load it with
    :func:`load_assigned`): the initialisers that module constructors run (``kaiming_uniform_`` and
    the like) are most of the time of building a large model, only to be overwritten."""
    with torch.device("meta"):
        return factory()


def load_assigned(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str = "checkpoint") -> None:
    """Strict ``load_state_dict(assign=True)`` into a :func:`build_unset` model.

    Each tensor is copied to the dtype the model declares for it (float16 files -> float32, exactly as
    ``load_state_dict`` copies into an initialised model), so the model never shares memory with the
    caller's tensors. Entries the model does not name (weight-norm pairs that a module folds on load)
    are floating tensors made float32. A parameter or buffer the state dict did not give would stay on
    the ``meta`` device: that is refused, naming it."""
    own = model.state_dict(keep_vars=True)
    converted = {}
    for key, value in state.items():
        target = own[key].dtype if key in own else torch.float32 if value.is_floating_point() else value.dtype
        converted[key] = value.to(target, copy=True)
    model.load_state_dict(converted, strict=True, assign=True)
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise CorruptCheckpointError(
            f"{what}: the model still lacks {', '.join(left[:8])} after loading; is it the right kind of model file?"
        )
