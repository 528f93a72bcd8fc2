"""Content-addressed model blobs: ``<home>/blobs/<sha256>`` holds one model's weights as safetensors.

A blob is self-describing: its safetensors header carries one metadata entry, ``anchorvoice``, a
JSON object with at least ``kind`` (e.g. ``"sovits"``) and whatever the plugin that imported it needs
to rebuild the model (its training ``config``, ``version``, ``info``). The file's name is the SHA-256
of its bytes, so the same base used by fifty voices is stored once, a blob never changes after it is
written, and ``verify`` re-hashes it. ``<sha256>.json`` beside it repeats the metadata for people and
tools (it is never needed to load). Loading a blob runs no pickle: safetensors holds only tensors.

A **delta blob** holds what one voice changed on a shared base; its metadata has
``delta = {"base": "<sha256 of the base blob>", "format": ..., "scale": ...}`` and loading composes:

* ``"replace"``: the tensors it holds replace the base's tensors of the same name (exact: a
  fine-tune stored this way gives the fine-tuned file's outputs bit for bit).
* ``"add"``: ``W = base + delta`` (computed in float32, cast back to the base tensor's dtype).
* ``"lora"``: for each ``<key>.lora_A`` (r, in) and ``<key>.lora_B`` (out, r),
  ``W = base + scale * (B @ A)`` reshaped to the base tensor (convolution kernels flattened to (out, in*k));
  a tensor under a plain key replaces the base's (e.g. the per-row norms of a weight-normed layer whose
  direction the pair moves).

The base's ``kind`` and other metadata carry through; the delta's own metadata (except ``delta``)
overrides them.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from anchorvoice.engine.store.files import atomic_write_text, sha256_file, temp_sibling
from anchorvoice.errors import CorruptCheckpointError

log = logging.getLogger(__name__)

META_KEY = "anchorvoice"
"""The one safetensors metadata entry a blob carries (one key, so the header bytes are deterministic)."""
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
REF_PREFIX = "sha256:"
"""How a voice manifest refers to a blob: ``models.sovits = "sha256:<hex>"``."""
DELTA_FORMATS = ("replace", "add", "lora")
_MAX_HEADER = 100 * 1024 * 1024

_verified: set[tuple[str, int, int]] = set()
"""(path, size, mtime_ns) of blobs whose hash matched in this process (a blob never changes once written)."""


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob as ``voices verify`` / ``gc`` see it."""

    sha: str
    """Its SHA-256 (the file name)."""
    kind: str
    """The ``kind`` its metadata names (``sovits``, ``gpt``, ``hubert``, ...)."""
    size: int
    """Bytes on disk."""
    base: str = ""
    """For a delta blob: the SHA-256 of the base it applies to."""


def blob_ref(sha: str) -> str:
    """The manifest's way to name a blob."""
    return REF_PREFIX + sha


def parse_ref(value: str) -> str | None:
    """The SHA-256 in a manifest value ``sha256:<hex>``, or None for anything else (a plain path)."""
    if value.startswith(REF_PREFIX) and SHA_RE.match(value[len(REF_PREFIX):]):
        return value[len(REF_PREFIX):]
    return None


def is_blob_file(path: Path) -> bool:
    """True when ``path`` is a safetensors file (an 8-byte little-endian header length, then ``{``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 0 < n <= min(size - 8, _MAX_HEADER)


def _header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (raises OSError / ValueError / struct.error when unreadable)."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > _MAX_HEADER:
            raise ValueError(f"header of {n} bytes")
        header = json.loads(fh.read(n))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header


def read_meta(path: Path) -> dict[str, Any]:
    """A blob's metadata from its header alone (no tensor is read)."""
    try:
        meta = json.loads(_header(path).get("__metadata__", {}).get(META_KEY, "{}"))
    except (OSError, ValueError, struct.error, AttributeError) as exc:
        raise CorruptCheckpointError(f"blob {path}: unreadable safetensors header ({exc}); run "
                                     "`anchorvoice voices verify` and re-import the model") from exc
    if not isinstance(meta, dict):
        raise CorruptCheckpointError(f"blob {path}: metadata is not an object; re-import the model")
    return meta


def blob_shapes(path: Path, _depth: int = 0) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a blob (a delta's composed onto its base's), from the headers alone."""
    try:
        shapes = {k: tuple(int(x) for x in v["shape"]) for k, v in _header(path).items() if k != "__metadata__"}
    except (OSError, ValueError, struct.error, AttributeError, KeyError, TypeError) as exc:
        raise CorruptCheckpointError(f"blob {path}: unreadable safetensors header ({exc}); run "
                                     "`anchorvoice voices verify` and re-import the model") from exc
    delta = read_meta(path).get("delta")
    if isinstance(delta, dict) and SHA_RE.match(str(delta.get("base", ""))) and _depth < 4:
        return {**blob_shapes(path.parent / str(delta["base"]), _depth + 1), **shapes}
    return shapes


def broken_marker(path: Path) -> Path:
    """The file that marks a blob whose bytes no longer match its name."""
    return path.with_name(path.name + ".broken")


def check_hash(path: Path) -> None:
    """Refuse a content-addressed blob whose bytes no longer match its name (marks it broken)."""
    if not SHA_RE.match(path.name):
        return  # not content-addressed (a safetensors file given by path): nothing to compare
    st = path.stat()
    stamp = (str(path), st.st_size, st.st_mtime_ns)
    if stamp in _verified:
        return
    actual = sha256_file(path)
    if actual != path.name:
        try:
            atomic_write_text(broken_marker(path), f"sha256 of the bytes: {actual}\n")
        except OSError:
            pass
        raise CorruptCheckpointError(
            f"model blob {path} is damaged: its bytes hash to {actual[:12]}..., not {path.name[:12]}... "
            "(disk error or edited file); the voices using it are broken until you re-import the model "
            "(`anchorvoice voices add NAME --replace ...`); run `anchorvoice voices verify` to list them"
        )
    broken_marker(path).unlink(missing_ok=True)
    _verified.add(stamp)


def _compose(base: dict[str, torch.Tensor], part: Mapping[str, torch.Tensor], fmt: str, scale: float,
             path: Path) -> dict[str, torch.Tensor]:
    out = dict(base)
    if fmt == "replace":
        for k, v in part.items():
            out[k] = v
        return out
    if fmt == "add":
        for k, v in part.items():
            if k not in base or base[k].shape != v.shape:
                raise CorruptCheckpointError(f"delta blob {path}: {k} does not match the base model's tensor")
            out[k] = (base[k].float() + v.float()).to(base[k].dtype)
        return out
    if fmt == "lora":
        for k, v in part.items():
            if k.endswith((".lora_A", ".lora_B")):
                continue
            if k not in base or base[k].shape != v.shape:
                raise CorruptCheckpointError(f"LoRA blob {path}: {k} does not match the base model's tensor")
            out[k] = v.to(base[k].dtype)
        for ka, a in part.items():
            if not ka.endswith(".lora_A"):
                continue
            key = ka.removesuffix(".lora_A")
            b = part.get(key + ".lora_B")
            if b is None or key not in base:
                raise CorruptCheckpointError(f"LoRA blob {path}: {ka} has no {key}.lora_B or no base tensor {key}")
            w = base[key]
            upd = (b.float() @ a.float()) * scale  # (out, r) @ (r, in) -> (out, in)
            if upd.numel() != w.numel():
                raise CorruptCheckpointError(f"LoRA blob {path}: {key} update {tuple(upd.shape)} does not fit "
                                             f"the base tensor {tuple(w.shape)}")
            out[key] = (w.float() + upd.reshape(w.shape)).to(w.dtype)
        return out
    raise CorruptCheckpointError(f"delta blob {path}: unknown format {fmt!r} (known: {', '.join(DELTA_FORMATS)})")


def read_blob(
    path: str | Path, *, verify: bool = True, _depth: int = 0
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a blob, deltas composed onto their base. No pickle runs.

    ``verify`` re-hashes a content-addressed blob the first time this process reads it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise CorruptCheckpointError(f"model blob {p} is missing (deleted by hand, or a `gc` of another home?); "
                                     "re-import the model with `anchorvoice voices add NAME --replace ...`")
    if verify:
        check_hash(p)
    meta = read_meta(p)
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise CorruptCheckpointError(f"model blob {p}: damaged safetensors file ({exc})") from exc
    delta = meta.get("delta")
    if not delta:
        return tensors, meta
    if _depth > 4 or not isinstance(delta, dict):
        raise CorruptCheckpointError(f"delta blob {p}: its chain of bases is longer than 4 or malformed")
    base_sha = str(delta.get("base", ""))
    if not SHA_RE.match(base_sha):
        raise CorruptCheckpointError(f"delta blob {p}: names no valid base blob")
    base, base_meta = read_blob(p.parent / base_sha, verify=verify, _depth=_depth + 1)
    composed = _compose(base, tensors, str(delta.get("format", "replace")), float(delta.get("scale", 1.0)), p)
    merged = {**base_meta, **{k: v for k, v in meta.items() if k != "delta"}}
    return composed, merged


def replace_delta(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of ``tuned`` that differ from ``base`` (a ``"replace"`` delta; exact by construction)."""
    extra = set(base) ^ set(tuned)
    if extra:
        raise CorruptCheckpointError(f"the fine-tuned model and its base have different tensors "
                                     f"({sorted(extra)[:5]}); is it a fine-tune of this base?")
    return {k: v for k, v in tuned.items() if v.dtype != base[k].dtype or not torch.equal(v, base[k])}


class BlobStore:
    """The blobs under ``<home>/blobs``. Writers should hold :func:`~.files.home_lock`."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "blobs"

    def path(self, sha: str) -> Path:
        if not SHA_RE.match(sha):
            raise CorruptCheckpointError(f"{sha!r} is not a SHA-256 blob name")
        return self.root / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def put(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> str:
        """Store ``tensors`` with ``meta`` (needs ``kind``); returns the SHA-256. The same content twice is
        stored once."""
        from safetensors.torch import save_file

        if "kind" not in meta:
            raise ValueError("blob metadata needs a 'kind'")
        self.root.mkdir(parents=True, exist_ok=True)
        plain = {k: v.detach().contiguous().clone() if _shares_memory(v, tensors) else v.detach().contiguous()
                 for k, v in tensors.items()}
        tmp = temp_sibling(self.root / "incoming")
        try:
            save_file(plain, str(tmp), metadata={META_KEY: json.dumps(dict(meta), sort_keys=True)})
            sha = sha256_file(tmp)
            final = self.root / sha
            if final.is_file():
                tmp.unlink()
            else:
                tmp.replace(final)
            side = {**dict(meta), "tensors": len(plain), "bytes": final.stat().st_size}
            atomic_write_text(final.with_name(sha + ".json"), json.dumps(side, indent=1, sort_keys=True))
        finally:
            tmp.unlink(missing_ok=True)
        return sha

    def put_delta(self, base_sha: str, tensors: Mapping[str, torch.Tensor], *, fmt: str = "replace",
                  scale: float = 1.0, meta: Mapping[str, Any] | None = None) -> str:
        """Store a per-voice delta on the stored base ``base_sha`` (see the module docstring)."""
        if fmt not in DELTA_FORMATS:
            raise ValueError(f"delta format {fmt!r}; use one of {', '.join(DELTA_FORMATS)}")
        base_meta = read_meta(self.path(base_sha))
        info = {"kind": base_meta.get("kind", ""), **dict(meta or {}),
                "delta": {"base": base_sha, "format": fmt, "scale": scale}}
        return self.put(tensors, info)

    def shas(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if SHA_RE.match(p.name))

    def info(self, sha: str) -> BlobInfo:
        p = self.path(sha)
        meta = read_meta(p)
        delta = meta.get("delta") if isinstance(meta.get("delta"), dict) else {}
        return BlobInfo(sha, str(meta.get("kind", "")), p.stat().st_size, str((delta or {}).get("base", "")))

    def closure(self, shas: Iterable[str]) -> set[str]:
        """``shas`` and every base they depend on (through delta blobs)."""
        todo, seen = list(shas), set()
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            if self.exists(s):
                try:
                    base = self.info(s).base
                except CorruptCheckpointError:
                    continue
                if base:
                    todo.append(base)
        return seen

    def verify(self, sha: str) -> str:
        """"" when the blob's bytes hash to its name, else what is wrong (the blob is marked broken)."""
        p = self.path(sha)
        if not p.is_file():
            return "missing"
        _verified.discard((str(p), p.stat().st_size, p.stat().st_mtime_ns))
        try:
            check_hash(p)
        except CorruptCheckpointError as exc:
            return str(exc)
        return ""

    def is_broken(self, sha: str) -> bool:
        p = self.path(sha)
        return not p.is_file() or broken_marker(p).is_file()

    def gc(self, referenced: Iterable[str]) -> list[BlobInfo]:
        """Delete the blobs that no voice version references (directly or as a delta's base)."""
        keep = self.closure(referenced)
        removed = []
        for sha in self.shas():
            if sha in keep:
                continue
            p = self.path(sha)
            try:
                removed.append(self.info(sha))
            except CorruptCheckpointError:
                removed.append(BlobInfo(sha, "?", p.stat().st_size))
            p.unlink(missing_ok=True)
            p.with_name(sha + ".json").unlink(missing_ok=True)
            broken_marker(p).unlink(missing_ok=True)
        for stray in self.root.glob(".incoming.tmp-*") if self.root.is_dir() else []:
            stray.unlink(missing_ok=True)  # left by a process killed while importing
        return removed


def _shares_memory(t: torch.Tensor, all_tensors: Mapping[str, torch.Tensor]) -> bool:
    """safetensors refuses tensors that share storage (tied weights); those are copied first."""
    ptr = t.untyped_storage().data_ptr()
    return sum(1 for v in all_tensors.values() if v.untyped_storage().data_ptr() == ptr) > 1 or \
        t.numel() * t.element_size() != t.untyped_storage().nbytes()
