"""Live subtitles in an OBS text source, and the input kinds OBS uses per platform.

Input kinds (OBS source ids): ``text_ft2_source_v2`` (FreeType 2 text, Linux/macOS),
``text_gdiplus_v3`` (GDI+ text, Windows); both keep the shown string in the ``text`` setting.
Audio capture: ``pulse_input_capture`` (Linux), ``wasapi_input_capture`` (Windows),
``coreaudio_input_capture`` (macOS); all select the device with the ``device_id`` setting.

A created text source gets a readable style instead of OBS's defaults (FreeType: font size 256, no
wrap, so a 640x360 canvas shows "Subti"): a font size and wrap width derived from the canvas
(``GetVideoSettings``) and a bottom-centre position (``SetSceneItemTransform``, alignment 8 =
OBS_ALIGN_BOTTOM, horizontally centred). FreeType wraps at ``custom_width`` with ``word_wrap``;
GDI+ at ``extents_cx`` with ``extents`` and ``extents_wrap``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from anchorvoice.errors import BridgeError, BridgeRequestError
from anchorvoice.obs_bridge.obs import ObsClient, Status

TEXT_KINDS = ("text_ft2_source_v2", "text_gdiplus_v3")
AUDIO_CAPTURE_KINDS = ("pulse_input_capture", "wasapi_input_capture", "coreaudio_input_capture")


def text_kind(platform: str | None = None) -> str:
    return "text_gdiplus_v3" if (platform or sys.platform) == "win32" else "text_ft2_source_v2"


def audio_capture_kind(platform: str | None = None) -> str:
    plat = platform or sys.platform
    if plat == "win32":
        return "wasapi_input_capture"
    if plat == "darwin":
        return "coreaudio_input_capture"
    return "pulse_input_capture"


ALIGN_BOTTOM_CENTRE = 8
"""OBS_ALIGN_BOTTOM (8) without LEFT (1) or RIGHT (2): the position is the item's bottom centre."""


@dataclass
class SubtitleStyle:
    """How a created subtitle source looks, relative to the canvas."""

    font: str = "Sans Serif"
    """Font face."""
    font_size: int = 0
    """Font size in canvas pixels; 0: a twelfth of the canvas height (30 at 360p, 90 at 1080p)."""
    width: float = 0.9
    """Wrap width as a fraction of the canvas width."""
    bottom_margin: float = 0.05
    """Gap between the text's bottom and the canvas's, as a fraction of the canvas height."""

    def size_for(self, height: int) -> int:
        return self.font_size if self.font_size > 0 else max(8, round(height / 12))

    def settings(self, kind: str, width: int, height: int) -> dict[str, Any]:
        """Input settings that make ``kind`` readable on a ``width`` x ``height`` canvas."""
        size, wrap = self.size_for(height), max(16, round(width * self.width))
        if kind == "text_gdiplus_v3":
            return {"text": "", "font": {"face": self.font, "size": size}, "align": "center", "valign": "bottom",
                    "extents": True, "extents_wrap": True, "extents_cx": wrap, "extents_cy": size * 3}
        return {"text": "", "font": {"face": self.font, "size": size, "style": "Regular", "flags": 0},
                "word_wrap": True, "custom_width": wrap}

    def transform(self, width: int, height: int) -> dict[str, Any]:
        return {"alignment": ALIGN_BOTTOM_CENTRE, "positionX": width / 2,
                "positionY": height * (1 - self.bottom_margin)}


async def canvas_size(client: ObsClient) -> tuple[int, int]:
    """OBS's base (canvas) resolution."""
    data = await client.request("GetVideoSettings")
    return int(data["baseWidth"]), int(data["baseHeight"])


def fit_line(text: str, max_chars: int) -> str:
    """Keep the subtitle readable: collapse whitespace; long sentences keep their end (the newest words)."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    return "…" + text[-(max_chars - 1):]


async def current_scene(client: ObsClient, configured: str | None) -> str:
    if configured:
        return configured
    data = await client.request("GetCurrentProgramScene")
    return str(data.get("currentProgramSceneName") or data.get("sceneName"))


class Subtitles:
    """Writes the sentence being spoken into one text source and clears it afterwards."""

    def __init__(self, client: ObsClient, source: str, *, create: bool = False, scene: str | None = None,
                 max_chars: int = 120, platform: str | None = None, style: SubtitleStyle | None = None) -> None:
        self.client = client
        self.style = style or SubtitleStyle()
        self.source = source
        self.create = create
        self.scene = scene
        self.max_chars = max_chars
        self.platform = platform
        self.shown = ""

    async def ensure(self) -> str:
        """Check the text source exists (create it when allowed): "found" or "created"; BridgeError says what to do."""
        try:
            data = await self.client.request("GetInputSettings", {"inputName": self.source})
        except BridgeRequestError as exc:
            if exc.code != Status.RESOURCE_NOT_FOUND:
                raise
            if not self.create:
                raise BridgeError(
                    f"OBS has no text source named {self.source!r}: add a Text source with that name, or set "
                    "create_subtitle_source = true in [obs.bridge] to let anchorvoice create it"
                ) from None
            await self._create()
            return "created"
        kind = data.get("inputKind")
        if kind not in TEXT_KINDS:
            raise BridgeError(f"OBS source {self.source!r} is a {kind}, not a text source; choose a Text source")
        return "found"

    async def _create(self) -> None:
        scene = await current_scene(self.client, self.scene)
        width, height = await canvas_size(self.client)
        kind = text_kind(self.platform)
        try:
            created = await self.client.request("CreateInput", {
                "sceneName": scene, "inputName": self.source, "inputKind": kind,
                "inputSettings": self.style.settings(kind, width, height), "sceneItemEnabled": True,
            })
        except BridgeRequestError as exc:
            if exc.code == Status.INVALID_INPUT_KIND:
                raise BridgeError(f"OBS has no {kind} text sources ({exc}); if OBS runs on another system than "
                                  "anchorvoice, set platform in [obs.bridge]") from None
            raise
        await self.client.request("SetSceneItemTransform", {
            "sceneName": scene, "sceneItemId": int(created["sceneItemId"]),
            "sceneItemTransform": self.style.transform(width, height),
        })

    async def show(self, text: str) -> None:
        line = fit_line(text, self.max_chars)
        await self.client.request("SetInputSettings", {
            "inputName": self.source, "inputSettings": {"text": line}, "overlay": True,
        })
        self.shown = line

    async def clear(self) -> None:
        await self.show("")
