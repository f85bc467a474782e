"""A database that goes away while the engine trades: writes are retried with backoff, the
engine reports itself degraded and takes no new entries, exits still go out, and when the
database is back every queued write lands: nothing is lost, nothing is duplicated.

The outages are real. SQLite: another connection holds the write lock (BEGIN EXCLUSIVE), so
every write fails with "database is locked", as behind a stuck migration or a backup.
PostgreSQL: the engine reaches the server through a TCP proxy that is cut (connections
dropped, the port closed) and brought back, as in a network partition or a server restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from live.brokers import BrokerOrder, PaperBroker
from live.engine import EngineState
from tests.engine.helpers import (
    START_MS,
    Aio,
    add_bots,
    config_for,
    push,
    query,
    start_engine,
    walk,
)

Outage = Callable[[], AbstractAsyncContextManager[None]]


class RecordingBroker(PaperBroker):
    """The paper broker, remembering every order id that reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.placed: list[str] = []

    async def place(self, order: BrokerOrder) -> None:
        self.placed.append(order.client_order_id)
        await super().place(order)


class TcpProxy:
    """Loopback TCP forwarding to a server; `cut` drops every connection and closes the
    port, `restore` opens it again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65_536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))
        self._writers -= {writer, upstream_writer}


def run_outage(
    aio: Aio,
    url: str,
    strategies_dir: Path,
    outage: Outage,
    error: str,
    *,
    before: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """The scenario on the database at `url`; `before` (in the engine's loop) may set up a
    way to it and return the URL the engine uses instead."""
    add_bots(url, strategies_dir, [("a", "always"), ("b", "always")])
    broker = RecordingBroker()
    states: list[EngineState] = []

    async def scenario() -> None:
        engine_url = await before() if before is not None else url
        # an entry whose intent is not written within 0.5 s is not sent at all
        config = config_for(engine_url, strategies_dir, entry_intent_timeout_seconds=0.5)
        running = await start_engine(config, broker=broker)
        engine = running.engine
        broker._clock = engine.core.clock.now  # market time, as the engine's own paper broker
        try:
            await push(running, walk(50))
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
            async with outage():
                trades = walk(40, start_ms=START_MS + 50_000, first_id=51)
                await push(running, trades, settle=False)
                await aio.eventually(
                    lambda: engine.status().state is EngineState.DEGRADED, "degraded"
                )
                states.append(engine.status().state)
                health = engine.status().database
                assert not health.available and error in str(health.last_error)
                entries = engine.core.metrics.entries
                # entries decided just before the outage are never sent (rejected locally),
                # exits still go out (after exit_intent_wait_seconds), positions close; the
                # strategies want in again, and are refused
                for trade in walk(40, start_ms=START_MS + 90_000, first_id=91):
                    running.feed.push(trade)
                    await asyncio.sleep(0.05)
                assert engine.core.metrics.entries == entries  # no entries while away
                assert engine.core.metrics.entries_blocked > 0
                assert engine.recorder.pending > 0  # kept, in order, for later
            await aio.eventually(lambda: engine.recorder.pending == 0, "the backlog written")
            await aio.eventually(lambda: engine.state is EngineState.RUNNING, "running again")
            entries = engine.core.metrics.entries
            await push(running, walk(30, start_ms=START_MS + 130_000, first_id=131))
            assert engine.core.metrics.entries > entries  # entries again
            assert not engine.recorder.dead_letters
        finally:
            await engine.stop()

    aio.run(scenario())
    assert states == [EngineState.DEGRADED]
    rows = query(url, "SELECT client_order_id, status, error FROM orders")
    orders = {row.client_order_id: row for row in rows}
    assert set(broker.placed) <= set(orders)  # every order that reached the venue is recorded
    assert len(broker.placed) == len(set(broker.placed))
    unsent = [row for row in rows if row.status == "rejected"]
    assert unsent and all("could not be recorded" in str(row.error) for row in unsent)
    assert not {row.client_order_id for row in unsent} & set(broker.placed)
    kinds = [r.kind for r in query(url, "SELECT kind FROM events ORDER BY id")]
    assert kinds.count("database_unavailable") == 1 and kinds.count("database_recovered") == 1


def test_a_locked_sqlite_database(aio: Aio, database_url: str, strategies_dir: Path) -> None:
    path = database_url.removeprefix("sqlite:///")

    @contextlib.asynccontextmanager
    async def locked() -> AsyncIterator[None]:
        lock = sqlite3.connect(path, isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            lock.execute("COMMIT")
            lock.close()

    run_outage(aio, database_url, strategies_dir, locked, "database is locked")


@pytest.mark.postgres
def test_a_postgresql_server_behind_a_cut_connection(
    aio: Aio, postgres_url: str, strategies_dir: Path
) -> None:
    target = make_url(postgres_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)

    async def through_the_proxy() -> str:
        await proxy.start()
        return target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    @contextlib.asynccontextmanager
    async def cut() -> AsyncIterator[None]:
        await proxy.cut()
        try:
            yield
        finally:
            await proxy.start()

    run_outage(aio, postgres_url, strategies_dir, cut, "connection", before=through_the_proxy)
