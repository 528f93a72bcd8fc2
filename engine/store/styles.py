"""Styles: a voice's extra references, each tagged (emotion, energy, pace, free tags), picked per request.

In the manifest::

    [styles.excited]
    reference = "refs/9f2c....wav"      # a clip in the voice folder
    text = "We won! I can't believe it!" # its transcript (the GPT-SoVITS prompt text)
    lang = "en"
    tags = ["excited", "energy:high", "pace:fast"]

``speak --style excited`` (and the control API's ``style``) picks the style of that name, else the first
style (by name) with that tag, where ``fast`` also matches ``pace:fast``; anything else falls back to the
voice's default reference, and the choice is reported. Tags come from the user, or from the plugins'
``tag_reference`` hook (the built-in one measures prosody: see :mod:`anchorvoice.plugins.dsp.prosody_tags`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STYLE = "default"
"""What a request without a style, or with one the voice lacks, is spoken with: the first reference."""


@dataclass(frozen=True)
class Style:
    """One tagged reference of a voice."""

    name: str
    """The style's name (``excited``)."""
    reference: Path
    """Its clip, inside the voice folder."""
    text: str = ""
    """Transcript of the clip."""
    lang: str = "en"
    """Language of ``text``."""
    tags: tuple[str, ...] = field(default_factory=tuple)
    """Free tags and ``key:value`` tags (``energy:high``, ``pace:fast``, ``pitch:wide``)."""

    def matches(self, wanted: str) -> bool:
        w = wanted.casefold()
        return any(t.casefold() == w or t.casefold().split(":", 1)[-1] == w for t in self.tags)


def parse_styles(folder: Path, data: Any) -> dict[str, Style]:
    """Styles from a manifest's ``styles`` table (ValueError for a malformed one)."""
    out: dict[str, Style] = {}
    for name, s in dict(data or {}).items():
        ref = str(s["reference"])
        if Path(ref).is_absolute() or ".." in Path(ref).parts:
            raise ValueError(f"style {name!r}: its reference leaves the voice folder")
        out[str(name)] = Style(str(name), folder / ref, str(s.get("text", "")), str(s.get("lang", "en")),
                               tuple(str(t) for t in s.get("tags", [])))
    return out


def dump_styles(folder: Path, styles: dict[str, Style]) -> dict[str, Any]:
    return {n: {"reference": s.reference.relative_to(folder).as_posix(), "text": s.text, "lang": s.lang,
                "tags": list(s.tags)} for n, s in sorted(styles.items())}


def pick_style(styles: dict[str, Style], wanted: str | None) -> Style | None:
    """The style ``wanted`` names or tags; None: the default reference."""
    if not wanted or wanted == DEFAULT_STYLE:
        return None
    if wanted in styles:
        return styles[wanted]
    return next((styles[n] for n in sorted(styles) if styles[n].matches(wanted)), None)
