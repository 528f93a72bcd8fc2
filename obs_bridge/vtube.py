"""Avatar mouth from output loudness through the VTube Studio public API (ws://localhost:8001).

VTube Studio API facts (DenchiSoft/VTubeStudio README): every message carries ``apiName``
"VTubeStudioPublicAPI", ``apiVersion`` "1.0", ``requestID``, ``messageType`` and ``data``; errors
come back as ``APIError`` with ``errorID``/``message``. A plugin asks once for a token
(``AuthenticationTokenRequest``; VTube Studio shows the user a pop-up and answers after the click),
keeps it, and authenticates every session with ``AuthenticationRequest``. Injected parameter values
(``InjectParameterDataRequest``) are dropped by VTube Studio after about one second without new
data, so the value is re-sent on a fixed interval even when it does not change.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from anchorvoice.engine.events import EventSource
from anchorvoice.engine.paths import user_data_dir
from anchorvoice.errors import BridgeAuthError, BridgeError, BridgeRequestError

API_NAME = "VTubeStudioPublicAPI"
API_VERSION = "1.0"
TOKEN_FILE = "vtube-studio-token"


@dataclass
class VTubeConfig:
    """VTube Studio mouth control (``[vtube_studio.mouth]`` in configs/server.toml)."""

    url: str = "ws://127.0.0.1:8001"
    """VTube Studio API address (Settings > Start API)."""
    plugin_name: str = "anchorvoice"
    """Name shown in VTube Studio's approval pop-up (3-32 characters)."""
    plugin_developer: str = "anchorvoice"
    """Developer shown in the pop-up."""
    parameter: str = "MouthOpen"
    """Tracking parameter to drive."""
    send_interval_s: float = 0.1
    """Re-send period; well under the ~1 s after which VTube Studio drops injected values."""
    silence_db: float = -50.0
    """RMS (dBFS) at or below which the mouth is closed."""
    full_db: float = -12.0
    """RMS (dBFS) at or above which the mouth is fully open."""
    stale_s: float = 0.3
    """A level older than this counts as silence (speech ended, or no level events)."""
    token_file: Path | None = None
    """Where the approved token is kept; None: <user data dir>/vtube-studio-token."""
    request_timeout_s: float = 120.0
    """Longest wait for an answer (a token request waits for the user's click)."""
    reconnect_initial_s: float = 1.0
    """First wait before reconnecting; doubles up to reconnect_max_s."""
    reconnect_max_s: float = 30.0
    """Longest wait between reconnect attempts."""


def mouth_open(rms_db: float, silence_db: float, full_db: float) -> float:
    """Loudness -> MouthOpen in [0, 1], linear in dB between silence_db and full_db."""
    if full_db <= silence_db:
        raise ValueError("full_db must be above silence_db")
    return float(min(1.0, max(0.0, (rms_db - silence_db) / (full_db - silence_db))))


class VTubeStudio:
    """Keeps one authenticated VTube Studio session and feeds it the mouth value."""

    def __init__(self, config: VTubeConfig, bus: EventSource) -> None:
        self.config = config
        self.bus = bus
        self.token_path = config.token_file or user_data_dir() / TOKEN_FILE
        self.authenticated = asyncio.Event()
        self.sent = 0
        """Injection requests answered so far."""
        self.last_error: str | None = None
        self._ids = itertools.count(1)
        self._level_db = -120.0
        self._level_at = 0.0

    # -- token storage -------------------------------------------------------------------------
    def load_token(self) -> str | None:
        try:
            token = self.token_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return token or None

    def save_token(self, token: str) -> None:
        self.token_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.token_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        os.replace(tmp, self.token_path)

    # -- messages ------------------------------------------------------------------------------
    async def _request(self, ws: ClientConnection, message_type: str, data: dict[str, Any]) -> dict[str, Any]:
        rid = f"av-{next(self._ids)}"
        await ws.send(json.dumps({"apiName": API_NAME, "apiVersion": API_VERSION, "requestID": rid,
                                  "messageType": message_type, "data": data}))
        while True:
            async with asyncio.timeout(self.config.request_timeout_s):  # not wait_for (see obs.ObsClient.request)
                reply = json.loads(await ws.recv())
            if reply.get("requestID") == rid:
                break  # anything else is an event or a stale answer
        body = reply.get("data") or {}
        if reply.get("messageType") == "APIError":
            raise BridgeRequestError(
                f"VTube Studio refused {message_type}: {body.get('message', '?')} (error {body.get('errorID')})",
                int(body.get("errorID", 0)),
            )
        return dict(body)

    async def authenticate(self, ws: ClientConnection) -> None:
        """Use the stored token; ask for a new one (user approval) when there is none or it was revoked."""
        ident = {"pluginName": self.config.plugin_name, "pluginDeveloper": self.config.plugin_developer}
        token = self.load_token()
        for fresh in (False, True):
            if token is None or fresh:
                try:
                    got = await self._request(ws, "AuthenticationTokenRequest", ident)
                except BridgeRequestError as exc:
                    raise BridgeAuthError(
                        f"{exc}; allow anchorvoice in VTube Studio's pop-up (or its plugin settings) and retry"
                    ) from None
                token = str(got["authenticationToken"])
                self.save_token(token)
            res = await self._request(ws, "AuthenticationRequest", {**ident, "authenticationToken": token})
            if res.get("authenticated"):
                return
            token = None  # revoked in VTube Studio: ask once more
        raise BridgeAuthError("VTube Studio did not accept a freshly approved token")

    # -- levels -> mouth -----------------------------------------------------------------------
    def value(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if now - self._level_at > self.config.stale_s:
            return 0.0
        return mouth_open(self._level_db, self.config.silence_db, self.config.full_db)

    async def _follow_levels(self) -> None:
        sub = self.bus.subscribe(["levels", "speaking.stopped"])
        try:
            while True:
                ev = await sub.get()
                if ev.name == "levels":
                    self._level_db = float(ev.data.get("rms_db", -120.0))
                    self._level_at = time.monotonic()
                else:
                    self._level_db = -120.0
        finally:
            self.bus.unsubscribe(sub)

    async def _inject_forever(self, ws: ClientConnection) -> None:
        while True:
            await self._request(ws, "InjectParameterDataRequest", {
                "faceFound": False, "mode": "set",
                "parameterValues": [{"id": self.config.parameter, "value": round(self.value(), 4)}],
            })
            self.sent += 1
            await asyncio.sleep(self.config.send_interval_s)

    # -- lifetime ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, authenticate, inject; reconnect with backoff. A refused approval ends the loop."""
        follower = asyncio.get_running_loop().create_task(self._follow_levels())
        failures = 0
        try:
            while True:
                try:
                    async with connect(self.config.url, compression=None, open_timeout=5) as ws:
                        await self.authenticate(ws)
                        self.authenticated.set()
                        failures = 0
                        await self._inject_forever(ws)
                except BridgeAuthError as exc:
                    self.last_error = str(exc)
                    self.bus.publish("degraded", {"source": "vtube_studio", "message": str(exc)})
                    raise
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError, BridgeError) as exc:
                    self.last_error = f"VTube Studio: {type(exc).__name__}: {exc}"
                self.authenticated.clear()
                failures += 1
                delay = min(self.config.reconnect_max_s, self.config.reconnect_initial_s * 2 ** (failures - 1))
                await asyncio.sleep(delay)
        finally:
            follower.cancel()
