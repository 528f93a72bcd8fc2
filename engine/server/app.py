"""WebSocket glue for the control API (``websockets`` asyncio server).

Per connection: Origin and token checks at the HTTP handshake (403 / 401), a hello, then one
request at a time in arrival order (replies keep the order requests came in). Limits:
``max_message_bytes`` (larger frames close the connection with 1009, done by websockets),
a token-bucket rate limit (over-limit requests are answered with RATE_LIMITED, never dropped
silently), and bounded drop-oldest event queues (:mod:`anchorvoice.engine.server.events`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from anchorvoice.engine.events import check_event_names
from anchorvoice.engine.server import protocol as p
from anchorvoice.engine.server.auth import check_token
from anchorvoice.engine.server.events import Subscription
from anchorvoice.engine.server.methods import METHODS, Controller
from anchorvoice.errors import AnchorVoiceError, ConfigError, ProtocolError

log = logging.getLogger("anchorvoice.server")


@dataclass
class ServerConfig:
    """Control server settings (``[server]`` in configs/server.toml)."""

    host: str = "127.0.0.1"
    """Interface to listen on; keep loopback unless you know who can reach the port."""
    port: int = 8765
    """TCP port (0: pick a free one, as tests do)."""
    max_message_bytes: int = 64 * 1024
    """Largest accepted frame; requests are small, 64 KiB leaves room for long texts."""
    rate: float = 20.0
    """Sustained requests per second per connection."""
    burst: int = 40
    """Requests a connection may send at once before the rate applies."""
    auth: bool = True
    """Require the access token (query ``?token=`` or a first ``auth`` request)."""
    event_queue: int = 256
    """Events buffered per subscriber before the oldest are dropped."""


@dataclass
class _Conn:
    authed: bool
    bucket: p.TokenBucket
    sub: Subscription | None = None
    sender: asyncio.Task[None] | None = None
    close: tuple[int, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _query_token(path: str) -> str | None:
    values = parse_qs(urlsplit(path).query).get("token")
    return values[0] if values else None


class ControlServer:
    """Serves one :class:`Controller` to many clients."""

    def __init__(self, controller: Controller, config: ServerConfig | None = None, token: str | None = None):
        self.controller = controller
        self.config = config or ServerConfig()
        self.token = token if self.config.auth else None
        if self.config.auth and not token:
            raise ConfigError("the control server needs an access token when auth is on", key="server.auth")
        self._server: Server | None = None
        self.port: int | None = None
        self.connections = 0

    async def start(self) -> None:
        """Start the controller and listen; a port that cannot be had is a ConfigError saying what to do."""
        await self.controller.start()
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._process_request,
                max_size=self.config.max_message_bytes,
                compression=None,  # tiny JSON frames; deflate costs CPU and memory per client
            )
        except (OSError, OverflowError) as exc:
            await self.controller.close()
            raise ConfigError(_bind_error(self.config.host, self.config.port, exc)) from None
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])
        log.info("control API on ws://%s:%d", self.config.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.controller.close()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # -- handshake -----------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if not p.origin_allowed(origin):
            return _http(HTTPStatus.FORBIDDEN, f"Origin {origin} may not use this API (only localhost pages)")
        given = _query_token(request.path)
        if given is not None and not check_token(self.token, given):
            return _http(HTTPStatus.UNAUTHORIZED, "wrong token (see `anchorvoice serve` output for yours)")
        return None

    # -- connection ----------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        given = _query_token(ws.request.path) if ws.request is not None else None
        conn = _Conn(
            authed=self.token is None or (given is not None and check_token(self.token, given)),
            bucket=p.TokenBucket(self.config.rate, self.config.burst),
        )
        self.connections += 1
        try:
            await ws.send(p.hello_message(auth_required=not conn.authed))
            async for frame in ws:
                reply = await self._dispatch(conn, ws, frame)
                await ws.send(reply)
                if conn.close is not None:
                    await ws.close(*conn.close)
                    break
        except ConnectionClosed:
            pass  # the client left; work it asked for has already been handed to the controller
        finally:
            self.connections -= 1
            if conn.sender is not None:
                conn.sender.cancel()
            if conn.sub is not None:
                self.controller.bus.unsubscribe(conn.sub)

    async def _dispatch(self, conn: _Conn, ws: ServerConnection, frame: str | bytes) -> str:
        req_id: int | str | None = None
        allowed = conn.bucket.take()  # malformed frames count against the limit too
        try:
            req = p.parse_request(frame)
            req_id = req.id
            if not allowed:
                raise ProtocolError(
                    f"rate limit: at most {self.config.rate:g} requests/s (bursts of {self.config.burst}); "
                    "slow down and retry",
                    p.RATE_LIMITED,
                )
            if req.method == "auth":
                return self._auth(conn, req)
            if not conn.authed:
                raise ProtocolError('not authenticated: send {"method": "auth", "params": {"token": ...}} '
                                    "first, or connect with ?token=", p.UNAUTHORIZED)
            if req.method == "subscribe":
                return p.result_message(req.id, self._subscribe(conn, ws, req.params))
            if req.method == "unsubscribe":
                return p.result_message(req.id, self._unsubscribe(conn, req.params))
            handler = METHODS.get(req.method)
            if handler is None:
                known = ", ".join(sorted([*METHODS, "auth", "subscribe", "unsubscribe"]))
                raise ProtocolError(f"unknown method {req.method!r}; methods: {known}", p.METHOD_NOT_FOUND)
            return p.result_message(req.id, await handler(self.controller, req.params))
        except ProtocolError as exc:
            if req_id is None:
                req_id = p.error_id(exc)
            return p.error_message(req_id, exc.code, str(exc))
        except ConfigError as exc:
            return p.error_message(req_id, p.INVALID_PARAMS, str(exc))
        except AnchorVoiceError as exc:
            return p.error_message(req_id, p.ENGINE_ERROR, str(exc))
        except Exception as exc:
            log.exception("method failed")
            return p.error_message(req_id, p.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")

    def _auth(self, conn: _Conn, req: p.Request) -> str:
        p.reject_unknown(req.params, {"token"})
        token = p.param(req.params, "token", str)
        if check_token(self.token, token):
            conn.authed = True
            return p.result_message(req.id, {"authenticated": True})
        conn.close = (p.CLOSE_POLICY_VIOLATION, "wrong token")
        return p.error_message(req.id, p.UNAUTHORIZED, "wrong token (`anchorvoice serve` prints yours)")

    def _subscribe(self, conn: _Conn, ws: ServerConnection, params: dict[str, Any]) -> Any:
        p.reject_unknown(params, {"events"})
        names = _event_names(params)
        try:
            check_event_names(names)
        except ValueError as exc:
            raise ProtocolError(str(exc), p.INVALID_PARAMS) from None
        if conn.sub is None:
            conn.sub = self.controller.bus.subscribe(names)
            conn.sender = asyncio.get_running_loop().create_task(self._send_events(ws, conn.sub))
        else:
            added = set(names) - conn.sub.names
            conn.sub.names |= added
            self.controller.bus.replay_to(conn.sub, added)
        return {"events": sorted(conn.sub.names)}

    def _unsubscribe(self, conn: _Conn, params: dict[str, Any]) -> Any:
        p.reject_unknown(params, {"events"})
        if conn.sub is None:
            return {"events": []}
        if "events" in params:
            conn.sub.names -= set(_event_names(params))
        else:
            conn.sub.names.clear()
        return {"events": sorted(conn.sub.names)}

    async def _send_events(self, ws: ServerConnection, sub: Subscription) -> None:
        try:
            while True:
                ev = await sub.get()
                await ws.send(p.event_message(ev.name, ev.data))
        except ConnectionClosed:
            pass


def _event_names(params: dict[str, Any]) -> list[str]:
    names = p.param(params, "events", list)
    if not names or not all(isinstance(n, str) for n in names):
        raise ProtocolError("'events' must be a non-empty list of event names", p.INVALID_PARAMS)
    return names


def _bind_error(host: str, port: int, exc: BaseException) -> str:
    """What went wrong listening on ``host``:``port`` and what to do about it."""
    where = f"{host}:{port}"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use: is another `anchorvoice serve` running (stop it, or "
                f"connect to it)? Otherwise pick a free port with --port (0: any free one)")
    if isinstance(exc, OSError) and exc.errno == errno.EACCES:
        return f"not allowed to listen on {where}: ports below 1024 need privileges; pick one with --port"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host!r} is not an address of this machine; check --host"
    return f"cannot listen on {where}: {exc}; check --host and --port"


def _http(status: HTTPStatus, text: str) -> Response:
    body = (text + "\n").encode()
    headers = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)
