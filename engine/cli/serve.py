"""`anchorvoice serve`: the WebSocket control API, with the OBS bridge and VTube Studio mouth if asked.

Settings come from ``configs/server.toml`` (or ``--config``), and command-line options override
them. The access token lives in ``<home>/control-token``; it is created on the first run and
printed with an example of how to connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

from anchorvoice.engine.cli.common import home_of, make_engine
from anchorvoice.engine.config import from_dict, load_toml
from anchorvoice.engine.engine import default_configs_dir
from anchorvoice.errors import ConfigError

SERVER_TOML = "server.toml"


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("serve", help="run the WebSocket control API (and the OBS / VTube Studio bridges)")
    sp.add_argument("--config", default=None, help="server TOML (default: configs/server.toml)")
    sp.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=None, help="TCP port (default from the config, 8765); 0: any free")
    sp.add_argument("--voice", default=None, help="voice selected at start (clients can switch with voice.set)")
    sp.add_argument("--speech-output", default=None,
                    help="where `speak` plays: 'virtual' (default), 'none', or part of a device name")
    sp.add_argument("--obs", default=None, metavar="URL", help="connect to obs-websocket, e.g. ws://127.0.0.1:4455")
    sp.add_argument("--obs-password", default=None, help="obs-websocket password")
    sp.add_argument("--vtube-studio", action="store_true", help="drive the avatar's mouth in VTube Studio")
    sp.add_argument("--duration", type=float, default=None, help="stop after this many seconds (tests)")
    sp.set_defaults(func=run_serve)


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError("expected a table", key=name)
    return dict(value)


def _split(table: dict[str, Any], cls: type, source: str, prefix: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return from_dict(cls, {k: v for k, v in table.items() if k in names}, source=source, prefix=prefix)


def load_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Every config object of the server, from the TOML file and the options."""
    from anchorvoice.engine.server.app import ServerConfig
    from anchorvoice.engine.server.methods import ControllerConfig
    from anchorvoice.engine.server.sinks import DeviceSinkConfig
    from anchorvoice.obs_bridge.bridge import BridgeConfig
    from anchorvoice.obs_bridge.obs import ObsConfig
    from anchorvoice.obs_bridge.vtube import VTubeConfig

    path = Path(args.config) if args.config else default_configs_dir() / SERVER_TOML
    data = load_toml(path) if (args.config or path.exists()) else {}
    src = str(path)
    known = {"server", "controller", "speech", "obs", "vtube_studio"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown table [{unknown[0]}]; tables: {', '.join(sorted(known))}", source=src)
    server = from_dict(ServerConfig, _section(data, "server"), source=src, prefix="server")
    controller = from_dict(ControllerConfig, _section(data, "controller"), source=src, prefix="controller")
    speech = from_dict(DeviceSinkConfig, _section(data, "speech"), source=src, prefix="speech")
    obs_t = _section(data, "obs")
    vts_t = _section(data, "vtube_studio")
    obs_on, vts_on = bool(obs_t.pop("enabled", False)), bool(vts_t.pop("enabled", False))
    obs_names = {f.name for f in dataclasses.fields(ObsConfig)} | {f.name for f in dataclasses.fields(BridgeConfig)}
    extra = sorted(set(obs_t) - obs_names)
    if extra:
        raise ConfigError(f"unknown key {extra[0]!r}", source=src, key=f"obs.{extra[0]}")
    obs = _split(obs_t, ObsConfig, src, "obs")
    bridge = _split(obs_t, BridgeConfig, src, "obs")
    vts = from_dict(VTubeConfig, vts_t, source=src, prefix="vtube_studio")
    if args.host is not None:
        server.host = args.host
    if args.port is not None:
        server.port = args.port
    if args.voice is not None:
        controller.voice = args.voice
    if args.speech_output is not None:
        speech.output = args.speech_output
    if args.obs is not None:
        obs.url, obs_on = args.obs, True
    if args.obs_password is not None:
        obs.password = args.obs_password
    if args.vtube_studio:
        vts_on = True
    if vts.token_file is None:
        vts.token_file = home_of(args) / "vtube-studio-token"
    return {"server": server, "controller": controller, "speech": speech, "obs": obs if obs_on else None,
            "bridge": bridge, "vtube": vts if vts_on else None}


def run_serve(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    return asyncio.run(_serve(args, settings))


async def _serve(args: argparse.Namespace, s: dict[str, Any]) -> int:
    from anchorvoice.engine.server.app import ControlServer
    from anchorvoice.engine.server.auth import load_or_create_token
    from anchorvoice.engine.server.events import EventBus
    from anchorvoice.engine.server.live_adapter import engine_live_factory
    from anchorvoice.engine.server.methods import Controller
    from anchorvoice.engine.server.sinks import DeviceSink, NullSink
    from anchorvoice.engine.stages import AudioSink

    engine = make_engine(args)
    home = home_of(args)
    token: str | None = None
    if s["server"].auth:
        token, created = load_or_create_token(home)
        if created:
            print(f"created an access token in {home / 'control-token'}", file=sys.stderr)
    bus = EventBus(s["server"].event_queue)
    sink: AudioSink
    if s["speech"].output.lower() == "none":
        sink, s["controller"].pace = NullSink(), True
    else:
        sink, s["controller"].pace = DeviceSink(s["speech"]), False
    ctl = Controller(engine, sink, s["controller"], live_factory=engine_live_factory(engine, bus), bus=bus)
    server = ControlServer(ctl, s["server"], token=token)
    await server.start()
    url = f"ws://{s['server'].host}:{server.port}"
    print(f"anchorvoice control API on {url}", flush=True)
    if token is not None:
        print(f"connect with {url}/?token=<the token in {home / 'control-token'}> or send "
              '{"id": 1, "method": "auth", "params": {"token": "..."}} first; see docs/control-api.md', flush=True)
    tasks = await _bridges(s, bus)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.duration) if args.duration else await stop.wait()
    except TimeoutError:
        pass
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.close()
        engine.close()
    return 0


async def _bridges(s: dict[str, Any], bus: Any) -> list[asyncio.Task[Any]]:
    tasks: list[asyncio.Task[Any]] = []
    if s["obs"] is not None:
        from anchorvoice.obs_bridge.bridge import ObsBridge
        from anchorvoice.obs_bridge.obs import ObsClient

        client = ObsClient(s["obs"])
        bridge = ObsBridge(client, bus, s["bridge"])
        tasks += [asyncio.create_task(_report(client.run(), "OBS")), asyncio.create_task(bridge.run())]
        print(f"OBS bridge: {s['obs'].url}", flush=True)
    if s["vtube"] is not None:
        from anchorvoice.obs_bridge.vtube import VTubeStudio

        vts = VTubeStudio(s["vtube"], bus)
        tasks.append(asyncio.create_task(_report(vts.run(), "VTube Studio")))
        print(f"VTube Studio: {s['vtube'].url} (approve the anchorvoice pop-up in VTube Studio once)", flush=True)
    return tasks


async def _report(coro: Any, what: str) -> None:
    """A bridge that gives up (wrong password, denied approval) says why; the server keeps running."""
    try:
        await coro
    except Exception as exc:
        print(f"error: {what}: {exc}", file=sys.stderr, flush=True)
