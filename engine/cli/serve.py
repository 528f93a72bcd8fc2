"""`anchorvoice serve`: the WebSocket control API, with the OBS bridge and VTube Studio mouth if asked.

Settings (:class:`~anchorvoice.engine.cli.serve_config.ServeConfig`) come from ``configs/server.toml`` (or
``--config``), and command-line options override them. Before listening it checks what it can: the start
voice exists, a ``--speech-output`` device is there, the port is free (each an error saying what to do);
an OBS or VTube Studio that does not answer within ``PROBE_TIMEOUT_S`` is a warning (the bridges keep
retrying, so either may be started later). The access token lives in ``<home>/control-token``: created and
printed on the first run; later runs print where it is and how to read it (``--show-token`` prints it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from anchorvoice.engine.cli.common import home_of, make_engine

if TYPE_CHECKING:  # the server and bridge modules load only when `serve` runs
    from anchorvoice.engine.cli.serve_config import ServeConfig
    from anchorvoice.engine.engine import Engine
    from anchorvoice.engine.events import EventSource

PROBE_TIMEOUT_S = 2.0
"""How long the start-up check waits for OBS / VTube Studio to accept a connection."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("serve", help="run the WebSocket control API (and the OBS / VTube Studio bridges)")
    sp.add_argument("--config", default=None, help="server TOML (default: configs/server.toml)")
    sp.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; anything else lets "
                    "other machines connect)")
    sp.add_argument("--port", type=int, default=None, help="TCP port (default from the config, 8765); 0: any free")
    sp.add_argument("--voice", default=None, help="voice selected at start (clients can switch with voice.set)")
    sp.add_argument("--speech-output", default=None,
                    help="where `speak` plays: 'virtual' (default), 'none', 'default' or part of a "
                    "device name")
    sp.add_argument("--obs", default=None, metavar="URL", help="connect to obs-websocket, e.g. ws://127.0.0.1:4455")
    sp.add_argument("--obs-password", default=None, help="obs-websocket password")
    sp.add_argument("--vtube-studio", action="store_true", help="drive the avatar's mouth in VTube Studio")
    sp.add_argument("--show-token", action="store_true", help="print the access token (it is printed on the first "
                    "run only; later runs say where it is kept)")
    sp.add_argument("--duration", type=float, default=None, help="stop after this many seconds (tests)")
    sp.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from anchorvoice.engine.cli.serve_config import load_serve_config

    return asyncio.run(_serve(args, load_serve_config(args)))


async def _serve(args: argparse.Namespace, cfg: ServeConfig) -> int:
    engine = make_engine(args, cfg.store)
    try:
        return await _run(args, cfg, engine)
    finally:
        engine.close()


async def _run(args: argparse.Namespace, cfg: ServeConfig, engine: Engine) -> int:
    from anchorvoice.engine.output_sinks import check_output, output_sink
    from anchorvoice.engine.server.app import ControlServer
    from anchorvoice.engine.server.auth import load_or_create_token, token_path
    from anchorvoice.engine.server.events import EventBus
    from anchorvoice.engine.server.live_adapter import engine_live_factory
    from anchorvoice.engine.server.methods import Controller
    from anchorvoice.engine.server.protocol import is_loopback_host

    loop = asyncio.get_running_loop()
    if cfg.controller.voice is not None:  # VoiceNotFoundError lists the voices there are
        await loop.run_in_executor(None, engine.voices.get, cfg.controller.voice)
    check_output(cfg.speech)
    home = home_of(args)
    token: str | None = None
    created = False
    if cfg.server.auth:
        token, created = load_or_create_token(home)
    bus = EventBus(cfg.server.event_queue)
    sink = output_sink(engine.plugins, cfg.speech)
    ctl = Controller(engine, sink, cfg.controller, live_factory=engine_live_factory(engine, bus), bus=bus)
    server = ControlServer(ctl, cfg.server, token=token)
    await server.start()  # a port in use: ConfigError naming it
    tasks: list[asyncio.Task[Any]] = []
    try:
        url = f"ws://{cfg.server.host}:{server.port}"
        print(f"anchorvoice control API on {url}", flush=True)
        if not is_loopback_host(cfg.server.host):
            print(f"warning: listening on {cfg.server.host}, not only this machine: anyone on the network who has "
                  f"the token can drive your voice through port {server.port}. Use --host 127.0.0.1 unless you "
                  "need that (then keep the port behind a firewall).", file=sys.stderr, flush=True)
        if token is None:
            print("warning: auth is off ([server] auth = false): anyone who can reach the port can drive your voice",
                  file=sys.stderr, flush=True)
        else:
            for line in _token_lines(token_path(home), token, created, args.show_token):
                print(line, flush=True)
            print(f"connect with {url}/?token=TOKEN or send "
                  '{"id": 1, "method": "auth", "params": {"token": "TOKEN"}} first; see docs/control-api.md',
                  flush=True)
        await _warn_unreachable(cfg)
        tasks = await _bridges(cfg, bus)
        stop = asyncio.Event()
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
    return 0


def _token_lines(path: Path, token: str, created: bool, show: bool) -> list[str]:
    """Where the access token is and how to read it; the token itself on the first run or with --show-token."""
    read = f"type {path}" if os.name == "nt" else f"cat {path}"
    if created:
        return [f"created an access token (kept in {path}, readable by you only): {token}"]
    lines = [f"access token: in {path} (read it with `{read}`, or run with --show-token)"]
    if show:
        lines.append(f"token: {token}")
    return lines


async def _warn_unreachable(cfg: ServeConfig) -> None:
    """A bridge whose program does not answer now gets a warning (it keeps retrying, so starting OBS or
    VTube Studio later is fine); each check waits at most PROBE_TIMEOUT_S."""
    checks = []
    if cfg.obs.enabled:
        checks.append(("OBS", cfg.obs.connection.url, "is OBS running, with Tools > WebSocket Server Settings > "
                       "Enable WebSocket server on, and is the port in --obs right?"))
    if cfg.vtube_studio.enabled:
        checks.append(("VTube Studio", cfg.vtube_studio.mouth.url, "is VTube Studio running with its API "
                       "(Settings > Start API) on?"))
    for what, url, hint in checks:
        problem = await probe(url, PROBE_TIMEOUT_S)
        if problem is not None:
            print(f"warning: {what} is not reachable at {url} ({problem}); {hint} The bridge keeps trying and "
                  "connects when it answers.", file=sys.stderr, flush=True)


async def probe(url: str, timeout: float) -> str | None:
    """None when something accepts a TCP connection at ``url``'s host and port within ``timeout`` seconds,
    else why not (a WebSocket handshake is left to the bridge)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if not parts.hostname:
        return "the URL names no host"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


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
