"""Sans-I/O parts of the control API: parsing, validation, origin policy, rate limit, tokens, bus."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from anchorvoice.engine.server import protocol as p
from anchorvoice.engine.server.auth import check_token, load_or_create_token, token_path
from anchorvoice.engine.server.events import EventBus
from anchorvoice.errors import ConfigError, ProtocolError


def test_valid_request_parses_with_defaults() -> None:
    req = p.parse_request('{"id": 7, "method": "status"}')
    assert (req.id, req.method, req.params) == (7, "status", {})
    req = p.parse_request('{"id": "a", "method": "speak", "params": {"text": "hi"}}')
    assert req.params == {"text": "hi"}


@pytest.mark.parametrize(
    ("frame", "code", "req_id"),
    [
        ("{not json", p.PARSE_ERROR, None),
        ('{"id": 1, "method": "x", "params": {"v": NaN}}', p.PARSE_ERROR, None),
        ("[1, 2]", p.INVALID_REQUEST, None),
        ('{"method": "status"}', p.INVALID_REQUEST, None),
        ('{"id": true, "method": "status"}', p.INVALID_REQUEST, None),
        ('{"id": 1.5, "method": "status"}', p.INVALID_REQUEST, None),
        ('{"id": "' + "x" * 200 + '", "method": "status"}', p.INVALID_REQUEST, None),
        ('{"id": 3}', p.INVALID_REQUEST, 3),
        ('{"id": 3, "method": "speak", "params": [1]}', p.INVALID_PARAMS, 3),
        ('{"id": 3, "method": "speak", "extra": 1}', p.INVALID_REQUEST, 3),
        (b'{"id": 1, "method": "status"}', p.INVALID_REQUEST, None),
    ],
)
def test_bad_frames_get_the_right_code_and_id(frame: str | bytes, code: int, req_id: object) -> None:
    with pytest.raises(ProtocolError) as info:
        p.parse_request(frame)
    assert info.value.code == code
    assert p.error_id(info.value) == req_id


def test_param_types_and_ranges() -> None:
    params = {"a": 1, "b": True, "c": "x", "d": float("inf")}
    assert p.param(params, "a", float) == 1.0
    assert p.param(params, "missing", int, default=5) == 5
    with pytest.raises(ProtocolError, match="must be a number"):
        p.param(params, "b", float)  # bools are not numbers on our API
    with pytest.raises(ProtocolError, match="must be finite"):
        p.param(params, "d", float)
    with pytest.raises(ProtocolError, match="out of range"):
        p.param(params, "a", float, lo=2, hi=3)
    with pytest.raises(ProtocolError, match="missing parameter 'z'"):
        p.param(params, "z", str)
    with pytest.raises(ProtocolError, match="unknown parameter 'c'"):
        p.reject_unknown(params, {"a", "b", "d"})


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        (None, True),
        ("http://localhost", True),
        ("http://localhost:3000", True),
        ("https://127.0.0.1:8080", True),
        ("http://[::1]:5000", True),
        ("https://evil.example", False),
        ("http://localhost.evil.example", False),
        ("null", False),
        ("file://", False),
    ],
)
def test_origin_policy(origin: str | None, ok: bool) -> None:
    assert p.origin_allowed(origin) is ok


def test_token_bucket_burst_then_rate() -> None:
    now = [0.0]
    bucket = p.TokenBucket(rate=10, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.1  # one token back at 10/s
    assert bucket.take() and not bucket.take()
    now[0] += 100  # refills only up to the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_messages_are_strict_json() -> None:
    assert json.loads(p.error_message(None, -1, "x")) == {"id": None, "error": {"code": -1, "message": "x"}}
    with pytest.raises(ValueError):
        p.result_message(1, float("nan"))


def test_token_created_once_private_and_reused(tmp_path) -> None:
    token, created = load_or_create_token(tmp_path)
    assert created and len(token) >= 40
    if os.name == "posix":
        assert stat.S_IMODE(token_path(tmp_path).stat().st_mode) == 0o600
    again, created2 = load_or_create_token(tmp_path)
    assert (again, created2) == (token, False)
    assert check_token(token, token) and not check_token(token, token[:-1] + "x")
    assert not check_token(token, None) and check_token(None, "anything")
    token_path(tmp_path).write_text("short")
    with pytest.raises(ConfigError, match="delete it"):
        load_or_create_token(tmp_path)


def test_bus_filters_and_drops_oldest_when_full() -> None:
    async def go() -> None:
        bus = EventBus(queue_size=3)
        levels = bus.subscribe(["levels"])
        speech = bus.subscribe(["speaking.started"])
        for i in range(5):
            bus.publish("levels", {"i": i})
        bus.publish("speaking.started", {"text": "hi"})
        got = [(await levels.get()).data["i"] for _ in range(3)]
        assert got == [2, 3, 4] and levels.dropped == 2
        assert (await speech.get()).data == {"text": "hi"} and speech.pending() == 0
        with pytest.raises(ValueError, match="unknown event 'levles'"):
            bus.subscribe(["levles"])
        bus.unsubscribe(levels)
        bus.publish("levels", {"i": 9})
        assert levels.pending() == 0

    asyncio.run(go())
