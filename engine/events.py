"""The engine's event interface: the event names, the event record, and what a subscriber sees.

Whoever publishes engine events (the control server's ``EventBus``) implements :class:`EventSource`;
whoever follows them (the OBS bridge, the VTube Studio mouth) depends only on this module, never on
the server's. A subscription is a bounded queue read with ``await get()``; a slow subscriber loses
its oldest events, never slows the publisher down.

A follower with a state of its own (the OBS bridge) registers it as a :class:`StatePart` with
``add_state``: it then appears in the control API's ``status`` under its name, and a new subscriber
is first sent the part's ``replay()`` events (those it subscribed to), so it sees problems that
happened before it connected.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

EVENT_NAMES: frozenset[str] = frozenset(
    {
        "speaking.started",
        "speaking.stopped",
        "levels",
        "latency",
        "error",
        "degraded",
        "voice.changed",
        "params.changed",
        "mute.changed",
        "live.started",
        "live.stopped",
        "obs.state",
    }
)
"""Every event the engine publishes; subscribing to other names is refused so typos are caught."""


def check_event_names(names: Iterable[str]) -> None:
    """Raise ValueError naming the first unknown event."""
    unknown = sorted(set(names) - EVENT_NAMES)
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; events: {', '.join(sorted(EVENT_NAMES))}")


@dataclass
class Event:
    """One published event."""

    name: str
    """One of EVENT_NAMES."""
    data: dict[str, Any]
    """JSON-serialisable payload."""
    time: float = field(default_factory=time.time)
    """Wall-clock seconds when published."""


class EventStream(Protocol):
    """One subscriber's events, oldest first."""

    async def get(self) -> Event:
        """The next event (waits for one)."""
        ...


class StatePart(Protocol):
    """A state kept by an event follower (a bridge), shown in ``status`` and replayed to new subscribers."""

    def status(self) -> dict[str, Any]:
        """JSON-serialisable state, the part of ``status`` under the name it was added with."""
        ...

    def replay(self) -> list[tuple[str, dict[str, Any]]]:
        """(event name, data) pairs that bring a new subscriber up to date."""
        ...


class EventSource(Protocol):
    """Where engine events come from; call on the event loop thread."""

    def subscribe(self, names: Iterable[str]) -> EventStream:
        """Follow the events called ``names`` (ValueError for a name not in EVENT_NAMES)."""
        ...

    def unsubscribe(self, stream: EventStream) -> None:
        """Stop following; the stream gets no more events."""
        ...

    def publish(self, name: str, data: dict[str, Any]) -> None:
        """Send an event to every subscriber of ``name`` (bridges report ``degraded`` this way)."""
        ...

    def add_state(self, name: str, part: StatePart) -> None:
        """Show ``part`` in ``status`` as ``name`` and replay its state to each new subscriber."""
        ...
