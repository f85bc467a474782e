"""A real WebSocket client (the `websockets` package) on the engine API's `/ws/events`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.api.harness import Api

REMOTE = {"X-Forwarded-For": "203.0.113.5"}  # uvicorn trusts it from loopback: a remote peer


def events_url(api: Api, token: str | None = None) -> str:
    query = f"?token={token}" if token is not None else ""
    return f"ws://127.0.0.1:{api.port}/ws/events{query}"


@contextlib.asynccontextmanager
async def events_client(
    api: Api,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    max_queue: int = 16,
) -> AsyncIterator[ClientConnection]:
    """Connected to /ws/events. `max_queue`: frames the client buffers unread before it
    stops reading its socket (1 with nobody calling recv: a client that does not keep up)."""
    async with connect(
        events_url(api, token),
        additional_headers=headers,
        proxy=None,
        compression=None,  # frames cost their real size on the wire
        max_queue=max_queue,
        open_timeout=5,
    ) as websocket:
        yield websocket


async def receive(websocket: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(websocket.recv(), timeout))
    return message


async def events_until(
    websocket: ClientConnection, done: Callable[[dict[str, Any]], bool], limit: int = 10_000
) -> list[dict[str, Any]]:
    """Events up to and including the first for which `done` holds."""
    received: list[dict[str, Any]] = []
    while len(received) < limit:
        message = await receive(websocket)
        assert message["type"] == "event", message
        received.append(message)
        if done(message):
            return received
    raise AssertionError(f"no matching event among {limit}")
