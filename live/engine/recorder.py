"""The recorder: the engine's only way to the database, write-behind, ordered, never lossy.

The event loop only enqueues (`submit` returns a sequence number at once); one writer task
applies the queue in order, up to `db_batches_per_transaction` writes per transaction, in a
single worker thread. Heartbeats are a latest-value slot written with the next transaction,
so a database that is away for an hour does not leave an hour of beats behind.

When a transaction fails the writes stay queued, in order, and are retried with
exponential backoff for as long as it takes; meanwhile `available` is False (the engine
reports itself degraded and takes no new entries) and `wait_durable` lets the outbox hold
an order until its intent is written. A write that fails on its own while the database
is otherwise fine (a bug, a constraint) is set aside in `dead_letters` and logged with
its content, so it can never block every later write; nothing is dropped silently.

The SQLite file is checked before every read and transaction (live/engine/storage_watch.py):
deleted, replaced or read-only is an outage like any other. While the database is away the
queued writes, and every write submitted meanwhile, are appended to the write journal
(live/engine/journal.py, fsynced, in a thread of its own), and so is whatever is left at
`close`: they survive a stop or a kill and are replayed at the next start. While the journal
holds writes, every transaction also moves its watermark, so that replay applies nothing
twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.orm import Session

from live.engine.config import EngineConfig
from live.engine.journal import WriteJournal
from live.engine.persistence import HeartbeatWrite, Write, apply_writes, write_heartbeats
from live.engine.single_engine import sqlite_file_path
from live.engine.storage_watch import SqliteFileWatch
from tradepipe.db import DatabaseUnavailableError, create_engine_for, mask_url, session_scope

__all__ = ["EngineDatabase", "Recorder", "describe", "is_unavailable"]

log = logging.getLogger(__name__)
T = TypeVar("T")
STATEMENT_TIMEOUT_MS = 30_000


def is_unavailable(error: BaseException) -> bool:
    """Is this the database being away (locked, down, unreachable) rather than a bad write?"""
    return isinstance(
        error,
        DatabaseUnavailableError
        | exc.OperationalError
        | exc.InterfaceError
        | exc.TimeoutError
        | sqlite3.OperationalError
        | OSError
        | TimeoutError,
    ) or (isinstance(error, exc.DBAPIError) and error.connection_invalidated)


def describe(error: BaseException) -> str:
    """One line: the driver's own error when SQLAlchemy wraps one (it names the cause)."""
    cause = error.orig if isinstance(error, exc.DBAPIError) and error.orig else error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else 'no detail'}"


class EngineDatabase:
    """The trading database as the engine uses it: one SQLAlchemy engine, a short SQLite
    busy timeout (a locked database should be noticed, not waited out for long)."""

    def __init__(self, url: str, *, busy_timeout_ms: int) -> None:
        self.url = url
        self.engine: SqlEngine = create_engine_for(url, verify=False)
        path = sqlite_file_path(url)
        # armed at start, once the file exists (migrated): see live/engine/storage_watch.py
        self.storage: SqliteFileWatch | None = None if path is None else SqliteFileWatch(path)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _busy_timeout(busy_timeout_ms))
        else:  # a stuck server must fail a write (to be retried), never hang the writer
            event.listen(self.engine, "connect", _statement_timeout(STATEMENT_TIMEOUT_MS))

    def watch_file(self) -> None:
        """From now on, a deleted, replaced or read-only SQLite file is an outage."""
        if self.storage is not None:
            self.storage.arm()

    def read(self, function: Callable[[Session], T]) -> T:
        if self.storage is not None:  # a new connection would create an empty file
            self.storage.check(writing=False)
        with session_scope(self.engine) as session:
            return function(session)

    def write(self, writes: Sequence[Write], beats: Sequence[HeartbeatWrite]) -> None:
        if self.storage is not None:
            self.storage.check()
        with session_scope(self.engine) as session:
            apply_writes(session, writes)
            write_heartbeats(session, beats)

    def session(self) -> contextlib.AbstractContextManager[Session]:
        """A transaction outside the recorder (journal replay at start)."""
        return session_scope(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.storage is not None:
            self.storage.close()

    def __repr__(self) -> str:
        return f"EngineDatabase({mask_url(self.url)!r})"


def _statement_timeout(milliseconds: int) -> Callable[[Any, Any], None]:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET statement_timeout = {int(milliseconds)}")
        finally:
            cursor.close()
        dbapi_connection.commit()

    return configure


def _busy_timeout(milliseconds: int) -> Callable[[Any, Any], None]:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(milliseconds)}")
        finally:
            cursor.close()

    return configure


class Recorder:
    def __init__(
        self,
        database: EngineDatabase,
        config: EngineConfig,
        *,
        on_health: Callable[[bool, str | None], None],
        journal: WriteJournal | None = None,
    ) -> None:
        self.database = database
        self.journal = journal
        self._journal_handed = 0  # the latest sequence number given to the journal
        self._journal_holds = False  # the journal may hold writes of this run
        self._journaling: asyncio.Task[None] | None = None
        self.journal_error: str | None = None
        self._journal_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self.config = config
        self._on_health = on_health
        self._queue: deque[tuple[int, Write]] = deque()
        self._beats: list[HeartbeatWrite] = []
        self._next_seq = 1
        self.durable_seq = 0
        self.available = True
        self.last_error: str | None = None
        self.failing_since: datetime | None = None
        self.dead_letters: list[Write] = []
        self._dead: set[int] = set()  # sequence numbers set aside: never durable
        self.transactions = 0
        self._wake = asyncio.Event()
        self._durable = asyncio.Condition()
        self._closing = False
        self._gave_up = False  # the writer stopped retrying at close
        # One thread: writes are applied strictly in order, one transaction at a time.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def last_submitted(self) -> int:
        """The sequence number of the latest write submitted (0: none yet)."""
        return self._next_seq - 1

    def submit(self, write: Write) -> int:
        seq = self._next_seq
        self._next_seq += 1
        self._queue.append((seq, write))
        self._wake.set()
        if not self.available:
            self._journal_soon()
        return seq

    def set_heartbeats(self, beats: list[HeartbeatWrite]) -> None:
        self._beats = beats
        self._wake.set()

    async def wait_durable(self, seq: int, timeout: float) -> bool:
        """True once write `seq` (and every one before it) is committed; False on timeout."""

        def done() -> bool:
            return self.durable_seq >= seq or seq in self._dead

        if not done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    async with self._durable:
                        await self._durable.wait_for(done)
        return self.durable_seq >= seq and seq not in self._dead

    async def run(self) -> None:
        """The writer loop; returns when closed and the queue is empty."""
        attempt = 0
        while True:
            if not self._queue and not self._beats:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            limit = self.config.db_batches_per_transaction
            entries = list(itertools.islice(self._queue, limit))
            group = [write for _, write in entries]
            beats = self._beats
            try:
                await self._in_thread(self.database.write, self._marked(entries), beats)
            except Exception as error:
                if len(group) > 1 and not is_unavailable(error):
                    await self._write_singly(group)
                    continue
                if not is_unavailable(error):
                    self._dead_letter(group[0], error)
                    continue
                attempt += 1
                self._failed(error)
                if self._closing and attempt > 3:
                    self._gave_up = True
                    return  # stop() has a deadline; what is left is journaled there
                delay = self.config.db_retry_delay(attempt)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            if beats is self._beats:
                self._beats = []
            await self._committed(len(group))

    async def _write_singly(self, group: list[Write]) -> None:
        """A group failed for a reason other than availability: find the culprit."""
        for entry in [(seq, w) for seq, w in itertools.islice(self._queue, len(group))]:
            write = entry[1]
            try:
                await self._in_thread(self.database.write, self._marked([entry]), [])
            except Exception as error:
                if is_unavailable(error):
                    self._failed(error)
                    return
                self._dead_letter(write, error)
                continue
            await self._committed(1)

    def _dead_letter(self, write: Write, error: BaseException) -> None:
        self.dead_letters.append(write)
        self._dead.add(self._queue[0][0])
        log.error(
            "database write refused, set aside: %s; write: %r",
            describe(error),
            write,
            extra={"write": type(write).__name__},
        )
        self._queue.popleft()

    async def _committed(self, count: int) -> None:
        for _ in range(count):
            self.durable_seq = self._queue.popleft()[0]
        self.transactions += 1
        if not self.available:
            down_for = time.time() - (self.failing_since or datetime.now(UTC)).timestamp()
            log.warning("database available again after %.1f s", down_for)
            self.available, self.last_error, self.failing_since = True, None, None
            self._on_health(True, None)
        if self._journal_holds and self.durable_seq >= self._journal_handed:
            await self._empty_journal()
        async with self._durable:
            self._durable.notify_all()

    def _failed(self, error: BaseException) -> None:
        message = describe(error)
        self.last_error = message
        if self.available:
            self.available = False
            self.failing_since = datetime.now(UTC)
            self._journal_soon()
            log.error(
                "database unavailable, %d writes queued: %s",
                len(self._queue),
                message,
                extra={"pending_writes": len(self._queue)},
            )
            self._on_health(False, message)

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def close(self, timeout: float) -> bool:
        """Write what is queued (within `timeout`), then stop. False if writes remain."""
        self._closing = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (self._queue or self._beats) and not self._gave_up:
                    await asyncio.sleep(0.02)
        left = len(self._queue)
        if left:
            kept = await self._journal_rest()
            log.error(
                "stopping with %d database writes not done: %s",
                left,
                f"kept in the journal {self.journal.path}, replayed at the next start"
                if kept and self.journal is not None
                else "they are lost (no journal could take them)",
            )
        elif self._journal_holds:
            await self._empty_journal()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._journal_executor.shutdown(wait=True)
        return left == 0

    # -- the journal -----------------------------------------------------------------------

    def _marked(self, entries: list[tuple[int, Write]]) -> list[Write]:
        """The writes of a transaction, plus the journal's watermark while it holds any."""
        writes = [write for _, write in entries]
        if self._journal_holds and self.journal is not None and entries:
            writes.append(self.journal.watermark(entries[-1][0]))
        return writes

    def _unjournaled(self) -> list[tuple[int, Write]]:
        fresh: list[tuple[int, Write]] = []
        for seq, write in reversed(self._queue):  # the queue is in sequence order
            if seq <= self._journal_handed:
                break
            fresh.append((seq, write))
        fresh.reverse()
        return fresh

    def _journal_soon(self) -> None:
        if self.journal is None or not self._queue:
            return
        self._journal_holds = True  # every transaction from now on moves the watermark
        if self._journaling is None or self._journaling.done():
            self._journaling = asyncio.get_running_loop().create_task(
                self._journal_queued(), name="journal"
            )

    async def _journal_queued(self) -> None:
        while fresh := self._unjournaled():
            if not await self._append(fresh):
                return

    async def _append(self, entries: list[tuple[int, Write]]) -> bool:
        assert self.journal is not None
        self._journal_handed = entries[-1][0]
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._journal_executor, self.journal.append, entries)
        except (OSError, TypeError, ValueError) as error:
            self._journal_handed = entries[0][0] - 1  # tried again with the next write
            message = f"{type(error).__name__}: {error}"
            if message != self.journal_error:
                log.error(
                    "write journal %s cannot be written (%s): %d writes are kept in memory "
                    "only and are lost if the engine stops before the database is back",
                    self.journal.path,
                    message,
                    len(self._queue),
                )
            self.journal_error = message
            return False
        self.journal_error = None
        return True

    async def _journal_rest(self) -> bool:
        """At close: every write still queued into the journal. False if it could not."""
        if self.journal is None:
            return False
        if self._journaling is not None:
            with contextlib.suppress(Exception):
                await self._journaling
            self._journaling = None
        self._journal_holds = True
        fresh = self._unjournaled()
        return not fresh or await self._append(fresh)

    async def _empty_journal(self) -> None:
        """Everything the journal holds is committed (with the watermark): empty it."""
        if self.journal is None or (self._journaling is not None and not self._journaling.done()):
            return  # an append is running: the next commit empties it
        handed, running = self._journal_handed, self._journaling
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._journal_executor, self.journal.clear)
        except (OSError, RuntimeError) as error:  # harmless: replay skips what is applied
            log.warning("write journal %s not emptied: %s", self.journal.path, error)
            return
        if (self._journal_handed, self._journaling) == (handed, running):  # no outage since
            self._journal_holds = False

    async def read(self, function: Callable[[Session], T]) -> T:
        """A read in a worker thread (not the writer's: reads must not queue behind it)."""
        return await asyncio.to_thread(self.database.read, function)
