"""The real-time hub: one in-process, asyncio publish/subscribe over WebSocket connections.

Widgets subscribe to their conversation (`visitor:<id>`), consoles to their agent channel, their organisation and
the conversations they watch (see conversations/events.py). Events are published only after the transaction that
produced them committed. Each subscriber has a bounded queue drained by its own sender task: a client that stops
reading is disconnected (it resumes from the database when it reconnects) instead of slowing everyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from appliance.conversations.events import Event
from appliance.metrics import HttpMetrics

log = logging.getLogger("appliance.hub")

QUEUE_FRAMES = 1000


class Subscriber:
    def __init__(self, websocket: WebSocket, hub: Hub, kind: str) -> None:
        self.websocket = websocket
        self.hub = hub
        self.kind = kind
        if hub.metrics is not None:
            hub.metrics.sockets.labels(kind).inc()
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_FRAMES)
        self.channels: set[str] = set()
        self.closed = False

    def push(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("slow client disconnected", extra={"fields": {"channels": len(self.channels)}})
            if self.hub.metrics is not None:
                self.hub.metrics.slow_clients.inc()
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub.unsubscribe(self)
            if self.hub.metrics is not None:
                self.hub.metrics.sockets.labels(self.kind).dec()
            try:
                self.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass

    async def run_sender(self) -> None:
        try:
            while True:
                frame = await self.queue.get()
                if frame is None:
                    break
                await self.websocket.send_json(frame)
                if self.hub.metrics is not None:
                    self.hub.metrics.frames.labels("out").inc()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self.close()


class Hub:
    def __init__(self, metrics: HttpMetrics | None = None) -> None:
        self.metrics = metrics
        self._channels: dict[str, set[Subscriber]] = defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.published = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the sockets run on (set at start-up; a server without a lifespan sets it on first connect)."""
        if self.loop is None or self.loop.is_closed():
            self.loop = loop

    def subscribe(self, subscriber: Subscriber, channel: str) -> None:
        self._channels[channel].add(subscriber)
        subscriber.channels.add(channel)

    def unsubscribe(self, subscriber: Subscriber, channel: str | None = None) -> None:
        for name in [channel] if channel is not None else list(subscriber.channels):
            members = self._channels.get(name)
            if members is not None:
                members.discard(subscriber)
                if not members:
                    del self._channels[name]
            subscriber.channels.discard(name)

    def subscribers(self, channel: str) -> int:
        return len(self._channels.get(channel, ()))

    def publish(self, events: Iterable[Event]) -> None:
        """On the event loop: push each event once to every subscriber of any of its channels."""
        for event in events:
            reached: set[Subscriber] = set()
            for channel in event.channels:
                reached |= self._channels.get(channel, set())
            for subscriber in reached:
                subscriber.push(event.frame)
            self.published += 1

    def publish_threadsafe(self, events: list[Event]) -> None:
        """From a worker thread (a sync route, a task): hand the events to the loop."""
        if not events:
            return
        loop = self.loop
        if loop is None or loop.is_closed():
            return  # no loop runs (a one-shot command): nobody can be subscribed
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.publish(events)
        else:
            loop.call_soon_threadsafe(self.publish, events)
