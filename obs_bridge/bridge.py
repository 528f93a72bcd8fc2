"""The OBS bridge: engine events -> subtitles, mute, speaking indicator; audio source set-up.

It reads the engine's event bus through its own bounded drop-oldest subscription, so a slow or
absent OBS never reaches back into the audio path: requests happen here, on the event loop,
and failures become ``degraded`` events (published once per state change, not per message).
Events are handled one at a time, so OBS receives subtitle updates in speaking order.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from anchorvoice.engine.events import EventSource
from anchorvoice.errors import BridgeError, BridgeRequestError
from anchorvoice.obs_bridge.obs import ObsClient, Status
from anchorvoice.obs_bridge.subtitles import AUDIO_CAPTURE_KINDS, Subtitles, audio_capture_kind, current_scene

log = logging.getLogger("anchorvoice.obs")


@dataclass
class BridgeConfig:
    """What the bridge does in OBS (``[obs.bridge]`` in configs/server.toml)."""

    subtitle_source: str | None = "anchorvoice subtitles"
    """Text source that shows the sentence being spoken; None disables subtitles."""
    create_subtitle_source: bool = False
    """Create the text source in the scene when it does not exist (otherwise: an error saying so)."""
    clear_after_s: float = 1.0
    """Seconds the last sentence stays up after speech stops."""
    max_chars: int = 120
    """Longest subtitle line; longer sentences show their newest words."""
    audio_source: str | None = None
    """Audio input capture source for the engine's virtual microphone; None: not managed."""
    mic_device: str | None = None
    """Device id of the virtual mic as OBS lists it (Pulse source name, WASAPI/CoreAudio id)."""
    create_audio_source: bool = False
    """Create the audio capture source when it does not exist."""
    scene: str | None = None
    """Scene to create sources in and to find the speaking item in; None: the current program scene."""
    speaking_item: str | None = None
    """Scene item (source name) shown while speaking and hidden afterwards; None: unused."""
    platform: str | None = None
    """Override sys.platform when choosing input kinds (OBS may run on another machine)."""


class ObsBridge:
    """Couples an :class:`ObsClient` to the engine's events (any :class:`EventSource`)."""

    EVENTS = ("speaking.started", "speaking.stopped", "mute.changed")

    def __init__(self, client: ObsClient, bus: EventSource, config: BridgeConfig | None = None) -> None:
        self.client = client
        self.bus = bus
        self.config = config or BridgeConfig()
        c = self.config
        self.subtitles = (
            Subtitles(client, c.subtitle_source, create=c.create_subtitle_source, scene=c.scene,
                      max_chars=c.max_chars, platform=c.platform)
            if c.subtitle_source else None
        )
        self.muted: bool | None = None
        self.speaking_text = ""
        self.problems: list[str] = []
        """Set-up problems from the last connect (also published as degraded events)."""
        self._item_id: int | None = None
        self._clear_task: asyncio.Task[None] | None = None
        self._degraded = False
        client.on_connect = self.setup

    # -- set-up on every (re)connect -------------------------------------------------------------
    async def setup(self) -> None:
        self.problems = []
        self._item_id = None
        self._degraded = False
        if self.subtitles is not None:
            await self._try("subtitles", self.subtitles.ensure())
            await self._try("subtitles", self.subtitles.show(self.speaking_text))
        if self.config.audio_source:
            await self._try("audio source", self._ensure_audio_source())
            if self.muted is not None:
                await self._try("mute", self._set_mute(self.muted))
        if self.config.speaking_item:
            await self._try("speaking item", self._set_speaking(bool(self.speaking_text)))

    async def _try(self, what: str, coro: Any) -> None:
        try:
            await coro
        except BridgeError as exc:
            msg = f"OBS {what}: {exc}"
            self.problems.append(msg)
            self.bus.publish("degraded", {"source": "obs", "message": msg})
            log.warning("%s", msg)

    async def _ensure_audio_source(self) -> None:
        name = self.config.audio_source
        assert name is not None
        device = self.config.mic_device
        try:
            data = await self.client.request("GetInputSettings", {"inputName": name})
        except BridgeRequestError as exc:
            if exc.code != Status.RESOURCE_NOT_FOUND:
                raise
            if not self.config.create_audio_source:
                raise BridgeError(
                    f"OBS has no audio source named {name!r}: add an Audio Input Capture for the anchorvoice "
                    "virtual microphone, or set create_audio_source = true in [obs]"
                ) from None
            scene = await current_scene(self.client, self.config.scene)
            await self.client.request("CreateInput", {
                "sceneName": scene, "inputName": name, "inputKind": audio_capture_kind(self.config.platform),
                "inputSettings": {"device_id": device} if device else {}, "sceneItemEnabled": True,
            })
            return
        kind = data.get("inputKind")
        if kind not in AUDIO_CAPTURE_KINDS:
            raise BridgeError(f"OBS source {name!r} is a {kind}, not an audio input capture")
        if device and data.get("inputSettings", {}).get("device_id") != device:
            await self.client.request("SetInputSettings", {
                "inputName": name, "inputSettings": {"device_id": device}, "overlay": True,
            })

    async def _set_mute(self, muted: bool) -> None:
        await self.client.request("SetInputMute", {"inputName": self.config.audio_source, "inputMuted": muted})

    async def _set_speaking(self, on: bool) -> None:
        scene = await current_scene(self.client, self.config.scene)
        if self._item_id is None:
            data = await self.client.request("GetSceneItemId", {"sceneName": scene,
                                                                "sourceName": self.config.speaking_item})
            self._item_id = int(data["sceneItemId"])
        await self.client.request("SetSceneItemEnabled", {"sceneName": scene, "sceneItemId": self._item_id,
                                                          "sceneItemEnabled": on})

    # -- event loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Consume engine events until cancelled."""
        sub = self.bus.subscribe(self.EVENTS)
        try:
            while True:
                ev = await sub.get()
                await self.handle(ev.name, ev.data)
        finally:
            self.bus.unsubscribe(sub)
            if self._clear_task is not None:
                self._clear_task.cancel()

    async def handle(self, name: str, data: dict[str, Any]) -> None:
        if name == "speaking.started":
            if self._clear_task is not None:
                self._clear_task.cancel()
                self._clear_task = None
            self.speaking_text = str(data.get("text", ""))
            if self.subtitles is not None:
                await self._live("subtitles", self.subtitles.show(self.speaking_text))
            if self.config.speaking_item:
                await self._live("speaking item", self._set_speaking(True))
        elif name == "speaking.stopped":
            self._clear_task = asyncio.get_running_loop().create_task(self._clear_later())
        elif name == "mute.changed":
            self.muted = bool(data.get("muted"))
            if self.config.audio_source:
                await self._live("mute", self._set_mute(self.muted))

    async def _clear_later(self) -> None:
        await asyncio.sleep(self.config.clear_after_s)
        self.speaking_text = ""
        if self.subtitles is not None:
            await self._live("subtitles", self.subtitles.clear())
        if self.config.speaking_item:
            await self._live("speaking item", self._set_speaking(False))

    async def _live(self, what: str, coro: Any) -> None:
        """Run one live update; report the first failure of a streak as a degraded event."""
        try:
            await coro
            self._degraded = False
        except BridgeError as exc:
            if not self._degraded:
                self._degraded = True
                self.bus.publish("degraded", {"source": "obs", "message": f"OBS {what}: {exc}"})
