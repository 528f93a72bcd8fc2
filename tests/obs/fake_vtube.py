"""A fake VTube Studio API endpoint: token approval flow, session auth, injection log with times."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

KNOWN_PARAMETERS = {"MouthOpen", "MouthSmile", "FaceAngleX"}


@dataclass
class FakeVTube:
    approve: bool = True
    """What the simulated user clicks in the approval pop-up."""
    tokens: set[str] = field(default_factory=set)
    """Tokens VTube Studio currently accepts (clear it to 'revoke' plugins)."""
    token_requests: int = 0
    auth_requests: list[bool] = field(default_factory=list)
    injections: list[tuple[float, str, float]] = field(default_factory=list)
    """(monotonic time, parameter id, value) of every accepted injection."""
    errors: list[int] = field(default_factory=list)
    port: int = 0
    _server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", self.port)
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, ws: ServerConnection) -> None:
        authed = False
        try:
            async for frame in ws:
                msg = json.loads(frame)
                rid = msg.get("requestID")

                async def reply(mtype: str, data: dict[str, Any], rid: Any = rid) -> None:
                    await ws.send(json.dumps({"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0",
                                              "timestamp": int(time.time() * 1000), "requestID": rid,
                                              "messageType": mtype, "data": data}))

                async def error(eid: int, text: str) -> None:
                    self.errors.append(eid)
                    await reply("APIError", {"errorID": eid, "message": text})

                if msg.get("apiName") != "VTubeStudioPublicAPI" or msg.get("apiVersion") != "1.0":
                    await error(2, "wrong apiName/apiVersion")
                    continue
                mtype, data = msg.get("messageType"), msg.get("data") or {}
                if mtype == "AuthenticationTokenRequest":
                    self.token_requests += 1
                    if not (3 <= len(data.get("pluginName", "")) <= 32 and data.get("pluginDeveloper")):
                        await error(51, "plugin name/developer invalid")
                    elif not self.approve:
                        await error(50, "User has denied API access for your plugin.")
                    else:
                        token = secrets.token_hex(32)
                        self.tokens.add(token)
                        await reply("AuthenticationTokenResponse", {"authenticationToken": token})
                elif mtype == "AuthenticationRequest":
                    authed = data.get("authenticationToken") in self.tokens
                    self.auth_requests.append(authed)
                    await reply("AuthenticationResponse", {"authenticated": authed,
                                                           "reason": "ok" if authed else "token invalid"})
                elif not authed:
                    await error(8, "Request requires authentication.")
                elif mtype == "InjectParameterDataRequest":
                    values = data.get("parameterValues") or []
                    bad = [v for v in values if v.get("id") not in KNOWN_PARAMETERS
                           or not isinstance(v.get("value"), (int, float))]
                    if not values or bad or data.get("mode", "set") not in ("set", "add"):
                        await error(453, "invalid parameter values")
                        continue
                    now = time.monotonic()
                    for v in values:
                        self.injections.append((now, v["id"], float(v["value"])))
                    await reply("InjectParameterDataResponse", {})
                else:
                    await error(3, f"unknown messageType {mtype}")
        except ConnectionClosed:
            pass
