"""Content-addressed blobs: stored once, verified, composed from deltas, collected when unused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorvoice.engine.store.blobs import BlobStore, blob_shapes, read_blob, read_meta, replace_delta
from anchorvoice.errors import CorruptCheckpointError


def _weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(8, 4, generator=g).half(), "b.bias": torch.randn(8, generator=g)}


def test_same_content_is_stored_once_with_its_config(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    meta = {"kind": "sovits", "config": {"model": {"hidden": 4}}, "version": "v2"}
    one = store.put(_weights(), meta)
    two = store.put(_weights(), dict(reversed(meta.items())))  # same content, keys in another order
    assert one == two and store.shas() == [one]
    tensors, got = read_blob(store.path(one))
    assert got["config"] == {"model": {"hidden": 4}} and got["kind"] == "sovits"
    assert all(torch.equal(tensors[k], v) and tensors[k].dtype == v.dtype for k, v in _weights().items())
    assert (store.root / f"{one}.json").is_file()  # the config beside, for people and tools
    assert store.put(_weights(1), meta) != one


def test_damaged_blob_is_refused_named_and_marked(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    sha = store.put(_weights(), {"kind": "gpt"})
    p = store.path(sha)
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=sha[:12]):
        read_blob(p)
    assert store.is_broken(sha)
    assert "hash" in store.verify(sha)


def test_missing_blob_says_how_to_recover(tmp_path: Path) -> None:
    with pytest.raises(CorruptCheckpointError, match="missing.*--replace"):
        read_blob(tmp_path / "blobs" / ("0" * 64))


def test_replace_delta_reproduces_the_fine_tune_exactly(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    base = _weights()
    tuned = dict(base, **{"b.bias": base["b.bias"] + 0.5})
    base_sha = store.put(base, {"kind": "sovits", "config": {"x": 1}})
    part = replace_delta(base, tuned)
    assert list(part) == ["b.bias"]  # only what the fine-tune changed is stored
    d = store.put_delta(base_sha, part, meta={"info": "tuned"})
    got, meta = read_blob(store.path(d))
    assert all(torch.equal(got[k], tuned[k]) for k in tuned)
    assert meta["config"] == {"x": 1} and meta["info"] == "tuned" and meta["kind"] == "sovits"


def test_lora_and_add_deltas_compose_onto_the_base(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    base = {"w": torch.zeros(6, 4), "c": torch.ones(3)}
    base_sha = store.put(base, {"kind": "gpt"})
    a, b = torch.randn(2, 4), torch.randn(6, 2)
    lora = store.put_delta(base_sha, {"w.lora_A": a, "w.lora_B": b}, fmt="lora", scale=0.5)
    got, _ = read_blob(store.path(lora))
    assert torch.allclose(got["w"], 0.5 * (b @ a)) and torch.equal(got["c"], base["c"])
    add = store.put_delta(base_sha, {"c": torch.full((3,), 2.0)}, fmt="add")
    assert torch.equal(read_blob(store.path(add))[0]["c"], torch.full((3,), 3.0))
    # a plain tensor in a LoRA blob replaces the base's (a weight-normed layer's new norms)
    mixed = store.put_delta(base_sha, {"w.lora_A": a, "w.lora_B": b, "c": torch.full((3,), 7.0)}, fmt="lora")
    got, _ = read_blob(store.path(mixed))
    assert torch.allclose(got["w"], b @ a) and torch.equal(got["c"], torch.full((3,), 7.0))
    bad = store.put_delta(base_sha, {"w.lora_A": a, "w.lora_B": b, "c": torch.ones(4)}, fmt="lora")
    with pytest.raises(CorruptCheckpointError, match="c does not match"):
        read_blob(store.path(bad))


def test_gc_keeps_referenced_blobs_and_the_bases_of_their_deltas(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    base = store.put(_weights(), {"kind": "sovits"})
    delta = store.put_delta(base, {"b.bias": torch.zeros(8)})
    orphan = store.put(_weights(2), {"kind": "gpt"})
    removed = store.gc({delta})
    assert [b.sha for b in removed] == [orphan]
    assert set(store.shas()) == {base, delta}
    assert read_meta(store.path(delta))["delta"]["base"] == base


def test_shapes_come_from_the_headers_through_a_delta(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    base = {"emb": torch.zeros(732, 4, dtype=torch.float16), "w": torch.ones(3, 5)}
    base_sha = store.put(base, {"kind": "sovits"})
    d = store.put_delta(base_sha, {"w": torch.full((3, 5), 2.0)})
    assert blob_shapes(store.path(d)) == {k: tuple(v.shape) for k, v in read_blob(store.path(d))[0].items()}
    assert blob_shapes(store.path(d))["emb"] == (732, 4)
