"""Typed config validation: errors name the file, the key and the allowed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from anchorvoice.engine.config import coerce_field, dump_toml, from_dict, load_toml
from anchorvoice.errors import ConfigError


@dataclass
class Inner:
    level: float = 0.5


@dataclass
class Outer:
    name: str
    mode: Literal["a", "b"] = "a"
    count: int = 1
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    limit: float | None = None


def test_valid_mapping_builds_typed_dataclass() -> None:
    cfg = from_dict(Outer, {"name": "x", "mode": "b", "count": 3, "inner": {"level": 1}, "tags": ["t"]})
    assert cfg == Outer("x", "b", 3, Inner(1.0), ["t"])
    assert isinstance(cfg.inner.level, float)


def test_unknown_key_names_file_key_and_allowed_keys() -> None:
    with pytest.raises(ConfigError) as ei:
        from_dict(Outer, {"name": "x", "cuont": 2}, source="configs/x.toml")
    msg = str(ei.value)
    assert "configs/x.toml" in msg and "cuont" in msg and "count" in msg and "mode" in msg


def test_wrong_type_and_literal_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[count\].*integer"):
        from_dict(Outer, {"name": "x", "count": "three"})
    with pytest.raises(ConfigError, match="choose one of 'a', 'b'"):
        from_dict(Outer, {"name": "x", "mode": "c"})
    with pytest.raises(ConfigError, match=r"inner.level"):
        from_dict(Outer, {"name": "x", "inner": {"level": "loud"}})
    with pytest.raises(ConfigError, match="required key"):
        from_dict(Outer, {})
    with pytest.raises(ConfigError, match="true or false|number"):
        from_dict(Inner, {"level": True})


def test_coerce_field_for_live_changes() -> None:
    assert coerce_field(Outer, "limit", 2) == 2.0
    assert coerce_field(Outer, "limit", None) is None
    with pytest.raises(ConfigError, match="unknown parameter 'nope'"):
        coerce_field(Outer, "nope", 1)


def test_toml_round_trip(tmp_path) -> None:
    data = {"name": "v", "n": 2, "f": 0.25, "ok": True, "lst": [1.5, 2.0], "t": {"a-b": {"x": "q\"uote"}}}
    p = tmp_path / "x.toml"
    p.write_text(dump_toml(data))
    assert load_toml(p) == data


def test_broken_toml_names_the_file(tmp_path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[pipeline\nname=")
    with pytest.raises(ConfigError, match="bad.toml.*not valid TOML"):
        load_toml(p)
    with pytest.raises(ConfigError, match="file not found"):
        load_toml(tmp_path / "missing.toml")
