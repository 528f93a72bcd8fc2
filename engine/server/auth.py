"""Access tokens for the control API: created once, stored in the user data directory, compared safely.

The token guards a local port that can make the streamer's voice say anything, so it is random
(32 bytes from :mod:`secrets`, URL-safe), stored with owner-only permissions, and compared with
:func:`hmac.compare_digest` so response timing does not leak it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from anchorvoice.engine.paths import user_data_dir
from anchorvoice.errors import ConfigError

TOKEN_FILE = "control-token"
TOKEN_BYTES = 32
"""256 bits: the same strength as the secrets module's own default recommendation for tokens."""


def token_path(data_dir: Path | None = None) -> Path:
    return (data_dir or user_data_dir()) / TOKEN_FILE


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def load_or_create_token(data_dir: Path | None = None) -> tuple[str, bool]:
    """The stored token, creating it on first run. Returns ``(token, created)``."""
    path = token_path(data_dir)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise ConfigError(
                f"the access token file is empty or too short; delete it to get a new token: {path}",
                source=str(path),
            )
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    # O_EXCL: two servers starting at once must not write two different tokens.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, True


def check_token(expected: str | None, given: object) -> bool:
    """True when auth is off (``expected`` None) or ``given`` equals the token."""
    if expected is None:
        return True
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
