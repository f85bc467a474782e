"""A WebSocket server on loopback that speaks Binance's combined-stream protocol.

Clients connect to `/stream?streams=a@trade/b@trade` (or `/stream` alone) and change their
streams with `{"method": "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST_SUBSCRIPTIONS", "params":
[...], "id": n}`, answered `{"result": ..., "id": n}` or `{"error": {"code", "msg"}, "id"}`,
as Binance does. A well-formed stream the source does not have is accepted and stays
silent, as on Binance.

There is one timeline per server, like one market: it starts when `wait_for_subscribers`
connections have subscribed to something (so a test, or an engine started a moment
later, misses nothing), plays the source at `speed` times real time (0: as fast as the
clients read), and each connection receives the messages of its streams from the moment
it subscribed. A client that disconnects misses what is published meanwhile and can fetch
the candles back from the REST side (`rest.py`), which records every published trade.

Back-pressure instead of loss: each connection has a bounded queue; when it is full the
timeline waits for that client. A replay is for tests and development, where a lost
message would be a false failure; a real exchange would drop the slow client instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from live.replay.rest import RestServer, TradeRecord
from live.replay.sources import ReplayMessage, ReplaySource

log = logging.getLogger(__name__)

STREAM_NAME = re.compile(r"^[a-z0-9]+@[A-Za-z0-9_@]+$")
QUEUE_LIMIT = 10_000
YIELD_EVERY = 256  # messages between yields to the loop when playing as fast as possible


class _Session:
    """One client connection and the streams it receives."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.streams: set[str] = set()
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self.closed = False


class ReplayServer:
    """Serve `source` over WebSocket (and REST for backfills) until stopped.

    Use as `async with ReplayServer(source, port=0) as server:`; `server.url` and
    `server.rest_url` name the bound ports.
    """

    def __init__(
        self,
        source: ReplaySource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rest_port: int | None = 0,
        speed: float = 1.0,
        wait_for_subscribers: int = 1,
        on_publish: Callable[[ReplayMessage], None] | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0 (0: as fast as possible), got {speed}")
        self.source = source
        self.host = host
        self.requested_port = port
        self.requested_rest_port = rest_port
        self.speed = speed
        self.wait_for_subscribers = wait_for_subscribers
        self.on_publish = on_publish  # called as each message goes out (measurements)
        self.record = TradeRecord()
        self.rest = RestServer(self.record, source.symbols)
        self.port = 0
        self.rest_port: int | None = None
        self.published = 0  # messages the timeline has played
        self.connections_served = 0
        self.finished = asyncio.Event()
        self._sessions: set[_Session] = set()
        self._by_stream: dict[str, set[_Session]] = {}
        self._ready_to_play = asyncio.Event()
        self._server: Server | None = None
        self._timeline: asyncio.Task[None] | None = None
        self._drop_after: int | None = None
        self._resume_when_resubscribed = False

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str | None:
        return None if self.rest_port is None else f"http://{self.host}:{self.rest_port}"

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def streams_of_sessions(self) -> list[set[str]]:
        return [set(session.streams) for session in self._sessions]

    async def start(self) -> None:
        self._server = await serve(
            self._session,
            self.host,
            self.requested_port,
            process_request=self._check_path,
            compression=None,
            max_queue=64,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.requested_rest_port is not None:
            self.rest_port = await self.rest.start(self.host, self.requested_rest_port)
        if self.wait_for_subscribers <= 0:
            self._ready_to_play.set()
        self._timeline = asyncio.create_task(self._play(), name="replay-timeline")

    async def stop(self) -> None:
        if self._timeline is not None:
            self._timeline.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timeline
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
        await self.rest.stop()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def drop_connections(self) -> int:
        """Cut every client connection without a closing handshake (a network failure)."""
        sessions = list(self._sessions)
        for session in sessions:
            session.connection.transport.abort()
            self._end(session)
        return len(sessions)

    def drop_connections_after(
        self, messages: int, *, resume_when_resubscribed: bool = False
    ) -> None:
        """Cut every connection once the timeline has published `messages` messages.

        `resume_when_resubscribed`: the timeline then waits until a client subscribes again
        and goes on at its speed from there, so the market has not run to its end while the
        client reconnected (however slow the machine): the client sees a hole, then trades."""
        self._drop_after = messages
        self._resume_when_resubscribed = resume_when_resubscribed

    # -- the timeline --------------------------------------------------------------------

    async def _play(self) -> None:
        await self._ready_to_play.wait()
        wall_start_ns = time.time_ns()
        started = time.monotonic()
        speed = self.speed
        for message in self.source.messages(wall_start_ns, speed):
            if speed > 0:
                delay = started + message.offset_ns / 1e9 / speed - time.monotonic()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
            elif self.published % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if message.trade is not None:
                self.record.add(message.trade)
            if self.on_publish is not None:
                self.on_publish(message)
            # A copy: a client may leave while `put` awaits, which changes the set.
            for session in tuple(self._by_stream.get(message.stream, ())):
                if session.queue.full():
                    await session.queue.put(message.raw)  # a slow client slows the replay
                else:
                    session.queue.put_nowait(message.raw)
            self.published += 1
            if self._drop_after is not None and self.published >= self._drop_after:
                self._drop_after = None
                self.drop_connections()
                if self._resume_when_resubscribed:
                    paused = time.monotonic()
                    self._ready_to_play.clear()
                    await self._ready_to_play.wait()
                    started += time.monotonic() - paused
        log.info("replay of %s finished after %d messages", self.source.description, self.published)
        self.finished.set()

    # -- connections ---------------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path not in ("/stream", "/stream/"):
            return connection.respond(
                HTTPStatus.NOT_FOUND, "combined streams only: connect to /stream?streams=...\n"
            )
        for stream in _url_streams(request.path):
            if not STREAM_NAME.match(stream):
                return connection.respond(HTTPStatus.BAD_REQUEST, f"invalid stream {stream!r}\n")
        return None

    async def _session(self, connection: ServerConnection) -> None:
        session = _Session(connection)
        self._sessions.add(session)
        self.connections_served += 1
        assert connection.request is not None
        self._subscribe(session, _url_streams(connection.request.path))
        writer = asyncio.create_task(self._write(session))
        try:
            async for message in connection:
                reply = self._control(session, message)
                await session.queue.put(json.dumps(reply, separators=(",", ":")))
        except ConnectionClosed:
            pass
        finally:
            self._end(session)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, session: _Session) -> None:
        queue = session.queue
        send: Callable[[str], Awaitable[None]] = session.connection.send
        with contextlib.suppress(ConnectionClosed):
            while True:
                await send(await queue.get())

    def _end(self, session: _Session) -> None:
        if session.closed:
            return
        session.closed = True
        self._sessions.discard(session)
        self._unsubscribe(session, set(session.streams))
        while not session.queue.empty():  # frees a timeline waiting on this queue
            session.queue.get_nowait()

    def _subscribe(self, session: _Session, streams: set[str]) -> None:
        for stream in streams:
            self._by_stream.setdefault(stream, set()).add(session)
        session.streams |= streams
        if streams:
            subscribed = sum(1 for s in self._sessions if s.streams)
            if subscribed >= self.wait_for_subscribers:
                self._ready_to_play.set()

    def _unsubscribe(self, session: _Session, streams: set[str]) -> None:
        for stream in streams:
            listeners = self._by_stream.get(stream)
            if listeners is not None:
                listeners.discard(session)
                if not listeners:
                    del self._by_stream[stream]
        session.streams -= streams

    def _control(self, session: _Session, message: str | bytes) -> dict[str, Any]:
        """Answer one client request the way Binance does (codes from its API docs)."""
        try:
            request = json.loads(message)
        except ValueError as error:
            return _error(3, f"Invalid JSON: {error}", None)
        if not isinstance(request, dict):
            return _error(2, "Invalid request: expected an object", None)
        request_id = request.get("id")
        if type(request_id) is not int or request_id < 0:
            return _error(2, "Invalid request: request ID must be an unsigned integer", None)
        method = request.get("method")
        params = request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(session.streams), "id": request_id}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return _error(2, f"Invalid request: unknown method {method!r}", request_id)
        if not isinstance(params, list) or not all(
            isinstance(p, str) and STREAM_NAME.match(p) for p in params
        ):
            return _error(2, "Invalid request: invalid stream name", request_id)
        if method == "SUBSCRIBE":
            self._subscribe(session, set(params))
        else:
            self._unsubscribe(session, set(params))
        return {"result": None, "id": request_id}


def _error(code: int, text: str, request_id: int | None) -> dict[str, Any]:
    return {"error": {"code": code, "msg": text}, "id": request_id}


def _url_streams(path: str) -> set[str]:
    query = parse_qs(urlsplit(path).query)
    return {name for value in query.get("streams", []) for name in value.split("/") if name}
