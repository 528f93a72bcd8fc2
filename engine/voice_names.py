"""Voice names: any script, one stored spelling, and the folder each name lives in.

Names may use any script (``安娜``, ``Zoë``, ``Ms Mira``): up to 64 characters, no slashes or control
characters. A plain ASCII name is its own folder; any other name gets a folder derived from it (its ASCII
letters and a hash of the name), so every file system can hold it. ``NAME@N`` names version N.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from anchorvoice.errors import VoiceError

MAX_NAME_CHARS = 64
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Names that are their own folder name (every voice made before names in any script were allowed)."""


def normalize_name(name: str) -> str:
    """The voice name as stored (NFC, outer spaces removed); VoiceError says what a name may hold."""
    n = unicodedata.normalize("NFC", name.strip())
    if not n:
        raise VoiceError("a voice needs a name (any script; up to 64 characters)")
    if len(n) > MAX_NAME_CHARS:
        raise VoiceError(f"voice name {n[:20]!r}... is {len(n)} characters long; use at most {MAX_NAME_CHARS}")
    bad = [c for c in n if c in "/\\" or unicodedata.category(c).startswith("C")]
    if bad or n.startswith("."):
        raise VoiceError(f"invalid voice name {n!r}: no slashes, control characters or leading '.' "
                         "(letters of any script, digits, spaces and punctuation are fine)")
    return n


def folder_name(name: str) -> str:
    """The folder of voice ``name`` (already normalised): the name itself when it is plain ASCII."""
    if _PLAIN_NAME.match(name):
        return name
    ascii_part = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_part = re.sub(r"[^A-Za-z0-9_-]+", "-", ascii_part).strip("-_")[:40]
    digest = hashlib.sha256(name.casefold().encode("utf-8")).hexdigest()[:12]
    return f"{ascii_part or 'voice'}-{digest}"


def split_version(name: str) -> tuple[str, int | None]:
    """``"mira@3"`` -> ("mira", 3); a name without a numeric ``@`` suffix -> (name, None)."""
    base, sep, tail = name.rpartition("@")
    if sep and base and tail.isdigit():
        return base, int(tail)
    return name, None
