"""A protocol-faithful fake obs-websocket v5 server for bridge tests.

Follows obs-websocket 5.x protocol.md: Hello with salt/challenge when a password is set, Identify
checked (4009 wrong auth, 4010 rpcVersion other than 1, 4007 anything before Identify), JSON or
msgpack by subprotocol (4002 for the wrong frame type), RequestResponse echoing requestType and
requestId, events filtered by each session's eventSubscriptions bitmask, and a log of every
request. It keeps a small model of OBS state (inputs with kind/settings/mute, scenes with items).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

INPUTS_BIT = 1 << 3
SCENE_ITEMS_BIT = 1 << 7


def expected_auth(password: str, salt: str, challenge: str) -> str:
    secret = base64.b64encode(hashlib.sha256((password + salt).encode()).digest())
    return base64.b64encode(hashlib.sha256(secret + challenge.encode()).digest()).decode()


@dataclass
class Session:
    ws: ServerConnection
    binary: bool
    subscriptions: int = 0
    identified: bool = False


@dataclass
class FakeObs:
    password: str | None = None
    rpc_version: int = 1
    """The RPC version this fake speaks; Identify with another one is closed with 4010."""
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    scenes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"Scene": []})
    program_scene: str = "Scene"
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every request received, in order: (requestType, requestData)."""
    identifies: list[dict[str, Any]] = field(default_factory=list)
    close_codes: list[int] = field(default_factory=list)
    port: int = 0
    sessions: list[Session] = field(default_factory=list)
    _server: Server | None = None
    _next_item: int = 1

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def add_input(self, name: str, kind: str, settings: dict[str, Any] | None = None, scene: str = "Scene") -> None:
        self.inputs[name] = {"kind": kind, "settings": dict(settings or {}), "muted": False}
        self.scenes.setdefault(scene, []).append({"sceneItemId": self._next_item, "sourceName": name, "enabled": True})
        self._next_item += 1

    async def start(self) -> None:
        self._server = await serve(
            self._handle, "127.0.0.1", self.port,
            subprotocols=[Subprotocol("obswebsocket.json"), Subprotocol("obswebsocket.msgpack")],
            select_subprotocol=_select,
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        """OBS quitting: every session is closed and the port stops listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.sessions.clear()

    def requests(self, request_type: str) -> list[dict[str, Any]]:
        return [d for t, d in self.log if t == request_type]

    # -- protocol --------------------------------------------------------------------------------
    async def _send(self, s: Session, op: int, d: dict[str, Any]) -> None:
        msg = {"op": op, "d": d}
        await s.ws.send(msgpack.packb(msg, use_bin_type=True) if s.binary else json.dumps(msg))

    async def _close(self, s: Session, code: int, reason: str) -> None:
        self.close_codes.append(code)
        await s.ws.close(code, reason)

    async def _handle(self, ws: ServerConnection) -> None:
        s = Session(ws, binary=ws.subprotocol == "obswebsocket.msgpack")
        self.sessions.append(s)
        hello: dict[str, Any] = {"obsWebSocketVersion": "5.5.0", "rpcVersion": self.rpc_version}
        salt = challenge = ""
        if self.password is not None:
            salt, challenge = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            hello["authentication"] = {"challenge": challenge, "salt": salt}
        try:
            await self._send(s, 0, hello)
            async for frame in ws:
                if isinstance(frame, bytes) != s.binary:
                    await self._close(s, 4002, "wrong frame type for the negotiated subprotocol")
                    return
                msg = msgpack.unpackb(frame, raw=False) if s.binary else json.loads(frame)
                op, d = msg.get("op"), msg.get("d", {})
                if not s.identified:
                    if op != 1:
                        await self._close(s, 4007, "not identified")
                        return
                    self.identifies.append(d)
                    if self.password is not None and d.get("authentication") != expected_auth(
                        self.password, salt, challenge
                    ):
                        await self._close(s, 4009, "Authentication failed.")
                        return
                    if d.get("rpcVersion") != self.rpc_version:
                        await self._close(s, 4010, "unsupported rpc version")
                        return
                    s.subscriptions = int(d.get("eventSubscriptions", (1 << 11) - 1))
                    s.identified = True
                    await self._send(s, 2, {"negotiatedRpcVersion": 1})
                elif op == 3:
                    s.subscriptions = int(d.get("eventSubscriptions", (1 << 11) - 1))
                    await self._send(s, 2, {"negotiatedRpcVersion": 1})
                elif op == 6:
                    rtype, rid, data = d.get("requestType"), d.get("requestId"), d.get("requestData") or {}
                    self.log.append((rtype, data))
                    ok, code, comment, out = self._request(rtype, data)
                    status: dict[str, Any] = {"result": ok, "code": code}
                    if comment:
                        status["comment"] = comment
                    resp: dict[str, Any] = {"requestType": rtype, "requestId": rid, "requestStatus": status}
                    if out is not None:
                        resp["responseData"] = out
                    await self._send(s, 7, resp)
                else:
                    await self._close(s, 4006, "unknown op")
                    return
        except ConnectionClosed:
            pass
        finally:
            if s in self.sessions:
                self.sessions.remove(s)

    async def emit(self, event_type: str, intent: int, data: dict[str, Any]) -> None:
        for s in list(self.sessions):
            if s.identified and s.subscriptions & intent:
                await self._send(s, 5, {"eventType": event_type, "eventIntent": intent, "eventData": data})

    def _request(self, rtype: str, d: dict[str, Any]) -> tuple[bool, int, str | None, dict[str, Any] | None]:
        def need(*keys: str) -> str | None:
            for k in keys:
                if k not in d:
                    return k
            return None

        ok: tuple[bool, int, str | None, dict[str, Any] | None] = (True, 100, None, {})
        if rtype == "GetVersion":
            return True, 100, None, {"obsVersion": "30.1.0", "obsWebSocketVersion": "5.5.0", "rpcVersion": 1}
        if rtype == "GetCurrentProgramScene":
            return True, 100, None, {"currentProgramSceneName": self.program_scene, "sceneName": self.program_scene}
        if rtype == "GetInputList":
            kind = d.get("inputKind")
            items = [{"inputName": n, "inputKind": i["kind"], "unversionedInputKind": i["kind"]}
                     for n, i in self.inputs.items() if kind in (None, i["kind"])]
            return True, 100, None, {"inputs": items}
        if rtype in ("GetInputSettings", "SetInputSettings", "SetInputMute", "GetInputMute"):
            missing = need("inputName", *(("inputSettings",) if rtype == "SetInputSettings" else ()),
                           *(("inputMuted",) if rtype == "SetInputMute" else ()))
            if missing:
                return False, 300, f"Your request is missing the `{missing}` field.", None
            inp = self.inputs.get(d["inputName"])
            if inp is None:
                return False, 600, "No source was found by the name of `" + d["inputName"] + "`.", None
            if rtype == "GetInputSettings":
                return True, 100, None, {"inputSettings": dict(inp["settings"]), "inputKind": inp["kind"]}
            if rtype == "SetInputSettings":
                if d.get("overlay", True):
                    inp["settings"].update(d["inputSettings"])
                else:
                    inp["settings"] = dict(d["inputSettings"])
                return ok
            if rtype == "GetInputMute":
                return True, 100, None, {"inputMuted": inp["muted"]}
            if not isinstance(d["inputMuted"], bool):
                return False, 400, "inputMuted must be a boolean", None
            inp["muted"] = d["inputMuted"]
            asyncio.get_running_loop().create_task(
                self.emit("InputMuteStateChanged", INPUTS_BIT,
                          {"inputName": d["inputName"], "inputMuted": inp["muted"]})
            )
            return ok
        if rtype == "CreateInput":
            missing = need("sceneName", "inputName", "inputKind")
            if missing:
                return False, 300, f"Your request is missing the `{missing}` field.", None
            if d["sceneName"] not in self.scenes:
                return False, 600, "No scene was found by that name.", None
            if d["inputName"] in self.inputs:
                return False, 601, "A source already exists by that input name.", None
            self.add_input(d["inputName"], d["inputKind"], d.get("inputSettings"), d["sceneName"])
            item = self.scenes[d["sceneName"]][-1]
            item["enabled"] = bool(d.get("sceneItemEnabled", True))
            return True, 100, None, {"inputUuid": secrets.token_hex(8), "sceneItemId": item["sceneItemId"]}
        if rtype == "GetSceneItemId":
            for item in self.scenes.get(d.get("sceneName", ""), []):
                if item["sourceName"] == d.get("sourceName"):
                    return True, 100, None, {"sceneItemId": item["sceneItemId"]}
            return False, 600, "No scene items were found in the specified scene by that name.", None
        if rtype == "SetSceneItemEnabled":
            for item in self.scenes.get(d.get("sceneName", ""), []):
                if item["sceneItemId"] == d.get("sceneItemId"):
                    item["enabled"] = bool(d.get("sceneItemEnabled"))
                    return ok
            return False, 600, "No scene item found.", None
        return False, 204, "Your request type is not valid.", None


def _select(connection: ServerConnection, subprotocols: Any) -> Subprotocol | None:
    """Like obs-websocket: msgpack or json when offered; none offered means JSON."""
    for p in ("obswebsocket.msgpack", "obswebsocket.json"):
        if p in subprotocols:
            return Subprotocol(p)
    return None
