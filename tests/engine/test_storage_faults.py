"""The SQLite file under a running engine process: deleted, made read-only, replaced by
another, or locked while the engine is stopped and started again. Each time the engine goes
degraded (an event, a log line, no new entries, exits still sent) and loses nothing: what
it could not write is journaled and replayed at the next start, so a position closed during
an outage is never resumed.

Real `python -m live.engine` processes on a real replay server; the tests run as root, so
read-only is the mode bits (root writes through them, SQLite too)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import START_MS, Aio, MarketTimes, add_bots, query
from tests.engine.invariants import closed_positions, problems
from tests.engine.processes import EngineProcess, last_event_id, reconciled_after

SPEED = 100  # market seconds per wall second
FAULT_SETTINGS = {
    "db_retry_initial_seconds": 0.05,
    "db_retry_max_seconds": 0.2,
    "db_busy_timeout_ms": 100,
    "exit_intent_wait_seconds": 0.2,
    "entry_intent_timeout_seconds": 0.5,
    # warm from the replayed trades: the REST warm-up (ccxt's import alone) takes seconds
    "warmup_from_exchange": False,
}


@asynccontextmanager
async def trading_engine(
    tmp_path: Path, url: str, strategies: Path
) -> AsyncIterator[EngineProcess]:
    """Two paper bots trading BTCUSDT on the replayed synthetic market, short holdings."""
    add_bots(
        url,
        strategies,
        [("mkt", "always"), ("lim", "always_limit")],
        take_profit_pct=0.3,
        stop_loss_pct=0.3,
        max_holding_seconds=20.0,
        maker_order_timeout_seconds=10.0,
        max_open_positions=2,
    )
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))
    async with ReplayServer(source, speed=SPEED) as replay:
        engine = EngineProcess(url, replay, strategies, tmp_path / "engine.log", **FAULT_SETTINGS)
        try:
            engine.start()
            await engine.until(lambda: orders(url) and running(engine), "trading")
            yield engine
        finally:
            engine.cleanup()


def orders(url: str) -> set[str]:
    return {r.client_order_id for r in query(url, "SELECT client_order_id FROM orders")}


def running(engine: EngineProcess) -> bool:
    health = engine.health()
    return bool(health and health["state"] == "running")


def degraded_by(engine: EngineProcess, words: str) -> Callable[[], bool]:
    def check() -> bool:
        health = engine.health()
        if not health or health["state"] != "degraded":
            return False
        database = health["database"]
        return not database["available"] and words in str(database["last_error"])

    return check


def entries(engine: EngineProcess) -> int:
    health = engine.health()
    assert health is not None
    return sum(bot["entries"] for bot in health["bots"])


async def no_entries_while_degraded(engine: EngineProcess) -> None:
    """The bots want in on every candle; while degraded none gets an entry."""
    before = entries(engine)
    await asyncio.sleep(1.0)  # 100 s of market: dozens of candles
    assert entries(engine) == before
    health = engine.health()
    assert health is not None and health["state"] == "degraded"


def event_messages(url: str, kind: str) -> list[str]:
    rows = query(url, "SELECT payload FROM events WHERE kind = :kind", kind=kind)
    return [
        (json.loads(r.payload) if isinstance(r.payload, str) else r.payload)["message"]
        for r in rows
    ]


def journal_of(url: str) -> Path:
    path = Path(url.removeprefix("sqlite:///"))
    return path.with_name(path.name + ".journal.jsonl")


def rescued_copy(database: Path) -> Path:
    copies = sorted(database.parent.glob(database.name + ".rescued-*"))
    assert len(copies) == 1, copies
    return copies[0]


def restore(database: Path, copy: Path) -> None:
    """What the log line tells the operator: the rescued file back in place."""
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    os.replace(copy, database)


async def restart_and_check(
    engine: EngineProcess, url: str, *, before: set[str], market_at_stop: int
) -> dict[str, Any]:
    """Start again on the database in place: nothing recorded before is lost, no position
    closed before the stop is resumed, the journal is empty, every invariant holds."""
    last = last_event_id(url)
    engine.start()
    event = await engine.until(lambda: reconciled_after(url, last), "the restart")
    resumed = {(item["bot"], item["seq"]) for item in event["resumed"]}
    closed_before_stop = closed_positions(url, until_ms=market_at_stop)
    assert not resumed & closed_before_stop, "positions closed before the stop were resumed"
    assert journal_of(url).stat().st_size == 0  # replayed, then emptied
    assert before <= orders(url)  # nothing lost
    assert await engine.stop() == 0
    assert problems(url) == []
    return event


def market_time(engine: EngineProcess) -> int:
    health = engine.health()
    assert health is not None
    return int(health["market_time_ms"])


async def lost_file_scenario(
    aio: Aio,
    tmp_path: Path,
    url: str,
    strategies: Path,
    fault: Callable[[Path], None],
    words: str,
    after_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    database = Path(url.removeprefix("sqlite:///"))
    async with trading_engine(tmp_path, url, strategies) as engine:
        before = orders(url)
        fault(database)
        await engine.until(degraded_by(engine, words), f"degraded: {words}")
        assert f"database file {database} {words}" in engine.log_text()
        copy = rescued_copy(database)
        await no_entries_while_degraded(engine)
        assert journal_of(url).stat().st_size > 0  # the writes since are journaled
        market_at_stop = market_time(engine)
        assert await engine.stop() == 0
        assert "kept in the journal" in engine.log_text()
        if after_stop is not None:
            await after_stop()
        restore(database, copy)
        await restart_and_check(engine, url, before=before, market_at_stop=market_at_stop)
    unavailable = event_messages(url, "database_unavailable")
    assert len(unavailable) == 1 and words in unavailable[0]
    assert event_messages(url, "engine_degraded")


def test_the_database_file_deleted(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    aio.run(
        lost_file_scenario(aio, tmp_path, database_url, strategies_dir, os.remove, "was deleted"),
        timeout=300,
    )


def test_the_database_file_replaced_by_another(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE unrelated (id INTEGER PRIMARY KEY, note TEXT)")
        connection.execute("INSERT INTO unrelated (note) VALUES ('someone else''s data')")
    connection.close()
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    database = Path(database_url.removeprefix("sqlite:///"))

    def replace(path: Path) -> None:
        shutil.copy(other, tmp_path / "other-kept.db")
        os.replace(other, path)

    async def untouched() -> None:  # the engine wrote nothing into the file moved in
        assert hashlib.sha256(database.read_bytes()).hexdigest() == digest

    aio.run(
        lost_file_scenario(
            aio,
            tmp_path,
            database_url,
            strategies_dir,
            replace,
            "was replaced by another file",
            after_stop=untouched,
        ),
        timeout=300,
    )


def test_the_database_file_made_read_only(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    database = Path(database_url.removeprefix("sqlite:///"))
    wal = database.with_name(database.name + "-wal")

    async def scenario() -> None:
        async with trading_engine(tmp_path, database_url, strategies_dir) as engine:
            before = orders(database_url)
            database.chmod(0o444)
            try:
                await engine.until(degraded_by(engine, "is read-only"), "degraded: read-only")
                assert f"database file {database} is read-only" in engine.log_text()
                wal_size = wal.stat().st_size if wal.exists() else 0
                await no_entries_while_degraded(engine)
                # nothing written through the mode bits (root could): the WAL does not grow
                assert (wal.stat().st_size if wal.exists() else 0) == wal_size
                assert journal_of(database_url).stat().st_size > 0
            finally:
                database.chmod(0o644)
            await engine.until(lambda: running(engine), "running again once writable")
            await engine.until(lambda: entries(engine) > 0, "entries again")
            await engine.until(
                lambda: journal_of(database_url).stat().st_size == 0, "the journal emptied"
            )
            assert before <= orders(database_url)
            assert await engine.stop() == 0
        assert problems(database_url) == []
        unavailable = event_messages(database_url, "database_unavailable")
        assert len(unavailable) == 1 and "is read-only" in unavailable[0]
        assert len(event_messages(database_url, "database_recovered")) == 1

    aio.run(scenario(), timeout=300)
    assert stat.S_IMODE(database.stat().st_mode) == 0o644


def journaled_closes(journal: Path) -> set[tuple[str, int]]:
    """(bot, seq) of the positions the journal's writes close."""
    closes = set()
    for line in journal.read_text().splitlines():
        if not line.strip():
            continue
        write = json.loads(line)["write"]
        if write["type"] == "bot_batch":
            for position in write["positions"]:
                if position["status"] == "closed":
                    closes.add((write["bot"], position["seq"]))
    return closes


def test_stopped_during_an_outage_then_restarted_resumes_no_closed_position(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    """The database locked (another connection holds BEGIN EXCLUSIVE) while positions stop
    out and the engine is stopped; restarted once the lock is gone, it resumes none of the
    positions that closed during the outage and closes none of them a second time."""
    path = database_url.removeprefix("sqlite:///")
    journal = journal_of(database_url)

    async def scenario() -> None:
        async with trading_engine(tmp_path, database_url, strategies_dir) as engine:
            lock = sqlite3.connect(path, isolation_level=None)
            try:
                lock.execute("BEGIN EXCLUSIVE")
                rows = lock.execute(
                    "SELECT b.name, s.book FROM bot_states s JOIN bots b ON b.id = s.bot_id"
                ).fetchall()
                at_outage = {
                    (name, p["seq"]) for name, book in rows for p in json.loads(book)["positions"]
                }
                assert at_outage, "open positions when the outage begins"
                await engine.until(degraded_by(engine, "locked"), "degraded: locked")
                # held 20 s of market at most: every one of them closes during the outage
                await engine.until(
                    lambda: at_outage <= journaled_closes(journal), "the positions closed"
                )
                assert await engine.stop() == 0
            finally:
                lock.execute("COMMIT")
                lock.close()
            assert "kept in the journal" in engine.log_text()
            last = last_event_id(database_url)
            engine.start()
            event = await engine.until(lambda: reconciled_after(database_url, last), "restart")
            resumed = {(item["bot"], item["seq"]) for item in event["resumed"]}
            assert not resumed & at_outage
            assert journal.stat().st_size == 0
            assert await engine.stop() == 0
        assert problems(database_url) == []
        assert at_outage <= closed_positions(database_url)  # each closed once, recorded

    aio.run(scenario(), timeout=300)
