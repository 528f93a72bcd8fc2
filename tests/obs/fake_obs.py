"""A protocol-faithful fake obs-websocket v5 server for bridge tests.

Follows obs-websocket 5.x protocol.md: Hello with salt/challenge when a password is set, Identify
checked (4009 wrong auth, 4010 rpcVersion other than 1, 4007 anything before Identify), JSON or
msgpack by subprotocol (4002 for the wrong frame type), RequestResponse echoing requestType and
requestId, events filtered by each session's eventSubscriptions bitmask, and a log of every
request. It keeps a small model of OBS state (inputs with kind/settings/mute, scenes with items).

By default it answers like OBS 29.0.2 with obs-websocket 5.1.0 (Debian 12's ``obs-studio``), as checked
against the real one: scene item ids are numbered per scene (each scene's first item is 1), mute on
an input without audio is refused with 604, ``CreateInput`` with a kind this OBS lacks with 605 (the
kinds are those of ``platform``), ``CreateInput`` answers only ``sceneItemId``, ``GetCurrentProgramScene``
only ``currentProgramSceneName``, and ``GetInputSettings`` only the settings that differ from the
kind's defaults (``GetInputDefaultSettings`` has those). ``newer=True`` adds the fields of 5.3+ (``inputUuid``,
``sceneName``/``sceneUuid``) and claims obs-websocket 5.5.0 / OBS 30.1.0.
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

SCENES_BIT = 1 << 2
INPUTS_BIT = 1 << 3
SCENE_ITEMS_BIT = 1 << 7

AUDIO_KINDS = frozenset({"pulse_input_capture", "pulse_output_capture", "wasapi_input_capture",
                         "wasapi_output_capture", "coreaudio_input_capture", "coreaudio_output_capture",
                         "ffmpeg_source", "browser_source"})
"""Input kinds with audio: the others answer SetInputMute/GetInputMute with 604."""
TEXT_DEFAULTS: dict[str, Any] = {"antialiasing": True, "color1": 4294967295, "color2": 4294967295,
                                 "drop_shadow": False, "font": {"face": "Sans Serif", "flags": 0, "size": 256,
                                                                "style": ""}, "log_lines": 6, "outline": False,
                                 "word_wrap": False}
"""text_ft2_source_v2's defaults as OBS 29.0.2 answers GetInputDefaultSettings."""
KINDS: dict[str, dict[str, dict[str, Any]]] = {
    "linux": {"text_ft2_source_v2": TEXT_DEFAULTS, "pulse_input_capture": {"device_id": "default"},
              "pulse_output_capture": {"device_id": "default"}, "image_source": {}, "color_source_v3": {},
              "ffmpeg_source": {}, "browser_source": {}, "v4l2_input": {}},
    "win32": {"text_gdiplus_v3": {"font": {"face": "Arial", "size": 256}}, "wasapi_input_capture": {},
              "wasapi_output_capture": {}, "image_source": {}, "color_source_v3": {}, "ffmpeg_source": {},
              "browser_source": {}, "dshow_input": {}},
    "darwin": {"text_ft2_source_v2": TEXT_DEFAULTS, "coreaudio_input_capture": {}, "coreaudio_output_capture": {},
               "image_source": {}, "color_source_v3": {}, "ffmpeg_source": {}, "browser_source": {}},
}
"""Input kinds OBS has per platform, with the default settings the fake hides from GetInputSettings."""


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
    platform: str = "linux"
    """Whose input kinds this OBS has (KINDS); CreateInput with another kind is refused with 605."""
    newer: bool = False
    """Answer like obs-websocket 5.5.0 / OBS 30.1.0 (extra fields) instead of 5.1.0 / 29.0.2."""
    video: tuple[int, int] = (1920, 1080)
    """Base (canvas) width and height."""
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    scenes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"Scene": []})
    program_scene: str = "Scene"
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every request received, in order: (requestType, requestData)."""
    identifies: list[dict[str, Any]] = field(default_factory=list)
    close_codes: list[int] = field(default_factory=list)
    """Close codes this fake sent."""
    client_closes: list[int | None] = field(default_factory=list)
    """Close codes clients sent when they ended a session (None: the connection just dropped, 1006)."""
    transforms: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    """(scene, item id) -> the last SetSceneItemTransform's transform."""
    port: int = 0
    sessions: list[Session] = field(default_factory=list)
    _server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def obs_version(self) -> str:
        return "30.1.0" if self.newer else "29.0.2"

    @property
    def websocket_version(self) -> str:
        return "5.5.0" if self.newer else "5.1.0"

    def add_input(self, name: str, kind: str, settings: dict[str, Any] | None = None, scene: str = "Scene") -> None:
        """An input with settings on top of its kind's defaults, and its item in ``scene``."""
        defaults = KINDS.get(self.platform, {}).get(kind, {})
        self.inputs[name] = {"kind": kind, "settings": {**json.loads(json.dumps(defaults)), **(settings or {})},
                             "muted": False}
        self.add_item(scene, name)

    def add_item(self, scene: str, name: str) -> dict[str, Any]:
        """Show input ``name`` in ``scene`` too; ids are numbered per scene, as real OBS does."""
        items = self.scenes.setdefault(scene, [])
        item = {"sceneItemId": max((i["sceneItemId"] for i in items), default=0) + 1, "sourceName": name,
                "enabled": True}
        items.append(item)
        return item

    def item(self, scene: str, name: str) -> dict[str, Any]:
        return next(i for i in self.scenes[scene] if i["sourceName"] == name)

    def shown_settings(self, name: str) -> dict[str, Any]:
        """What GetInputSettings answers: only the settings that differ from the kind's defaults."""
        inp = self.inputs[name]
        return _differing(inp["settings"], KINDS.get(self.platform, {}).get(inp["kind"], {}))

    async def switch_scene(self, scene: str) -> None:
        """The user switching the program scene: CurrentProgramSceneChanged goes out."""
        self.program_scene = scene
        data: dict[str, Any] = {"sceneName": scene}
        if self.newer:
            data["sceneUuid"] = f"uuid-{scene}"
        await self.emit("CurrentProgramSceneChanged", SCENES_BIT, data)

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
        hello: dict[str, Any] = {"obsWebSocketVersion": self.websocket_version, "rpcVersion": self.rpc_version}
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
            self._client_closed(ws)  # the client's close frame ends the loop
        except ConnectionClosed:
            self._client_closed(ws)
        finally:
            if s in self.sessions:
                self.sessions.remove(s)

    def _client_closed(self, ws: ServerConnection) -> None:
        """Record how the client ended the session: its close code, or None when it just dropped (1006)."""
        rcvd = ws.protocol.close_rcvd
        if ws.protocol.close_sent is None or ws.protocol.close_rcvd_then_sent:
            self.client_closes.append(rcvd.code if rcvd is not None else None)

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
            return True, 100, None, {"obsVersion": self.obs_version, "obsWebSocketVersion": self.websocket_version,
                                     "rpcVersion": 1, "platform": self.platform}
        if rtype == "GetVideoSettings":
            w, h = self.video
            return True, 100, None, {"baseWidth": w, "baseHeight": h, "outputWidth": w, "outputHeight": h,
                                     "fpsNumerator": 30, "fpsDenominator": 1}
        if rtype == "GetCurrentProgramScene":
            out = {"currentProgramSceneName": self.program_scene}
            if self.newer:
                out |= {"sceneName": self.program_scene, "sceneUuid": f"uuid-{self.program_scene}"}
            return True, 100, None, out
        if rtype == "SetCurrentProgramScene":
            if d.get("sceneName") not in self.scenes:
                return False, 600, "No source was found by the name of `" + str(d.get("sceneName")) + "`.", None
            asyncio.get_running_loop().create_task(self.switch_scene(d["sceneName"]))
            return ok
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
                return True, 100, None, {"inputSettings": self.shown_settings(d["inputName"]), "inputKind": inp["kind"]}
            if rtype in ("GetInputMute", "SetInputMute") and inp["kind"] not in AUDIO_KINDS:
                return False, 604, "The specified input does not support audio.", None
            if rtype == "SetInputSettings":
                if d.get("overlay", True):  # obs_data_apply: top-level keys replaced, objects whole
                    inp["settings"].update(d["inputSettings"])
                else:
                    defaults = KINDS.get(self.platform, {}).get(inp["kind"], {})
                    inp["settings"] = {**json.loads(json.dumps(defaults)), **d["inputSettings"]}
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
            if d["inputKind"] not in KINDS.get(self.platform, {}):
                return False, 605, ("Your specified input kind is not supported by OBS. Check that your specified "
                                    "kind is properly versioned and that any necessary plugins are loaded."), None
            self.add_input(d["inputName"], d["inputKind"], d.get("inputSettings"), d["sceneName"])
            item = self.scenes[d["sceneName"]][-1]
            item["enabled"] = bool(d.get("sceneItemEnabled", True))
            created: dict[str, Any] = {"sceneItemId": item["sceneItemId"]}
            if self.newer:
                created["inputUuid"] = secrets.token_hex(8)
            return True, 100, None, created
        if rtype == "GetInputDefaultSettings":
            if d.get("inputKind") not in KINDS.get(self.platform, {}):
                return False, 605, "Your specified input kind is not supported by OBS.", None
            defaults = json.loads(json.dumps(KINDS[self.platform][d["inputKind"]]))
            return True, 100, None, {"defaultInputSettings": defaults}
        if rtype == "SetSceneItemTransform":
            for item in self.scenes.get(d.get("sceneName", ""), []):
                if item["sceneItemId"] == d.get("sceneItemId"):
                    self.transforms[(d["sceneName"], item["sceneItemId"])] = dict(d.get("sceneItemTransform") or {})
                    return ok
            return False, 600, "No scene items were found in the specified scene by that name.", None
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


def _differing(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Settings whose value is not the default (a changed object shows whole, as obs_data does)."""
    return {k: v for k, v in settings.items() if k not in defaults or defaults[k] != v}


def _select(connection: ServerConnection, subprotocols: Any) -> Subprotocol | None:
    """Like obs-websocket: msgpack or json when offered; none offered means JSON."""
    for p in ("obswebsocket.msgpack", "obswebsocket.json"):
        if p in subprotocols:
            return Subprotocol(p)
    return None
