"""The OBS bridge: engine events -> subtitles, mute, speaking indicator; audio source set-up.

It reads the engine's event bus through its own bounded drop-oldest subscription, so a slow or
absent OBS never reaches back into the audio path: requests happen here, on the event loop.
Events are handled one at a time, so OBS receives subtitle updates in speaking order.

Each feature (connection, subtitles, audio source, mute, speaking item) has its own state: a failure
publishes one ``degraded`` event when that feature's problem appears or changes, and an ``obs.state``
event carries the whole state whenever it changes. The bridge registers itself with the event source
as the ``obs`` part of ``status``, and a new subscriber is replayed the current state.

Real OBS numbers scene items per scene, so the speaking item is looked up by name in the current
program scene (followed through ``CurrentProgramSceneChanged``), never reused across scenes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from anchorvoice.engine.events import EventSource
from anchorvoice.errors import BridgeError, BridgeRequestError
from anchorvoice.obs_bridge.obs import ObsClient, Status
from anchorvoice.obs_bridge.subtitles import (
    AUDIO_CAPTURE_KINDS,
    Subtitles,
    SubtitleStyle,
    audio_capture_kind,
    current_scene,
)

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
    """Longest subtitle text; longer sentences show their newest words."""
    subtitle_style: SubtitleStyle = field(default_factory=SubtitleStyle)
    """``[obs.bridge.subtitle_style]``: font, size and wrap width of a created subtitle source."""
    audio_source: str | None = None
    """Audio input capture source for the engine's virtual microphone; None: not managed."""
    mic_device: str | None = None
    """Device id of the virtual mic as OBS lists it (Pulse source name, WASAPI/CoreAudio id)."""
    create_audio_source: bool = False
    """Create the audio capture source when it does not exist."""
    scene: str | None = None
    """Scene to create sources in and to find the speaking item in; None: the current program scene."""
    speaking_item: str | None = None
    """Scene item (source name) shown while speaking and hidden afterwards, looked up by name in the current
    program scene (or ``scene``); None: unused."""
    platform: str | None = None
    """Override sys.platform when choosing input kinds (OBS may run on another machine)."""


FEATURES = ("connection", "subtitles", "audio source", "mute", "speaking item")
"""What the bridge reports a state for, in ``problems`` and ``degraded`` events (``feature``)."""


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
                      max_chars=c.max_chars, platform=c.platform, style=c.subtitle_style)
            if c.subtitle_source else None
        )
        self.muted = False
        """The engine's mute state; the engine starts unmuted and its state is pushed to OBS at every connect."""
        self.speaking_text = ""
        self.problems: dict[str, str] = {}
        """Feature -> what is wrong with it now (features that work are absent)."""
        self.sources: dict[str, str] = {}
        """Source name -> "found" or "created" at the last connect."""
        self.obs_version: str | None = None
        self.scene: str | None = None
        """OBS's current program scene, as last seen."""
        self.last_error: str | None = None
        self._item_ids: dict[str, int] = {}
        self._shown_in: str | None = None
        self._item_lock = asyncio.Lock()
        self._clear_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        client.on_connect = self.setup
        client.on_down = self._on_down
        client.on_event = self._on_obs_event
        bus.add_state("obs", self)

    # -- state: status part, events, replay -----------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The ``obs`` part of the control API's ``status`` (and the ``obs.state`` event's data)."""
        return {
            "connected": self.client.connected.is_set(), "url": self.client.config.url,
            "obs_version": self.obs_version, "websocket_version": self.client.websocket_version,
            "scene": self.scene, "sources": dict(self.sources), "problems": dict(self.problems),
            "last_error": self.last_error,
        }

    def replay(self) -> list[tuple[str, dict[str, Any]]]:
        """Events that bring a new subscriber up to date: the state, and one ``degraded`` per current problem."""
        return [("obs.state", self.status()), *(("degraded", _degraded(f, m)) for f, m in self.problems.items())]

    def _fail(self, feature: str, message: str) -> None:
        self.last_error = f"OBS {feature}: {message}"
        if self.problems.get(feature) == message:
            return
        self.problems[feature] = message
        log.warning("%s", self.last_error)
        self.bus.publish("degraded", _degraded(feature, message))
        self.bus.publish("obs.state", self.status())

    def _ok(self, feature: str) -> None:
        if self.problems.pop(feature, None) is not None:
            log.info("OBS %s works again", feature)
            self.bus.publish("obs.state", self.status())

    async def _apply(self, feature: str, coro: Any) -> bool:
        """Run one request sequence for ``feature`` and record whether it worked.

        While OBS is away, failures are the connection's problem, not the feature's (no event per update).
        """
        try:
            await coro
        except BridgeError as exc:
            if self.client.connected.is_set():
                self._fail(feature, str(exc))
            return False
        self._ok(feature)
        return True

    def _on_down(self, reason: str) -> None:
        self._fail("connection", f"{reason}; reconnecting")

    # -- set-up on every (re)connect -------------------------------------------------------------
    async def setup(self) -> None:
        self._item_ids.clear()
        self._shown_in = None
        self.sources = {}
        self.problems.pop("connection", None)
        try:
            self.obs_version = str((await self.client.request("GetVersion")).get("obsVersion"))
            self.scene = await current_scene(self.client, None)
        except BridgeError as exc:
            self._fail("connection", str(exc))
            return
        if self.subtitles is not None:
            await self._apply("subtitles", self._setup_subtitles(self.subtitles))
        if self.config.audio_source:
            if await self._apply("audio source", self._ensure_audio_source()):
                await self._apply("mute", self._set_mute(self.muted))  # the engine's state wins
            else:
                self.problems.pop("mute", None)
        if self.config.speaking_item:
            await self._apply("speaking item", self._set_speaking(bool(self.speaking_text)))
        self.bus.publish("obs.state", self.status())

    async def _setup_subtitles(self, subtitles: Subtitles) -> None:
        self.sources[subtitles.source] = await subtitles.ensure()
        await subtitles.show(self.speaking_text)

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
                    "virtual microphone, or set create_audio_source = true in [obs.bridge]"
                ) from None
            scene = await current_scene(self.client, self.config.scene)
            await self.client.request("CreateInput", {
                "sceneName": scene, "inputName": name, "inputKind": audio_capture_kind(self.config.platform),
                "inputSettings": {"device_id": device} if device else {}, "sceneItemEnabled": True,
            })
            self.sources[name] = "created"
            return
        kind = data.get("inputKind")
        if kind not in AUDIO_CAPTURE_KINDS:
            raise BridgeError(
                f"OBS source {name!r} is a {kind}, not an audio input capture, so it cannot be muted: set "
                "audio_source in [obs.bridge] to an Audio Input Capture's name (or a new name with "
                "create_audio_source = true)"
            )
        self.sources[name] = "found"
        # GetInputSettings leaves out settings at their default ("default" for the device), so absent != device
        if device and data.get("inputSettings", {}).get("device_id") != device:
            await self.client.request("SetInputSettings", {
                "inputName": name, "inputSettings": {"device_id": device}, "overlay": True,
            })

    async def _set_mute(self, muted: bool) -> None:
        await self.client.request("SetInputMute", {"inputName": self.config.audio_source, "inputMuted": muted})

    async def _item_id(self, scene: str) -> int:
        if scene not in self._item_ids:
            try:
                data = await self.client.request("GetSceneItemId", {"sceneName": scene,
                                                                    "sourceName": self.config.speaking_item})
            except BridgeRequestError as exc:
                if exc.code != Status.RESOURCE_NOT_FOUND:
                    raise
                raise BridgeError(f"scene {scene!r} has no item {self.config.speaking_item!r}: add the source to "
                                  "that scene, or set scene in [obs.bridge] to the scene that has it") from None
            self._item_ids[scene] = int(data["sceneItemId"])
        return self._item_ids[scene]

    async def _enable(self, scene: str, on: bool) -> None:
        item = await self._item_id(scene)
        try:
            await self.client.request("SetSceneItemEnabled", {"sceneName": scene, "sceneItemId": item,
                                                              "sceneItemEnabled": on})
        except BridgeRequestError as exc:  # the item was removed and added again: new id
            if exc.code != Status.RESOURCE_NOT_FOUND:
                raise
            self._item_ids.pop(scene, None)
            await self.client.request("SetSceneItemEnabled", {"sceneName": scene, "sceneItemId":
                                                              await self._item_id(scene), "sceneItemEnabled": on})

    async def _set_speaking(self, on: bool) -> None:
        """Show or hide the speaking item in the current scene (and hide it where it was shown before)."""
        async with self._item_lock:
            scene = self.config.scene or self.scene or await current_scene(self.client, None)
            if self._shown_in is not None and self._shown_in != scene:
                old, self._shown_in = self._shown_in, None
                try:
                    await self._enable(old, False)
                except BridgeError as exc:
                    log.info("could not hide %r in %r: %s", self.config.speaking_item, old, exc)
            await self._enable(scene, on)
            self._shown_in = scene if on else None

    # -- OBS events ----------------------------------------------------------------------------
    def _on_obs_event(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type != "CurrentProgramSceneChanged":
            return
        self.scene = str(data.get("sceneName"))
        self.bus.publish("obs.state", self.status())
        if self.config.speaking_item and not self.config.scene:
            self._spawn(self._apply("speaking item", self._set_speaking(bool(self.speaking_text))))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            for task in [self._clear_task, *self._tasks]:
                if task is not None:
                    task.cancel()

    async def handle(self, name: str, data: dict[str, Any]) -> None:
        if name == "speaking.started":
            if self._clear_task is not None:
                self._clear_task.cancel()
                self._clear_task = None
            self.speaking_text = str(data.get("text", ""))
            if self.subtitles is not None:
                await self._apply("subtitles", self.subtitles.show(self.speaking_text))
            if self.config.speaking_item:
                await self._apply("speaking item", self._set_speaking(True))
        elif name == "speaking.stopped":
            self._clear_task = asyncio.get_running_loop().create_task(self._clear_later())
        elif name == "mute.changed":
            self.muted = bool(data.get("muted"))
            if self.config.audio_source and "audio source" not in self.problems:
                await self._apply("mute", self._set_mute(self.muted))

    async def _clear_later(self) -> None:
        await asyncio.sleep(self.config.clear_after_s)
        self.speaking_text = ""
        if self.subtitles is not None:
            await self._apply("subtitles", self.subtitles.clear())
        if self.config.speaking_item:
            await self._apply("speaking item", self._set_speaking(False))


def _degraded(feature: str, message: str) -> dict[str, Any]:
    return {"source": "obs", "feature": feature, "message": f"OBS {feature}: {message}"}
