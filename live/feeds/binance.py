"""Binance spot market data over its native WebSocket: one connection for every consumer.

The connection opens `<base_url>/stream?streams=a@trade/b@trade` (the combined-stream
endpoint, so each frame names its stream); symbols subscribed or dropped while it is up go
over the same socket as `{"method": "SUBSCRIBE", "params": [...], "id": n}` and its
`{"result": null, "id": n}` reply. The replay server speaks the same protocol: only
`base_url` differs.

A dropped or refused connection is retried forever with jittered exponential backoff (the
status shows the state, the attempt and the last error); the new connection carries every
current stream in its URL. Trades lost meanwhile reach consumers as a `Gap` (see router).

A stream Binance refuses (an error reply) is reported in `status().rejected` and left out of
later connection URLs; a symbol it does not list is accepted and stays silent, reported in
`status().silent` after `silence_seconds`. Neither stops the feed.

Binance's limits shape the defaults: at most 5 control messages a second per connection
(changes are batched and spaced by `control_interval_seconds`), 1024 streams a
connection, and a disconnect every 24 hours (one more reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from live.feeds.protocol import (
    FeedConsumer,
    FeedMetrics,
    FeedState,
    FeedStatus,
    Subscription,
    normalize_symbols,
)
from live.feeds.router import MAX_MESSAGE_BYTES, Reply, StreamRouter
from live.feeds.sanity import SanityConfig
from tradepipe.retries import Backoff

log = logging.getLogger(__name__)

BINANCE_SPOT_WS = "wss://stream.binance.com:9443"
MAX_STREAMS = 1024
TRANSPORT_MAX_BYTES = 2**22


@dataclass(frozen=True, slots=True)
class BinanceFeedConfig:
    """How to reach the stream and how patient to be. `seed` fixes the jitter (tests)."""

    base_url: str = BINANCE_SPOT_WS
    backoff: Backoff = field(default_factory=Backoff)
    # A connection that stayed up this long starts the attempts again, so a server that
    # accepts and drops at once is still retried slowly.
    reconnect_reset_seconds: float = 30.0
    open_timeout_seconds: float = 10.0
    reply_timeout_seconds: float = 5.0
    ping_interval_seconds: float | None = 20.0
    control_interval_seconds: float = 0.25
    silence_seconds: float = 60.0
    max_streams: int = MAX_STREAMS
    seed: int | None = None
    sanity: SanityConfig = field(default_factory=SanityConfig)  # the trade checks
    # Frames longer are counted (`oversize`) and skipped; websockets itself closes the
    # connection on frames over TRANSPORT_MAX_BYTES, so memory stays bounded.
    max_message_bytes: int = MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("ws://", "wss://")):
            raise ValueError(
                f"feed base_url {self.base_url!r} must start with ws:// or wss://, "
                f"e.g. {BINANCE_SPOT_WS} or ws://127.0.0.1:8765 for the replay server"
            )
        for name in ("open_timeout_seconds", "reply_timeout_seconds", "silence_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"feed {name} must be positive")
        if self.reconnect_reset_seconds < 0:
            raise ValueError("feed reconnect_reset_seconds must not be negative")
        if not 1 <= self.max_message_bytes <= TRANSPORT_MAX_BYTES:
            raise ValueError(f"feed max_message_bytes must be within 1..{TRANSPORT_MAX_BYTES}")

    def stream_url(self, streams: Iterable[str]) -> str:
        names = "/".join(sorted(streams))
        base = self.base_url.rstrip("/")
        return f"{base}/stream?streams={names}" if names else f"{base}/stream"


class BinanceFeed:
    """The `Feed` of Binance spot trades. Instantiate as many as needed (one per engine,
    or per test); nothing is shared between instances."""

    exchange = "binance"

    def __init__(self, config: BinanceFeedConfig | None = None) -> None:
        self.config = config or BinanceFeedConfig()
        self._router = StreamRouter(
            sanity=self.config.sanity, max_message_bytes=self.config.max_message_bytes
        )
        self._rng = random.Random(self.config.seed)
        self._state = FeedState.STOPPED
        self._last_error: str | None = None
        self._attempt = 0
        self._retry_in: float | None = None
        self._rejected: set[str] = set()
        self._connection: ClientConnection | None = None
        self._connected_since_ns: int | None = None
        self._active: set[str] = set()  # streams the current connection carries
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._next_id = 1
        self._sync_lock = asyncio.Lock()
        self._last_control = 0.0
        self._task: asyncio.Task[None] | None = None
        self._connections = 0

    # -- the Feed protocol ---------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="binance-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_connection()
        self._set_state(FeedState.STOPPED)

    async def subscribe(self, symbols: Iterable[str], consumer: FeedConsumer) -> Subscription:
        """Deliver `symbols`' trades to `consumer`. When connected, returns once the exchange
        has answered the subscribe request (or `reply_timeout_seconds` passed)."""
        subscription = Subscription(normalize_symbols(symbols), consumer)
        wanted = self._router.streams() | {f"{s.lower()}@trade" for s in subscription.symbols}
        if len(wanted) > self.config.max_streams:
            raise ValueError(
                f"a Binance connection carries at most {self.config.max_streams} streams; "
                f"this subscription would make {len(wanted)}"
            )
        self._router.add(subscription)
        self._rejected -= subscription.symbols  # asked again: try again
        await self._sync_streams()
        # Status changes reach subscribed consumers only: one that joins a feed which
        # connected while nobody listened (an engine started without bots) hears it now.
        if self._state is FeedState.CONNECTED:
            consumer.on_status(self.status())
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering at once; the exchange is told when connected."""
        self._router.remove(subscription)
        await self._sync_streams()

    def status(self) -> FeedStatus:
        threshold = int(self.config.silence_seconds * 1e9)
        connected = self._connected_since_ns if self._state is FeedState.CONNECTED else None
        streams = self._router.streams()
        symbols = sorted(s for s in (self._router.symbol_of(x) for x in streams) if s)
        return FeedStatus(
            exchange=self.exchange,
            state=self._state,
            last_error=self._last_error,
            attempt=self._attempt,
            retry_in_seconds=self._retry_in,
            symbols=tuple(symbols),
            rejected=tuple(sorted(self._rejected & set(symbols))),
            silent=tuple(self._router.silent_symbols(threshold, connected)),
        )

    def metrics(self) -> FeedMetrics:
        return self._router.snapshot()

    # -- the connection ------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._set_state(FeedState.CONNECTING)
            streams = self._wanted_streams()
            url = self.config.stream_url(streams)
            try:
                connection = await connect(
                    url,
                    proxy=None,  # market data goes straight to the exchange
                    open_timeout=self.config.open_timeout_seconds,
                    ping_interval=self.config.ping_interval_seconds,
                    close_timeout=1.0,
                    max_size=TRANSPORT_MAX_BYTES,
                )
            except Exception as error:  # whatever it is, a feed keeps trying: never dies
                self._attempt += 1
                await self._back_off(_describe_connect_error(url, error))
                continue
            opened = time.monotonic()
            await self._serve(connection, streams)
            if time.monotonic() - opened >= self.config.reconnect_reset_seconds:
                self._attempt = 0
            self._attempt += 1
            await self._back_off(self._last_error or "connection closed")

    async def _serve(self, connection: ClientConnection, streams: set[str]) -> None:
        """Read one connection until it closes."""
        self._connection = connection
        self._active = set(streams)
        self._connections += 1
        metrics = self._router.metrics
        if self._connections > 1:
            metrics.reconnects += 1
        metrics.link_up()
        self._connected_since_ns = time.monotonic_ns()
        self._retry_in = None
        self._set_state(FeedState.CONNECTED)
        # subscriptions changed while connecting go out now, without holding up the reads
        sync = asyncio.create_task(self._sync_streams())
        handle = self._router.handle
        clock = time.time_ns
        try:
            async for raw in connection:
                reply = handle(raw, clock())
                if reply is not None:
                    self._resolve(reply)
            self._last_error = _describe_close(connection, "closed by the server")
        except ConnectionClosed:
            self._last_error = _describe_close(connection, "lost")
        except Exception as error:  # a bug must cost a reconnect, not the feed
            log.exception("binance feed: reading the connection failed")
            self._last_error = f"reading the connection failed: {error!r}"
        finally:
            metrics.link_down()
            self._connection = None
            self._active = set()
            self._fail_pending()
            sync.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sync
            await connection.close()

    async def _back_off(self, error: str) -> None:
        self._last_error = error
        delay = self.config.backoff.delay(self._attempt, self._rng)
        self._retry_in = delay
        self._set_state(FeedState.BACKING_OFF)
        log.warning("binance feed: %s; reconnecting in %.2f s", error, delay)
        await asyncio.sleep(delay)

    async def _close_connection(self) -> None:
        connection = self._connection
        if connection is not None:
            await connection.close()

    def _set_state(self, state: FeedState) -> None:
        if state is self._state:
            return
        self._state = state
        self._router.notify_status(self.status())

    # -- SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------------------

    async def _sync_streams(self) -> None:
        """Bring the connection's streams in line with the subscriptions, in one request
        each way (Binance counts control messages, so changes are batched)."""
        async with self._sync_lock:
            connection = self._connection
            if connection is None:
                return  # the next connection's URL carries the current streams
            wanted = self._wanted_streams()
            gone = sorted(self._active - wanted)
            new = sorted(wanted - self._active)
            if gone:
                self._active.difference_update(gone)
                await self._request(connection, "UNSUBSCRIBE", gone)
            if new:
                self._active.update(new)
                reply = await self._request(connection, "SUBSCRIBE", new)
                if reply is not None and reply.error is not None:
                    # Binance refuses a batch as a whole: ask one by one to find the culprit
                    for stream in new if len(new) > 1 else []:
                        single = await self._request(connection, "SUBSCRIBE", [stream])
                        if single is None or single.error is None:
                            continue
                        self._reject(stream)
                    if len(new) == 1:
                        self._reject(new[0])

    def _reject(self, stream: str) -> None:
        """Binance refused the stream: report it, and keep it out of the URL of every
        later connection (a refused name there could fail the whole handshake)."""
        self._active.discard(stream)
        self._rejected.add(stream.split("@", 1)[0].upper())

    def _wanted_streams(self) -> set[str]:
        return {
            s for s in self._router.streams() if s.split("@", 1)[0].upper() not in self._rejected
        }

    async def _request(
        self, connection: ClientConnection, method: str, params: list[str]
    ) -> Reply | None:
        wait = self._last_control + self.config.control_interval_seconds - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._last_control = time.monotonic()
            request = {"method": method, "params": params, "id": request_id}
            await connection.send(json.dumps(request))
            reply = await asyncio.wait_for(future, self.config.reply_timeout_seconds)
        except TimeoutError:
            self._last_error = (
                f"no reply to {method} {params} within {self.config.reply_timeout_seconds} s"
            )
            return None
        except (ConnectionClosed, _LinkLost):
            return None  # the reconnect carries the streams in its URL
        finally:
            self._pending.pop(request_id, None)
        if reply.error is not None:
            self._last_error = f"binance refused {method} {params}: {reply.error}"
            log.warning("binance feed: %s", self._last_error)
        return reply

    def _resolve(self, reply: Reply) -> None:
        future = self._pending.get(reply.id) if reply.id is not None else None
        if future is not None and not future.done():
            future.set_result(reply)
        elif reply.error is not None:
            self._last_error = f"binance error: {reply.error}"

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_LinkLost())
        self._pending.clear()


class _LinkLost(Exception):
    """The connection closed before the exchange replied to a request."""


def _describe_connect_error(url: str, error: BaseException) -> str:
    if isinstance(error, InvalidStatus):
        return f"cannot connect to {url}: HTTP {error.response.status_code}"
    if isinstance(error, TimeoutError):
        return f"cannot connect to {url}: no answer in time"
    reason = str(error) or type(error).__name__
    return f"cannot connect to {url}: {reason}"


def _describe_close(connection: ClientConnection, how: str) -> str:
    code = connection.close_code
    reason = connection.close_reason
    detail = f" (code {code}{': ' + reason if reason else ''})" if code is not None else ""
    return f"connection {how}{detail}"
