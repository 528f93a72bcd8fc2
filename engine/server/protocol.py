"""Sans-I/O core of the control API: parse and validate messages, build replies, rate limit.

Nothing here touches a socket; :mod:`anchorvoice.engine.server.app` feeds text in and sends what comes out.

Wire format (JSON text frames, documented with examples in ``docs/control-api.md``)::

    server -> client on connect   {"hello": {"api": "anchorvoice", "version": API_VERSION, "auth": bool}}
    client -> server request      {"id": 1, "method": "speak", "params": {"text": "hi"}}
    server -> client result       {"id": 1, "result": {...}}
    server -> client error        {"id": 1, "error": {"code": -32602, "message": "..."}}
    server -> client event        {"event": "speaking.started", "data": {...}}  (after "subscribe")

Error codes follow JSON-RPC 2.0 (-32700 .. -32603) where they mean the same thing; the
anchorvoice-specific ones live in the -32000 .. -32099 "server error" range JSON-RPC reserves.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from anchorvoice.errors import ProtocolError

API_NAME = "anchorvoice"
API_VERSION = "1.0"

# JSON-RPC 2.0 section 5.1 codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Implementation-defined server errors (JSON-RPC reserves -32000 .. -32099 for them).
UNAUTHORIZED = -32001
RATE_LIMITED = -32002
ENGINE_ERROR = -32003
NOT_AVAILABLE = -32004

# WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009

MAX_ID_LENGTH = 128
"""Longest string id accepted; ids are echoed back, so an unbounded one would amplify traffic."""


@dataclass(frozen=True)
class Request:
    """One validated request."""

    id: int | str
    """Echoed back in the reply; a JSON integer or a short string."""
    method: str
    """Name in the method table (``anchorvoice.engine.server.methods``)."""
    params: dict[str, Any]
    """Named parameters (an empty dict when the client sent none)."""


def hello_message(auth_required: bool) -> str:
    """The first message on every connection."""
    return encode({"hello": {"api": API_NAME, "version": API_VERSION, "auth": auth_required}})


def encode(obj: dict[str, Any]) -> str:
    """Compact JSON; NaN/inf are refused (not valid JSON for browsers)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def result_message(req_id: int | str | None, result: Any) -> str:
    return encode({"id": req_id, "result": result})


def error_message(req_id: int | str | None, code: int, message: str) -> str:
    return encode({"id": req_id, "error": {"code": code, "message": message}})


def event_message(name: str, data: dict[str, Any]) -> str:
    return encode({"event": name, "data": data})


def _reject_constant(token: str) -> Any:
    raise ProtocolError(f"{token} is not valid JSON; send finite numbers", PARSE_ERROR)


def parse_request(text: str | bytes) -> Request:
    """Validate one incoming frame into a :class:`Request` or raise :class:`ProtocolError`.

    When the frame carried a usable id, the error's ``req_id`` attribute holds it so the reply
    can be matched by the client; otherwise the reply goes out with ``"id": null``.
    """
    if isinstance(text, bytes):
        raise ProtocolError("binary frames are not accepted; send JSON as a text frame", INVALID_REQUEST)
    try:
        msg = json.loads(text, parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed JSON: {exc}", PARSE_ERROR) from None
    if not isinstance(msg, dict):
        raise ProtocolError('a request must be a JSON object {"id", "method", "params"}', INVALID_REQUEST)
    req_id = msg.get("id")
    id_ok = (isinstance(req_id, int) and not isinstance(req_id, bool)) or (
        isinstance(req_id, str) and 0 < len(req_id) <= MAX_ID_LENGTH
    )
    if not id_ok:
        what = "missing" if req_id is None else f"invalid ({type(req_id).__name__})"
        raise ProtocolError(
            f'request "id" is {what}: use an integer or a string of 1..{MAX_ID_LENGTH} characters',
            INVALID_REQUEST,
        )
    req_id = cast(int | str, req_id)
    method = msg.get("method")
    if not isinstance(method, str) or not method:
        raise _with_id(ProtocolError('request "method" must be a non-empty string', INVALID_REQUEST), req_id)
    params = msg.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _with_id(
            ProtocolError('"params" must be a JSON object of named parameters', INVALID_PARAMS), req_id
        )
    unknown = sorted(set(msg) - {"id", "method", "params"})
    if unknown:
        raise _with_id(
            ProtocolError(f"unknown key {unknown[0]!r}; allowed: id, method, params", INVALID_REQUEST),
            req_id,
        )
    return Request(req_id, method, params)


class RequestError(ProtocolError):
    """A ProtocolError about a request whose id is known, so the reply can carry it."""

    def __init__(self, message: str, code: int, req_id: int | str) -> None:
        super().__init__(message, code)
        self.req_id = req_id


def _with_id(exc: ProtocolError, req_id: int | str) -> RequestError:
    return RequestError(str(exc), exc.code, req_id)


def error_id(exc: ProtocolError) -> int | str | None:
    """The request id a parse error belongs to (None when the frame had none)."""
    return exc.req_id if isinstance(exc, RequestError) else None


# -- parameter validation ------------------------------------------------------------------------
_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number", list: "a list",
               dict: "an object"}


def param(params: dict[str, Any], key: str, tp: type, *, default: Any = ..., lo: float | None = None,
          hi: float | None = None) -> Any:
    """Read one named parameter of type ``tp`` (with bounds for numbers) or raise INVALID_PARAMS."""
    if key not in params:
        if default is ...:
            raise ProtocolError(f"missing parameter {key!r}", INVALID_PARAMS)
        return default
    value = params[key]
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ProtocolError(
            f"parameter {key!r} must be {_TYPE_NAMES.get(tp, tp.__name__)}, got {json.dumps(value)[:60]}",
            INVALID_PARAMS,
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError(f"parameter {key!r} must be finite", INVALID_PARAMS)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ProtocolError(f"parameter {key!r}={value} is out of range [{lo}, {hi}]", INVALID_PARAMS)
    return value


def reject_unknown(params: dict[str, Any], allowed: set[str]) -> None:
    """Typos in parameter names are errors, not silently ignored settings."""
    extra = sorted(set(params) - allowed)
    if extra:
        raise ProtocolError(
            f"unknown parameter {extra[0]!r}; allowed: {', '.join(sorted(allowed)) or '(none)'}",
            INVALID_PARAMS,
        )


# -- connection policy ---------------------------------------------------------------------------
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback_host(host: str) -> bool:
    """True for an address only this machine can reach (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may well be reachable from the network


def origin_allowed(origin: str | None) -> bool:
    """Browsers send ``Origin``; only pages served from this machine may drive the engine.

    No header (a script, a stream deck, a chat bot) is allowed: it is not a browser page that a
    foreign web site could have opened (the cross-site WebSocket hijacking case).
    """
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOCAL_HOSTS


class TokenBucket:
    """Per-connection rate limit: ``rate`` requests/s sustained, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate limit needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Spend one token; False when the client is over its limit."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
