"""Inference-time copies derived from weights (fused, permuted, transformed), kept in step with them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from torch import Tensor

T = TypeVar("T")


class DerivedWeights(Generic[T]):
    """A value built from some weight tensors, rebuilt when any of them changes.

    A change is a new storage (``load_state_dict`` replacing a parameter, ``.to()``) or an in-place
    write (the tensor's version counter; inference tensors have none and never change in place), so
    loading or moving a model can never leave the copy stale.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._value: T | None = None

    def get(self, tensors: Sequence[Tensor], build: Callable[[], T], *extra: Any) -> T:
        """The value for ``tensors`` (and any ``extra`` key parts, e.g. an FFT length); ``build()`` if stale."""
        key = (*extra, *(v for t in tensors for v in (t.data_ptr(), -1 if t.is_inference() else t._version)))
        if self._value is None or self._key != key:
            self._value, self._key = build(), key
        return self._value
