"""SQLite serves one engine: a second engine on the same database file refuses to start,
naming the one running, and writes nothing; the lock dies with its holder (SIGKILL too)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from live.engine import build_engine
from live.engine.single_engine import EngineAlreadyRunningError, sqlite_lock_path
from live.feeds import InMemoryFeed
from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import START_MS, Aio, add_bots, config_for, query
from tests.engine.processes import engine_command, log_waiter, start
from tests.engine.test_crash import SPEED


def _named(command: list[str], engine_id: str) -> list[str]:
    changed = list(command)
    changed[changed.index("--engine-id") + 1] = engine_id
    return changed


def _engine_rows(url: str) -> set[str]:
    return {
        row.engine_id
        for row in query(url, "SELECT engine_id FROM heartbeats WHERE kind = 'engine'")
    }


def test_second_engine_on_one_sqlite_file_refuses_naming_the_first(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("solo", "counting")])
    source = SyntheticSource(["BTCUSDT"], start_ms=START_MS)
    first_log, second_log, third_log = (tmp_path / f"engine-{n}.log" for n in (1, 2, 3))
    processes: list[subprocess.Popen[bytes]] = []

    until = log_waiter(first_log)

    async def scenario() -> None:
        async with ReplayServer(source, speed=SPEED) as replay:
            command = engine_command(database_url, replay, strategies_dir)
            first = start(_named(command, "engine-one"), first_log)
            processes.append(first)
            await until(lambda: "engine-one" in _engine_rows(database_url), "the first engine")
            events_before = query(database_url, "SELECT COUNT(*) AS n FROM events")[0].n

            second = start(_named(command, "engine-two"), second_log)
            processes.append(second)
            assert await asyncio.to_thread(second.wait, 30) == 1
            refusal = second_log.read_text()
            assert "another engine is running on the SQLite database" in refusal
            assert "engine engine-one" in refusal and f"pid {first.pid}" in refusal
            assert "Traceback" not in refusal  # one clear line, the operator's to act on
            assert first.poll() is None  # the running engine is untouched
            assert "engine-two" not in _engine_rows(database_url)  # and nothing was written
            kinds = query(database_url, "SELECT kind FROM events ORDER BY id")
            assert "engine_stopped" not in {row.kind for row in kinds[events_before:]}

            # The lock dies with its holder: after a SIGKILL the next engine starts.
            first.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
            third = start(_named(command, "engine-three"), third_log)
            processes.append(third)
            await until(lambda: "engine-three" in _engine_rows(database_url), "the takeover")
            third.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(third.wait, 20) == 0

    try:
        aio.run(scenario(), timeout=90)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_in_process_engines_share_the_rule_and_release_on_stop(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    config = config_for(database_url, strategies_dir)

    async def scenario() -> None:
        first = build_engine(config, feed=InMemoryFeed("binance"))
        await asyncio.wait_for(first.start(), 20)
        second = build_engine(config, feed=InMemoryFeed("binance"))
        with pytest.raises(EngineAlreadyRunningError, match=first.engine_id):
            await second.start()
        await second.stop()  # releases what it made, writes nothing
        await first.stop()
        third = build_engine(config, feed=InMemoryFeed("binance"))  # released by the clean stop
        await asyncio.wait_for(third.start(), 20)
        await third.stop()

    aio.run(scenario(), timeout=60)


def test_only_sqlite_files_take_the_lock(tmp_path: Path) -> None:
    assert sqlite_lock_path("postgresql+psycopg://postgres@127.0.0.1:5432/test") is None
    assert sqlite_lock_path("sqlite://") is None
    assert sqlite_lock_path("sqlite:///:memory:") is None
    lock = sqlite_lock_path(f"sqlite:///{tmp_path / 'trading.db'}")
    assert lock == tmp_path.resolve() / "trading.db.engine-lock"
