"""Live subtitles in an OBS text source, and the input kinds OBS uses per platform.

Input kinds (OBS source ids): ``text_ft2_source_v2`` (FreeType 2 text, Linux/macOS),
``text_gdiplus_v3`` (GDI+ text, Windows); both keep the shown string in the ``text`` setting.
Audio capture: ``pulse_input_capture`` (Linux), ``wasapi_input_capture`` (Windows),
``coreaudio_input_capture`` (macOS); all select the device with the ``device_id`` setting.
"""

from __future__ import annotations

import sys

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
                 max_chars: int = 120, platform: str | None = None) -> None:
        self.client = client
        self.source = source
        self.create = create
        self.scene = scene
        self.max_chars = max_chars
        self.platform = platform
        self.shown = ""

    async def ensure(self) -> None:
        """Check the text source exists (create it when allowed); raise BridgeError saying what to do."""
        try:
            data = await self.client.request("GetInputSettings", {"inputName": self.source})
        except BridgeRequestError as exc:
            if exc.code != Status.RESOURCE_NOT_FOUND:
                raise
            if not self.create:
                raise BridgeError(
                    f"OBS has no text source named {self.source!r}: add a Text source with that name, or run "
                    "with subtitles create = true in [obs] to let anchorvoice create it"
                ) from None
            scene = await current_scene(self.client, self.scene)
            await self.client.request("CreateInput", {
                "sceneName": scene, "inputName": self.source, "inputKind": text_kind(self.platform),
                "inputSettings": {"text": ""}, "sceneItemEnabled": True,
            })
            return
        kind = data.get("inputKind")
        if kind not in TEXT_KINDS:
            raise BridgeError(f"OBS source {self.source!r} is a {kind}, not a text source; choose a Text source")

    async def show(self, text: str) -> None:
        line = fit_line(text, self.max_chars)
        await self.client.request("SetInputSettings", {
            "inputName": self.source, "inputSettings": {"text": line}, "overlay": True,
        })
        self.shown = line

    async def clear(self) -> None:
        await self.show("")
