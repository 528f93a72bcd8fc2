"""Where anchorvoice keeps a user's data (voices, access tokens): one function, read at call time.

``ANCHORVOICE_HOME`` wins; otherwise the platform's per-user data folder: ``$XDG_DATA_HOME/anchorvoice``
(else ``~/.local/share/anchorvoice``) on Linux and other Unixes, ``~/Library/Application Support/anchorvoice``
on macOS, ``%APPDATA%\\anchorvoice`` (else ``~\\AppData\\Roaming\\anchorvoice``) on Windows. The environment and
``sys.platform`` are read on every call, never at import time, so tests and ``--home`` can point elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_FOLDER = "anchorvoice"


def user_data_dir() -> Path:
    """The user's anchorvoice data folder (not created here)."""
    override = os.environ.get("ANCHORVOICE_HOME")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        base = Path(appdata) if appdata else Path.home() / "AppData" / "Roaming"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / APP_FOLDER
