"""`/ws/events`: every engine event, live, to every open screen.

On connect a client gets one snapshot, `{"type": "snapshot", "engine": <as GET /health>,
"strategies": [<as GET /api/strategies>], "events": [<recent events, oldest first>]}`, then
every event the engine publishes on its bus, in order, each `{"type": "event", "kind",
"message", "bot", "data", "at"}`. Clients have nothing to say: what they send is ignored.

Why it is built this way:
- The bus calls its listeners synchronously inside the engine's step, so the listener here
  does the least possible: it encodes the event once (whatever the number of clients) and
  `put_nowait`s the text into each client's bounded queue. A sender task per client drains
  its queue into the socket at whatever pace the client reads.
- A slow client must not slow the engine nor grow memory without bound: when its queue is
  full it is dropped on the spot (removed from the fan-out, counted) and its connection is
  closed with 1008 and a reason that says to reconnect for a fresh snapshot. That close
  frame queues behind the unread data like any send, so it waits at most
  `close_timeout_seconds` for the client to read; then the connection is closed anyway.
- Registering a client and taking its snapshot happen in one synchronous step of the
  engine's loop, so no event falls between the snapshot and the stream, and none is in both.
- The stream listens on the bus only while at least one client is connected, and a client
  leaves the fan-out however its connection ends (disconnect, drop, server shutdown).
- Counters live in the stream object (one per app), never in module globals: several
  engines, each with its API, run in one test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi.encoders import jsonable_encoder
from starlette.websockets import WebSocket, WebSocketDisconnect

from live.api.views import event_body
from live.engine import EngineEvent, EventBus

__all__ = ["DROP_CLOSE_CODE", "EventStream"]

log = logging.getLogger(__name__)

# RFC 6455 "policy violation": the client broke the rule that it must keep up.
DROP_CLOSE_CODE = 1008
# A close reason must fit in 123 bytes.
DROP_REASON = "too slow: event queue full; reconnect for a fresh snapshot"
ERROR_CLOSE_CODE = 1011

Snapshot = Callable[[], dict[str, Any]]


class _Client:
    """One connection's queue of encoded events, and whether it was dropped."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.dropped = asyncio.Event()


class EventStream:
    """The fan-out from one engine's bus to its WebSocket clients, with its counters."""

    def __init__(
        self,
        bus: EventBus,
        snapshot: Snapshot,
        *,
        queue_size: int = 1000,
        close_timeout_seconds: float = 5.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"events queue size must be at least 1, not {queue_size}")
        if not close_timeout_seconds > 0:
            raise ValueError(f"close timeout must be > 0 seconds, not {close_timeout_seconds}")
        self._bus = bus
        self._snapshot = snapshot
        self.queue_size = queue_size
        self.close_timeout_seconds = close_timeout_seconds
        self._clients: set[_Client] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.connections_total = 0
        self.events_sent_total = 0
        self.dropped_total = 0

    def metrics(self) -> dict[str, float]:
        """For /metrics (names without a prefix; totals end in _total)."""
        return {
            "events_clients": len(self._clients),
            "events_connections_total": self.connections_total,
            "events_sent_total": self.events_sent_total,
            "events_clients_dropped_total": self.dropped_total,
        }

    async def serve(self, websocket: WebSocket) -> None:
        """Run one accepted connection until the client leaves or is dropped."""
        client = _Client(self.queue_size)
        snapshot = self._attach(client)
        pump = asyncio.create_task(self._pump(websocket, client, snapshot))
        listen = asyncio.create_task(_until_disconnect(websocket))
        dropped = asyncio.create_task(client.dropped.wait())
        try:
            await asyncio.wait({pump, listen, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._detach(client)
            for task in (pump, listen, dropped):
                task.cancel()
            await asyncio.gather(pump, listen, dropped, return_exceptions=True)
        if client.dropped.is_set():
            await self._close(websocket, DROP_CLOSE_CODE, DROP_REASON)
        elif pump.done() and not pump.cancelled() and pump.exception() is not None:
            error = pump.exception()
            if not isinstance(error, WebSocketDisconnect):
                log.error("events stream to a client failed: %r", error)
                await self._close(websocket, ERROR_CLOSE_CODE, "internal error")

    # -- fan-out ---------------------------------------------------------------------------

    def _attach(self, client: _Client) -> str:
        """Register `client` and take its snapshot in the same step (no await in between)."""
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe(self._on_event)
        self._clients.add(client)
        self.connections_total += 1
        try:
            return json.dumps(jsonable_encoder(self._snapshot()), separators=(",", ":"))
        except BaseException:
            self._detach(client)
            raise

    def _detach(self, client: _Client) -> None:
        self._clients.discard(client)
        if not self._clients and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, event: EngineEvent) -> None:
        """The bus listener, inside the engine's step: encode once, queue, never wait."""
        if not self._clients:
            return
        text = _encode(event)
        for client in list(self._clients):
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._detach(client)
        self.dropped_total += 1
        client.dropped.set()
        log.warning(
            "events client dropped: %d events queued unread (queue size %d)",
            client.queue.qsize(),
            self.queue_size,
        )

    async def _pump(self, websocket: WebSocket, client: _Client, snapshot: str) -> None:
        await websocket.send_text(snapshot)
        while True:
            text = await client.queue.get()
            await websocket.send_text(text)
            self.events_sent_total += 1

    async def _close(self, websocket: WebSocket, code: int, reason: str) -> None:
        """Close with `code`; a client that does not read gets `close_timeout_seconds`."""
        with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            async with asyncio.timeout(self.close_timeout_seconds):
                await websocket.close(code, reason)


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # clients have nothing to say


def _encode(event: EngineEvent) -> str:
    try:
        return json.dumps(event_body(event), separators=(",", ":"))
    except (TypeError, ValueError):  # `data` is meant to be JSON-able; never lose the event
        readable = replace(event, data={key: str(value) for key, value in event.data.items()})
        return json.dumps(event_body(readable), separators=(",", ":"))
