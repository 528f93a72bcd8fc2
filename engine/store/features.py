"""Features computed once from a voice's references (its prompt tokens, its timbre vector), kept on disk.

A cold switch to a voice (its pipeline not loaded) would otherwise re-run the feature extractor and
tokenizer on the reference, and the decoder's reference encoder, every time. The results are stored in
``<voice folder>/cache/<key>.npz`` (plain arrays, read with ``allow_pickle=False``), where ``key`` hashes
everything they depend on (the clips' content, the text, the stage names and settings, the model
files), so a new version, another preset or another model never reads a stale entry. Writing is best
effort: a read-only home only loses the speed-up.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anchorvoice.engine.store.files import atomic_write_bytes

log = logging.getLogger(__name__)

CACHE_DIR = "cache"


def file_identity(path: Path) -> str:
    """Names a file's content cheaply: content-named files (blobs, ``refs/<hash>.wav``) by name, others by
    name, size and modification time."""
    try:
        st = path.stat()
    except OSError:
        return str(path)
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def feature_key(*parts: Any) -> str:
    """A stable hash of ``parts`` (JSON-able; paths and other objects by their ``str``)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


class FeatureCache:
    """The feature cache of one voice folder."""

    def __init__(self, folder: Path) -> None:
        self.root = Path(folder) / CACHE_DIR
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        p = self.root / f"{key}.npz"
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            log.warning("feature cache %s unreadable (%s); computing again", p, exc)
            return None

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds after allow_pickle
        try:
            atomic_write_bytes(self.root / f"{key}.npz", buf.getvalue())
        except OSError as exc:
            log.warning("cannot keep features in %s (%s); they will be computed again next time", self.root, exc)

    def get_or_compute(self, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        got = self.get(key)
        if got is not None:
            self.hits += 1
            return got
        self.misses += 1
        arrays = compute()
        self.put(key, arrays)
        return arrays
