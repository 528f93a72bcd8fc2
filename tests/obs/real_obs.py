"""A real OBS Studio for tests: Xvfb, OBS with a private HOME and obs-websocket on a free port, a small client.

OBS 29.x reads obs-websocket's settings from ``global.ini`` (``[OBSWebSocket]``: ServerEnabled,
ServerPort, AuthRequired, ServerPassword); ``[General] FirstRun`` stops the auto-configuration
wizard from blocking. Mesa's software GL (``LIBGL_ALWAYS_SOFTWARE=1``) renders under Xvfb. Every
process is started here and stopped by its own PID; nothing is installed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

START_TIMEOUT_S = 20.0

GLOBAL_INI = """[General]
FirstRun=true
LastVersion=486539266
EnableAutoUpdates=false
ConfirmOnExit=false

[BasicWindow]
SysTrayEnabled=false

[OBSWebSocket]
FirstLoad=false
ServerEnabled=true
ServerPort={port}
AlertsEnabled=false
AuthRequired=true
ServerPassword={password}
"""


def missing_programs() -> list[str]:
    return [p for p in ("obs", "Xvfb") if shutil.which(p) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_pid(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """Terminate one process we started (SIGTERM, then SIGKILL) and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RealObs:
    """Xvfb plus OBS; ``start()`` raises RuntimeError (with OBS's log tail) when OBS cannot come up."""

    def __init__(self, root: Path, env: dict[str, str], password: str = "anchorvoice-test") -> None:
        self.root = root
        self.home = root / "obs-home"
        self.log = root / "obs.log"
        self.password = password
        self.port = free_port()
        self.base_env = env
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.obs: subprocess.Popen[bytes] | None = None
        self.display: str | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start_xvfb(self) -> None:
        read, write = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten",
                                      "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            stop_pid(self.xvfb)
            raise RuntimeError("Xvfb did not start (no display number)")
        self.display = f":{number}"

    def start_obs(self) -> None:
        cfg = self.home / ".config" / "obs-studio"
        cfg.mkdir(parents=True, exist_ok=True)
        (cfg / "global.ini").write_text(GLOBAL_INI.format(port=self.port, password=self.password))
        env = dict(self.base_env, HOME=str(self.home), DISPLAY=str(self.display), LIBGL_ALWAYS_SOFTWARE="1",
                   XDG_CONFIG_HOME=str(self.home / ".config"), QT_QPA_PLATFORM="xcb")
        with self.log.open("ab") as log:
            self.obs = subprocess.Popen(["obs", "--minimize-to-tray", "--disable-updater", "--disable-shutdown-check",
                                         "--multi"], env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.obs.poll() is not None:
                raise RuntimeError(f"OBS exited with {self.obs.returncode}: {self.log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"OBS's websocket did not open in {START_TIMEOUT_S:g} s: {self.log_tail()}")

    def kill_obs(self) -> None:
        """OBS crashing: SIGKILL, no goodbye to its clients."""
        if self.obs is not None and self.obs.poll() is None:
            self.obs.send_signal(signal.SIGKILL)
            self.obs.wait()

    def stop(self) -> None:
        stop_pid(self.obs)
        stop_pid(self.xvfb)

    def log_tail(self, n: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"


class ObsProbe:
    """The test's own obs-websocket v5 client (JSON), independent of the bridge's."""

    def __init__(self, url: str, password: str) -> None:
        self.url, self.password = url, password
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> ObsProbe:
        self.ws = await connect(self.url, subprotocols=[Subprotocol("obswebsocket.json")])
        hello = json.loads(await self.ws.recv())["d"]
        ident: dict[str, Any] = {"rpcVersion": 1, "eventSubscriptions": 0}
        if "authentication" in hello:
            a = hello["authentication"]
            secret = base64.b64encode(hashlib.sha256((self.password + a["salt"]).encode()).digest())
            answer = hashlib.sha256(secret + a["challenge"].encode()).digest()
            ident["authentication"] = base64.b64encode(answer).decode()
        await self.ws.send(json.dumps({"op": 1, "d": ident}))
        assert json.loads(await self.ws.recv())["op"] == 2
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def call(self, request: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """responseData; AssertionError with OBS's comment when OBS refuses."""
        assert self.ws is not None
        rid = str(next(self._ids))
        await self.ws.send(json.dumps({"op": 6, "d": {"requestType": request, "requestId": rid,
                                                       "requestData": data or {}}}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if msg["op"] == 7 and msg["d"]["requestId"] == rid:
                status = msg["d"]["requestStatus"]
                assert status["result"], f"{request}: {status}"
                return dict(msg["d"].get("responseData") or {})

    async def try_call(self, request: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
        try:
            return await self.call(request, data)
        except AssertionError:
            return None
