"""obs-websocket v5 client: identify with salted-challenge auth, requests by id, events, reconnect.

Protocol facts (obs-websocket 5.x ``docs/generated/protocol.md``): every message is ``{"op", "d"}``;
op 0 Hello (``rpcVersion``, optional ``authentication`` {challenge, salt}), op 1 Identify
(``rpcVersion``, ``authentication``, ``eventSubscriptions`` bitmask), op 2 Identified
(``negotiatedRpcVersion``), op 3 Reidentify, op 5 Event (``eventType``, ``eventIntent``,
``eventData``), op 6 Request (``requestType``, ``requestId``, ``requestData``), op 7
RequestResponse (``requestStatus`` {result, code, comment}, ``responseData``). The
authentication string is base64(sha256(base64(sha256(password + salt)) + challenge)).
Subprotocol ``obswebsocket.json`` sends text frames, ``obswebsocket.msgpack`` binary ones.
Close code 4009 means the password was wrong, 4010 an RPC version the server cannot speak. The client
ends a session with a normal close frame (1000), so OBS does not log an abnormal 1006 "End of File".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from anchorvoice.errors import BridgeAuthError, BridgeError, BridgeRequestError

log = logging.getLogger("anchorvoice.obs")

RPC_VERSION = 1


class Op:
    """WebSocketOpCode values."""

    HELLO = 0
    IDENTIFY = 1
    IDENTIFIED = 2
    REIDENTIFY = 3
    EVENT = 5
    REQUEST = 6
    REQUEST_RESPONSE = 7


class CloseCode:
    """WebSocketCloseCode values the client reacts to."""

    AUTHENTICATION_FAILED = 4009
    UNSUPPORTED_RPC_VERSION = 4010


class Status:
    """RequestStatus values the bridge reacts to."""

    SUCCESS = 100
    UNKNOWN_REQUEST_TYPE = 204
    RESOURCE_NOT_FOUND = 600
    RESOURCE_ALREADY_EXISTS = 601
    INVALID_RESOURCE_STATE = 604
    """E.g. "The specified input does not support audio" for mute on a text source."""
    INVALID_INPUT_KIND = 605
    """CreateInput with a kind this OBS does not have (a plugin missing, or another platform's kind)."""


class Sub:
    """EventSubscription bits (1 << n); high-volume ones are not part of ALL."""

    NONE = 0
    GENERAL = 1 << 0
    CONFIG = 1 << 1
    SCENES = 1 << 2
    INPUTS = 1 << 3
    TRANSITIONS = 1 << 4
    FILTERS = 1 << 5
    OUTPUTS = 1 << 6
    SCENE_ITEMS = 1 << 7
    MEDIA_INPUTS = 1 << 8
    VENDORS = 1 << 9
    UI = 1 << 10
    ALL = (1 << 11) - 1
    INPUT_VOLUME_METERS = 1 << 16


def auth_string(password: str, salt: str, challenge: str) -> str:
    """base64(sha256(base64(sha256(password + salt)) + challenge)), as the protocol defines."""
    secret = base64.b64encode(hashlib.sha256((password + salt).encode()).digest())
    return base64.b64encode(hashlib.sha256(secret + challenge.encode()).digest()).decode()


@dataclass
class ObsConfig:
    """Connection to obs-websocket (``[obs.connection]`` in configs/server.toml)."""

    url: str = "ws://127.0.0.1:4455"
    """obs-websocket address (OBS: Tools > WebSocket Server Settings)."""
    password: str | None = None
    """Server password; None when authentication is off in OBS."""
    encoding: Literal["json", "msgpack"] = "json"
    """Wire encoding: subprotocol obswebsocket.json or obswebsocket.msgpack."""
    event_subscriptions: int = Sub.GENERAL | Sub.INPUTS | Sub.SCENES
    """EventSubscription bitmask sent in Identify."""
    request_timeout_s: float = 5.0
    """A request without a response after this long fails."""
    reconnect_initial_s: float = 0.5
    """First wait before reconnecting; doubles each failed attempt."""
    reconnect_max_s: float = 30.0
    """Longest wait between reconnect attempts."""


EventHandler = Callable[[str, dict[str, Any]], None]


class ObsClient:
    """One obs-websocket session at a time; ``run()`` keeps it alive across OBS restarts."""

    def __init__(
        self,
        config: ObsConfig,
        on_event: EventHandler | None = None,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        on_down: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.on_connect = on_connect
        self.on_down = on_down
        """Called with the reason whenever a connect attempt fails or a session ends (not on ``close()``)."""
        self.connected = asyncio.Event()
        self.negotiated_rpc: int | None = None
        self.websocket_version: str | None = None
        """obs-websocket's version from Hello (``obsWebSocketVersion``)."""
        self.attempts = 0
        """Connection attempts made by ``run`` (successful or not)."""
        self.last_error: str | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._closing = False

    # -- wire encoding -------------------------------------------------------------------------
    def _encode(self, op: int, d: dict[str, Any]) -> str | bytes:
        msg = {"op": op, "d": d}
        if self.config.encoding == "msgpack":
            return bytes(msgpack.packb(msg, use_bin_type=True))
        return json.dumps(msg)

    def _decode(self, frame: str | bytes) -> dict[str, Any]:
        try:
            msg = msgpack.unpackb(frame, raw=False) if isinstance(frame, bytes) else json.loads(frame)
        except Exception as exc:
            raise BridgeError(f"OBS sent an undecodable message: {exc}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("d"), dict):
            raise BridgeError(f"OBS sent a message without op/d: {str(msg)[:80]}")
        return msg

    # -- one session ---------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open and identify one session. Raises BridgeAuthError (4009) or BridgeError."""
        proto = Subprotocol(f"obswebsocket.{self.config.encoding}")
        try:
            ws = await connect(self.config.url, subprotocols=[proto], compression=None, open_timeout=5,
                               max_size=16 * 2**20)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise BridgeError(f"cannot reach OBS at {self.config.url} ({exc}); is OBS running with "
                              "Tools > WebSocket Server Settings > Enable?") from None
        try:
            async with asyncio.timeout(5):
                hello = self._decode(await ws.recv())
            if hello["op"] != Op.HELLO:
                raise BridgeError(f"OBS did not start with Hello (op {hello['op']})")
            d = hello["d"]
            self.websocket_version = str(d["obsWebSocketVersion"]) if "obsWebSocketVersion" in d else None
            ident: dict[str, Any] = {"rpcVersion": RPC_VERSION, "eventSubscriptions": self.config.event_subscriptions}
            if "authentication" in d:
                if not self.config.password:
                    raise BridgeAuthError("OBS requires a password: pass --obs-password or set [obs] password")
                a = d["authentication"]
                ident["authentication"] = auth_string(self.config.password, a["salt"], a["challenge"])
            await ws.send(self._encode(Op.IDENTIFY, ident))
            async with asyncio.timeout(5):
                reply = self._decode(await ws.recv())
            if reply["op"] != Op.IDENTIFIED:
                raise BridgeError(f"OBS answered Identify with op {reply['op']}")
            self.negotiated_rpc = int(reply["d"].get("negotiatedRpcVersion", RPC_VERSION))
        except ConnectionClosed as exc:
            await ws.close()
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code == CloseCode.AUTHENTICATION_FAILED:
                raise BridgeAuthError("OBS refused the password (close 4009): check --obs-password against "
                                      "OBS Tools > WebSocket Server Settings") from None
            if code == CloseCode.UNSUPPORTED_RPC_VERSION:
                raise BridgeError("OBS does not speak obs-websocket RPC version 1 (close 4010): "
                                  "use OBS 28 or newer") from None
            raise BridgeError(f"OBS closed the connection during identification ({code})") from None
        except BaseException:
            await ws.close()
            raise
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        self.connected.set()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                msg = self._decode(frame)
                d = msg["d"]
                if msg["op"] == Op.REQUEST_RESPONSE:
                    fut = self._pending.pop(str(d.get("requestId")), None)
                    if fut is not None and not fut.done():
                        fut.set_result(d)
                elif msg["op"] == Op.EVENT and self.on_event is not None:
                    try:
                        self.on_event(str(d.get("eventType")), d.get("eventData") or {})
                    except Exception:
                        log.exception("OBS event handler failed")
            self.last_error = f"OBS closed the connection (code {ws.close_code}: {ws.close_reason or 'no reason'})"
        except (ConnectionClosed, BridgeError) as exc:
            self.last_error = f"OBS connection lost: {exc}"
        finally:
            self.connected.clear()
            self._ws = None
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(BridgeError("OBS connection lost before it answered"))
            self._pending.clear()

    async def request(self, request_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request; returns ``responseData`` or raises BridgeRequestError with OBS's code."""
        ws = self._ws
        if ws is None:
            raise BridgeError("not connected to OBS (it will reconnect when OBS is back)")
        rid = f"av-{next(self._ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        d: dict[str, Any] = {"requestType": request_type, "requestId": rid}
        if data is not None:
            d["requestData"] = data
        try:
            await ws.send(self._encode(Op.REQUEST, d))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that arrives in the
            # tick the answer does, and the cancelled task (the bridge being stopped) runs on.
            async with asyncio.timeout(self.config.request_timeout_s):
                resp = await fut
        except ConnectionClosed:
            raise BridgeError("OBS connection lost while sending a request") from None
        except TimeoutError:
            raise BridgeError(f"OBS did not answer {request_type} in {self.config.request_timeout_s:g} s") from None
        finally:
            self._pending.pop(rid, None)
        status = resp.get("requestStatus") or {}
        if not status.get("result"):
            code = int(status.get("code", 0))
            comment = status.get("comment") or "no comment"
            raise BridgeRequestError(f"OBS refused {request_type} (code {code}: {comment})", code)
        return dict(resp.get("responseData") or {})

    async def reidentify(self, event_subscriptions: int) -> None:
        if self._ws is None:
            raise BridgeError("not connected to OBS")
        self.config.event_subscriptions = event_subscriptions
        await self._ws.send(self._encode(Op.REIDENTIFY, {"eventSubscriptions": event_subscriptions}))

    # -- lifetime ------------------------------------------------------------------------------
    def backoff(self, failures: int) -> float:
        """Wait before attempt ``failures + 1``: doubling from reconnect_initial_s, capped."""
        return float(min(self.config.reconnect_max_s, self.config.reconnect_initial_s * 2 ** max(0, failures - 1)))

    async def run(self) -> None:
        """Connect, and reconnect with backoff whenever OBS goes away, until ``close()``.

        A wrong password stops the loop (BridgeAuthError is raised): retrying cannot fix it.
        Cancelling it (``serve`` stopping) closes the session with a close frame first.
        """
        try:
            await self._run()
        finally:
            await self.close()

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            self.attempts += 1
            try:
                await self.connect()
            except BridgeAuthError as exc:
                self.last_error = str(exc)
                self._down(str(exc))
                raise
            except BridgeError as exc:
                self.last_error = str(exc)
                self._down(str(exc))
                failures += 1
                await asyncio.sleep(self.backoff(failures))
                continue
            failures = 0
            if self.on_connect is not None:
                try:
                    await self.on_connect()
                except Exception as exc:  # setup problems are reported, the session stays up
                    self.last_error = f"setup after connect failed: {exc}"
                    log.warning("%s", self.last_error)
            if self._reader is not None:
                await asyncio.shield(self._reader)
            if not self._closing:
                self._down(self.last_error or "OBS connection lost")
                failures = 1
                await asyncio.sleep(self.backoff(failures))

    def _down(self, reason: str) -> None:
        if self.on_down is not None and not self._closing:
            try:
                self.on_down(reason)
            except Exception:
                log.exception("OBS disconnect handler failed")

    async def close(self) -> None:
        """End the session with a normal close frame (1000) and wait for the reader to finish."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close(1000, "anchorvoice is stopping")
        if self._reader is not None:
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
