"""Atomic file writes and the home's lock, so several processes can share one ``<home>``.

A reader never sees a half-written file: everything is written to a temporary sibling, flushed,
and renamed over the target (``os.replace`` is atomic on POSIX and Windows). Writers of the store
(adding a voice, a new version, ``gc``, ``import``) hold ``<home>/.store.lock`` exclusively.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".store.lock"
_CHUNK = 1 << 20

_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()
_held = threading.local()


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def temp_sibling(path: Path) -> Path:
    """A hidden temporary name beside ``path`` (same file system, so a rename is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")


def atomic_write_bytes(path: Path, data: bytes, tmp: Path | None = None) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    ``tmp`` names the temporary sibling (default :func:`temp_sibling`); it is gone afterwards, also on error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp or temp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _lock_fd(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock_fd(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Hold the home's store lock: blocks until other processes and threads release it; re-entrant
    within one thread (a writer may call another writer)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    key = str(home.resolve())
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(key, threading.RLock())
    with tlock:
        held = _held.__dict__.setdefault("homes", set())
        if key in held:
            yield
            return
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)
                _unlock_fd(fd)
        finally:
            os.close(fd)
