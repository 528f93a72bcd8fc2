"""Everything ``anchorvoice serve`` runs with, as one typed config: ``configs/server.toml`` (or ``--config``)
validated by :func:`anchorvoice.engine.config.from_dict`, then the command-line options on top."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from anchorvoice.engine.cli.common import home_of
from anchorvoice.engine.config import from_dict, load_toml
from anchorvoice.engine.engine import default_configs_dir
from anchorvoice.engine.output_sinks import OutputConfig
from anchorvoice.engine.server.app import ServerConfig
from anchorvoice.engine.server.methods import ControllerConfig
from anchorvoice.engine.store.resident import StoreConfig
from anchorvoice.obs_bridge.bridge import BridgeConfig
from anchorvoice.obs_bridge.obs import ObsConfig
from anchorvoice.obs_bridge.vtube import VTubeConfig

SERVER_TOML = "server.toml"
"""The settings file looked up in the configs folder when ``--config`` is not given."""
VTUBE_TOKEN_FILE = "vtube-studio-token"
"""Where VTube Studio's approval is kept, in the user data folder."""


@dataclass
class ObsSettings:
    """The OBS bridge (``[obs]``)."""

    enabled: bool = False
    """Connect to OBS at start (``--obs URL`` turns it on too)."""
    connection: ObsConfig = field(default_factory=ObsConfig)
    """``[obs.connection]``: obs-websocket address, password, encoding, reconnects."""
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    """``[obs.bridge]``: subtitles (``[obs.bridge.subtitle_style]``: font, size and wrap width of a created
    subtitle source), the speaking indicator, the virtual mic's audio source and its mute."""


@dataclass
class VTubeSettings:
    """The avatar's mouth in VTube Studio (``[vtube_studio]``)."""

    enabled: bool = False
    """Drive the mouth at start (``--vtube-studio`` turns it on too)."""
    mouth: VTubeConfig = field(default_factory=VTubeConfig)
    """``[vtube_studio.mouth]``: API address, parameter, loudness range, token file."""


@dataclass
class ServeConfig:
    """All settings of ``anchorvoice serve``."""

    server: ServerConfig = field(default_factory=ServerConfig)
    """``[server]``: the WebSocket listener (address, limits, access token)."""
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    """``[controller]``: default language and voice, speech queue, playback block."""
    speech: OutputConfig = field(default_factory=OutputConfig)
    """``[speech]``: where ``speak`` plays (virtual mic, a device, or nowhere)."""
    obs: ObsSettings = field(default_factory=ObsSettings)
    """``[obs]``: the OBS bridge."""
    vtube_studio: VTubeSettings = field(default_factory=VTubeSettings)
    """``[vtube_studio]``: the VTube Studio mouth."""
    store: StoreConfig = field(default_factory=StoreConfig)
    """``[store]``: how much of the voices' models stays loaded (least recently used unloaded first)."""


def load_serve_config(args: argparse.Namespace) -> ServeConfig:
    """The settings file (errors name it and the key), then the options that override it."""
    path = Path(args.config) if args.config else default_configs_dir() / SERVER_TOML
    data = load_toml(path) if (args.config or path.exists()) else {}
    cfg = from_dict(ServeConfig, data, source=str(path))
    if args.host is not None:
        cfg.server.host = args.host
    if args.port is not None:
        cfg.server.port = args.port
    if args.voice is not None:
        cfg.controller.voice = args.voice
    if args.speech_output is not None:
        cfg.speech.output = args.speech_output
    if args.obs is not None:
        cfg.obs.connection.url, cfg.obs.enabled = args.obs, True
    if args.obs_password is not None:
        cfg.obs.connection.password = args.obs_password
    if args.vtube_studio:
        cfg.vtube_studio.enabled = True
    if cfg.vtube_studio.mouth.token_file is None:
        cfg.vtube_studio.mouth.token_file = home_of(args) / VTUBE_TOKEN_FILE
    cfg.controller.pace = not cfg.speech.plays  # a device paces playback itself
    return cfg
