"""Event bus: publish engine events to subscribers through bounded, drop-oldest queues.

``EventBus`` implements :class:`anchorvoice.engine.events.EventSource` (the interface the bridges see).

A slow WebSocket client (or an OBS connection that is reconnecting) must never slow the engine
down or grow memory without bound, so every subscriber has a queue of ``maxsize`` events; when it
is full the oldest event is dropped and counted (``Subscription.dropped``). Levels arrive about
20 times a second, so the newest state is the useful one and dropping the oldest is the right
policy (STYLE.md rule 8).

``publish`` must be called on the event loop thread; other threads (the audio path) use
``publish_threadsafe``, which only schedules the call and never blocks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any

from anchorvoice.engine.events import EVENT_NAMES, Event, EventStream, StatePart, check_event_names


class Subscription:
    """One subscriber's filter and queue. Read with ``await get()``."""

    def __init__(self, names: Iterable[str], maxsize: int) -> None:
        self.names: set[str] = set(names)
        self.maxsize = maxsize
        self.dropped = 0
        """Events discarded because this subscriber fell behind."""
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def wants(self, name: str) -> bool:
        return name in self.names

    def put(self, event: Event) -> None:
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    async def get(self) -> Event:
        """Next event (waits). Raises ``asyncio.CancelledError`` if cancelled while waiting."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def pending(self) -> int:
        return len(self._queue)


class EventBus:
    """Fan-out of events to subscriptions."""

    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._subs: list[Subscription] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._parts: dict[str, StatePart] = {}

    def add_state(self, name: str, part: StatePart) -> None:
        """Show ``part`` in ``status`` as ``name``; new subscribers get its ``replay()`` events first."""
        self._parts[name] = part

    def states(self) -> dict[str, Any]:
        """The registered parts of ``status``, by name."""
        return {name: part.status() for name, part in self._parts.items()}

    def replay_to(self, sub: Subscription, names: Iterable[str]) -> None:
        """Queue the registered parts' current-state events named in ``names`` for ``sub``."""
        wanted = set(names)
        for part in self._parts.values():
            for name, data in part.replay():
                if name in wanted:
                    sub.put(Event(name, data))

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop that ``publish_threadsafe`` schedules onto."""
        self._loop = loop

    def subscribe(self, names: Iterable[str]) -> Subscription:
        names = set(names)
        check_event_names(names)
        sub = Subscription(names, self.queue_size)
        self._subs.append(sub)
        self.replay_to(sub, names)
        return sub

    def unsubscribe(self, stream: EventStream) -> None:
        if isinstance(stream, Subscription):
            stream.closed = True
            if stream in self._subs:
                self._subs.remove(stream)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name!r}")
        event = Event(name, data)
        for sub in self._subs:
            if sub.wants(name):
                sub.put(event)

    def publish_threadsafe(self, name: str, data: dict[str, Any]) -> None:
        """From any thread: schedule ``publish`` on the bound loop (never blocks the caller)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # no loop running: nobody can be subscribed
        loop.call_soon_threadsafe(self.publish, name, data)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
