"""Stand-ins for the official GPT-SoVITS checkout's training-only imports, for same-run timings."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any


def stub_module(name: str, force: bool = False, **attrs: Any) -> None:
    """Register an empty module ``name`` (with ``attrs``) unless the real one imports (or ``force``)."""
    try:
        if force:
            raise ImportError(name)
        __import__(name)
    except ImportError:
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
