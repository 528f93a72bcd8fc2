"""`anchorvoice serve`: the WebSocket control API, with the OBS bridge and VTube Studio mouth if asked.

Settings (:class:`~anchorvoice.engine.cli.serve_config.ServeConfig`) come from ``configs/server.toml`` (or
``--config``), and command-line options override them. The access token lives in ``<home>/control-token``;
it is created on the first run and printed with an example of how to connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Any

from anchorvoice.engine.cli.common import home_of, make_engine

if TYPE_CHECKING:  # the server and bridge modules load only when `serve` runs
    from anchorvoice.engine.cli.serve_config import ServeConfig
    from anchorvoice.engine.events import EventSource


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("serve", help="run the WebSocket control API (and the OBS / VTube Studio bridges)")
    sp.add_argument("--config", default=None, help="server TOML (default: configs/server.toml)")
    sp.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=None, help="TCP port (default from the config, 8765); 0: any free")
    sp.add_argument("--voice", default=None, help="voice selected at start (clients can switch with voice.set)")
    sp.add_argument("--speech-output", default=None,
                    help="where `speak` plays: 'virtual' (default), 'none', 'default' or part of a "
                    "device name")
    sp.add_argument("--obs", default=None, metavar="URL", help="connect to obs-websocket, e.g. ws://127.0.0.1:4455")
    sp.add_argument("--obs-password", default=None, help="obs-websocket password")
    sp.add_argument("--vtube-studio", action="store_true", help="drive the avatar's mouth in VTube Studio")
    sp.add_argument("--duration", type=float, default=None, help="stop after this many seconds (tests)")
    sp.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from anchorvoice.engine.cli.serve_config import load_serve_config

    return asyncio.run(_serve(args, load_serve_config(args)))


async def _serve(args: argparse.Namespace, cfg: ServeConfig) -> int:
    from anchorvoice.engine.output_sinks import output_sink
    from anchorvoice.engine.server.app import ControlServer
    from anchorvoice.engine.server.auth import load_or_create_token
    from anchorvoice.engine.server.events import EventBus
    from anchorvoice.engine.server.live_adapter import engine_live_factory
    from anchorvoice.engine.server.methods import Controller

    engine = make_engine(args)
    home = home_of(args)
    token: str | None = None
    if cfg.server.auth:
        token, created = load_or_create_token(home)
        if created:
            print(f"created an access token in {home / 'control-token'}", file=sys.stderr)
    bus = EventBus(cfg.server.event_queue)
    sink = output_sink(engine.plugins, cfg.speech)
    ctl = Controller(engine, sink, cfg.controller, live_factory=engine_live_factory(engine, bus), bus=bus)
    server = ControlServer(ctl, cfg.server, token=token)
    await server.start()
    url = f"ws://{cfg.server.host}:{server.port}"
    print(f"anchorvoice control API on {url}", flush=True)
    if token is not None:
        print(f"connect with {url}/?token=<the token in {home / 'control-token'}> or send "
              '{"id": 1, "method": "auth", "params": {"token": "..."}} first; see docs/control-api.md', flush=True)
    tasks = await _bridges(cfg, bus)
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


async def _bridges(cfg: ServeConfig, events: EventSource) -> list[asyncio.Task[Any]]:
    """Start the bridges the settings turn on; they follow the server's events through ``events``."""
    tasks: list[asyncio.Task[Any]] = []
    if cfg.obs.enabled:
        from anchorvoice.obs_bridge.bridge import ObsBridge
        from anchorvoice.obs_bridge.obs import ObsClient

        client = ObsClient(cfg.obs.connection)
        bridge = ObsBridge(client, events, cfg.obs.bridge)
        tasks += [asyncio.create_task(_report(client.run(), "OBS")), asyncio.create_task(bridge.run())]
        print(f"OBS bridge: {cfg.obs.connection.url}", flush=True)
    if cfg.vtube_studio.enabled:
        from anchorvoice.obs_bridge.vtube import VTubeStudio

        mouth = cfg.vtube_studio.mouth
        vts = VTubeStudio(mouth, events)
        tasks.append(asyncio.create_task(_report(vts.run(), "VTube Studio")))
        print(f"VTube Studio: {mouth.url} (approve the anchorvoice pop-up in VTube Studio once)", flush=True)
    return tasks


async def _report(coro: Any, what: str) -> None:
    """A bridge that gives up (wrong password, denied approval) says why; the server keeps running."""
    try:
        await coro
    except Exception as exc:
        print(f"error: {what}: {exc}", file=sys.stderr, flush=True)
