"""Several engines on one PostgreSQL database share the bots through leases: each bot runs
in exactly one engine; a SIGKILLed engine's bots trade again on another after recovery; a
write made under a lease another engine has taken over is refused by the database and
stops the bot there at once; an engine cut from its database stops entries in time."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli import app
from live.api.views import health_body
from live.replay import ReplayServer, SyntheticSource
from tests.engine.cluster import lease_owners
from tests.engine.helpers import (
    START_MS,
    Aio,
    MarketTimes,
    add_bots,
    config_for,
    execute,
    push,
    query,
    start_engine,
    walk,
)
from tests.engine.processes import engine_command, log_waiter, open_positions, start
from tests.engine.test_crash import SPEED

pytestmark = pytest.mark.postgres

LEASES = {"lease_ttl_seconds": 2.0, "heartbeat_seconds": 0.2}


def assert_positions_consistent(url: str, max_open_positions: int) -> None:
    """No position exited twice (both barriers filled: two engines on one bot), and no bot
    over its position limit at the end."""
    doubled = query(
        url,
        "SELECT position_id FROM orders WHERE role <> 'entry' AND status = 'filled' "
        "GROUP BY position_id HAVING COUNT(*) > 1",
    )
    assert doubled == []
    over = query(
        url,
        "SELECT bot_id FROM positions WHERE status IN ('pending', 'active') "
        "GROUP BY bot_id HAVING COUNT(*) > :limit",
        limit=max_open_positions,
    )
    assert over == []


def test_two_engines_share_the_bots_each_bot_owned_by_exactly_one(
    aio: Aio, postgres_url: str, strategies_dir: Path
) -> None:
    names = [f"bot{index}" for index in range(6)]
    add_bots(postgres_url, strategies_dir, [(name, "always") for name in names])
    overlaps: list[set[str]] = []

    async def scenario() -> None:
        configs = [
            config_for(postgres_url, strategies_dir, engine_id=f"e{n}", engine_max_bots=3, **LEASES)
            for n in (1, 2)
        ]
        engines = await asyncio.gather(*(start_engine(config) for config in configs))
        stop_sampling = asyncio.Event()

        async def sample() -> None:  # no bot may ever run in both engines
            while not stop_sampling.is_set():
                shared = set(engines[0].engine.core.bots) & set(engines[1].engine.core.bots)
                if shared:
                    overlaps.append(shared)
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        try:
            await aio.eventually(
                lambda: sum(len(r.engine.core.bots) for r in engines) == len(names),
                "every bot running",
                timeout=30,
            )
            trades = list(walk(120))
            await asyncio.gather(*(push(running, trades) for running in engines))
            await aio.eventually(
                lambda: all(r.engine.core.metrics.entries >= 3 for r in engines),
                "entries",
                timeout=30,
            )
            await asyncio.sleep(1.0)  # several renewals: nothing moves
            running = [set(r.engine.core.bots) for r in engines]
            assert running[0] | running[1] == set(names)
            assert len(running[0]) == len(running[1]) == 3  # capacity per engine
            for engine in (r.engine for r in engines):
                assert engine.recorder.refused == 0
                assert engine.recorder.dead_letters == []
                leases = engine.status().leases
                assert leases is not None and leases.fresh
                assert set(leases.epochs) == set(engine.core.bots)
                health = health_body(engine.status())["leases"]
                assert health["epochs"] == dict.fromkeys(engine.core.bots, 1)
                assert health["max_bots"] == 3 and health["fresh"] is True
        finally:
            stop_sampling.set()
            await sampler
            await asyncio.gather(*(r.engine.stop() for r in engines))

    aio.run(scenario(), timeout=90)  # two engines starting on a shared, small machine
    assert overlaps == []
    leases = query(postgres_url, "SELECT bot_id, owner, epoch FROM bot_leases")
    assert len(leases) == len(names)
    assert {row.owner for row in leases} == {"e1", "e2"}
    assert all(row.epoch == 1 for row in leases)  # never taken over
    # each bot's orders come from its one owner: no position number used twice
    duplicates = query(
        postgres_url,
        "SELECT bot_id, role, position_id, COUNT(*) AS n FROM orders "
        "GROUP BY bot_id, role, position_id HAVING COUNT(*) > 1 AND role = 'entry'",
    )
    assert duplicates == []
    entries = query(postgres_url, "SELECT COUNT(*) AS n FROM orders WHERE role = 'entry'")
    assert entries[0].n >= 6
    assert_positions_consistent(postgres_url, max_open_positions=1)
    beats = query(postgres_url, "SELECT name, detail FROM heartbeats WHERE kind = 'engine'")
    held = {}
    for beat in beats:
        detail = json.loads(beat.detail) if isinstance(beat.detail, str) else beat.detail
        held[beat.name] = detail["lease_epochs"]
    assert {name: len(epochs) for name, epochs in held.items()} == {"e1": 3, "e2": 3}


def test_a_write_under_a_stale_epoch_is_refused_and_the_bot_stops(
    aio: Aio, postgres_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_bots(postgres_url, strategies_dir, [("paused", "always")], max_open_positions=5)
    # no renewal during the test: the engine writes as a paused engine would on waking up
    slow = {"lease_ttl_seconds": 60.0, "heartbeat_seconds": 20.0, "bot_reload_seconds": 20.0}

    async def scenario() -> None:
        running = await start_engine(
            config_for(postgres_url, strategies_dir, engine_id="sleeper", **slow)
        )
        engine = running.engine
        try:
            await push(running, walk(80))
            await aio.eventually(lambda: engine.core.metrics.entries >= 1, "an entry")
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes flushed")
            # another engine takes the bot over while this one is not looking
            execute(
                postgres_url,
                "UPDATE bot_leases SET owner = 'thief', epoch = epoch + 1, "
                "expires_at = now() + interval '1 hour'",
            )
            before = query(postgres_url, "SELECT COUNT(*) AS n FROM orders")[0].n
            await push(running, walk(40, start_ms=1_704_067_280_000, first_id=100))
            await aio.eventually(lambda: engine.recorder.refused >= 1, "a refused write")
            await aio.eventually(lambda: "paused" not in engine.core.bots, "the bot stopped")
            entries_then = engine.core.metrics.entries
            await push(running, walk(40, start_ms=1_704_067_320_000, first_id=200))
            await asyncio.sleep(0.3)
            assert engine.core.metrics.entries == entries_then  # it trades no more here
            after = query(postgres_url, "SELECT COUNT(*) AS n FROM orders")[0].n
            assert after == before  # nothing written for the bot under the stale epoch
            kinds = [event.kind for event in engine.bus.recent()]
            assert "write_refused" in kinds and "bot_lease_lost" in kinds
        finally:
            await engine.stop()

    aio.run(scenario(), timeout=60)
    [lease] = query(postgres_url, "SELECT owner, epoch FROM bot_leases")
    assert (lease.owner, lease.epoch) == ("thief", 2)  # the stop did not release it either
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", postgres_url)
    listing = CliRunner().invoke(app, ["engines", "list"])
    assert listing.exit_code == 0, listing.output
    assert "thief" in listing.stdout and "paused" in listing.stdout
    assert "1 engines holding live leases: thief" in listing.stdout


def test_an_engine_cut_from_its_database_stops_entries_before_its_lease_expires(
    aio: Aio, postgres_url: str, strategies_dir: Path
) -> None:
    """The database goes away (connections refused, every session terminated); meanwhile
    another engine takes the bot over; when the database is back, the writes the cut-off
    engine queued are refused and the bot stops there."""
    add_bots(postgres_url, strategies_dir, [("cut", "always")], max_open_positions=50)
    database = make_url(postgres_url).database
    kept = sa.create_engine(postgres_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    connection = kept.connect()  # the other engine's session, surviving the cut
    mine = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    admin = sa.create_engine(
        make_url(postgres_url).set(database="postgres"),
        poolclass=sa.NullPool,
        isolation_level="AUTOCOMMIT",
    )

    def cut(allow: bool) -> None:
        with admin.connect() as server:
            server.exec_driver_sql(
                f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allow else "false"}'
            )
            if not allow:
                server.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{database}' AND pid <> {int(mine)}"
                )

    async def scenario() -> None:
        running = await start_engine(
            config_for(postgres_url, strategies_dir, engine_id="cut-off", **LEASES)
        )
        engine = running.engine
        try:
            await push(running, walk(80))
            await aio.eventually(lambda: engine.core.metrics.entries >= 1, "an entry")
            expiry = connection.execute(sa.text("SELECT expires_at FROM bot_leases")).scalar_one()
            orders_before = connection.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one()
            cut(allow=False)
            await push(running, walk(40, start_ms=START_MS + 80_000, first_id=100), settle=False)
            await aio.eventually(lambda: not engine.core.trading, "entries stopped")
            assert datetime.now(UTC) < expiry  # stopped while its lease was still valid
            assert not engine.core.accepting_entries(engine.core.bots["cut"])
            await asyncio.sleep(LEASES["lease_ttl_seconds"])  # the lease runs out
            taken = connection.execute(
                sa.text(
                    "UPDATE bot_leases SET owner = 'other', epoch = epoch + 1, "
                    "expires_at = now() + interval '1 hour' WHERE expires_at < now() "
                    "RETURNING epoch"
                )
            ).scalar_one()
            assert taken == 2
            await push(running, walk(40, start_ms=START_MS + 120_000, first_id=200), settle=False)
            cut(allow=True)
            await aio.eventually(lambda: "cut" not in engine.core.bots, "the bot stopped here")
            await aio.eventually(lambda: engine.recorder.pending == 0, "the queue written")
            assert engine.recorder.refused >= 1  # what it queued for the bot was refused
            orders_after = connection.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one()
            assert orders_after == orders_before
        finally:
            cut(allow=True)
            await engine.stop()

    try:
        aio.run(scenario(), timeout=60)
    finally:
        connection.close()
        kept.dispose()
        admin.dispose()


def test_sigkilled_engine_s_bots_trade_again_on_the_other_within_ttl_and_recovery(
    aio: Aio, tmp_path: Path, postgres_url: str, strategies_dir: Path
) -> None:
    names = ["k0", "k1", "k2", "k3"]
    add_bots(
        postgres_url,
        strategies_dir,
        [(name, "counting") for name in names],
        take_profit_pct=0.3,
        stop_loss_pct=0.3,
        max_holding_seconds=300.0,
        max_open_positions=2,
    )
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))
    log = tmp_path / "engines.log"
    processes: list[subprocess.Popen[bytes]] = []

    def command(replay: ReplayServer, engine_id: str, max_bots: int) -> list[str]:
        return engine_command(
            postgres_url,
            replay,
            strategies_dir,
            engine_id,
            lease_ttl_seconds=2,
            engine_max_bots=max_bots,
        )

    owners = partial(lease_owners, postgres_url)
    until = log_waiter(log)

    async def scenario() -> None:
        async with ReplayServer(source, speed=SPEED) as replay:
            processes.append(start(command(replay, "victim", 2), log))
            await until(lambda: len(owners()) == 2, "the first engine's two bots")
            processes.append(start(command(replay, "survivor", 4), log))
            await until(lambda: len(owners()) == 4, "the second engine's two bots")
            victims = {name for name, (owner, _) in owners().items() if owner == "victim"}
            assert len(victims) == 2

            def victim_positions() -> dict[tuple[str, int], dict[str, Any]]:
                found = open_positions(postgres_url)
                return {key: p for key, p in found.items() if key[0] in victims}

            await until(victim_positions, "open positions in the first engine's bots")
            processes[0].send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(processes[0].wait, 10) == -signal.SIGKILL
            at_kill = victim_positions()
            orders_at_kill = {
                r.client_order_id for r in query(postgres_url, "SELECT client_order_id FROM orders")
            }

            def taken_over() -> bool:
                now = owners()
                return all(now[name] == ("survivor", 2) for name in victims)

            await until(taken_over, "the survivor to take the bots over")
            await every_open_position_resumed(postgres_url, until, at_kill)

            # how soon is measured by benchmarks/bench_leases.py (takeover p50/p95), not here
            await until(
                partial(traded_again, postgres_url, victims, orders_at_kill),
                "the taken-over bots to trade again",
            )
            processes[1].send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(processes[1].wait, 20) == 0

    try:
        aio.run(scenario(), timeout=120)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert_no_order_twice_and_every_lease_handed_back(postgres_url)


async def every_open_position_resumed(
    url: str, until: Any, at_kill: dict[tuple[str, int], dict[str, Any]]
) -> None:
    """The takeover events name every position open at the kill as resumed."""
    claimed = await until(
        lambda: query(
            url,
            "SELECT payload FROM events WHERE kind = 'bots_claimed' ORDER BY id",
        ),
        "the takeover event",
    )
    payloads = [json.loads(p.payload) if isinstance(p.payload, str) else p.payload for p in claimed]
    resumed = {(item["bot"], item["seq"]) for p in payloads for item in p["resumed"]}
    assert set(at_kill) <= resumed  # every open position resumed from the database


def traded_again(url: str, victims: set[str], orders_at_kill: set[str]) -> bool:
    """Every one of `victims` has an order written since the kill."""
    rows = query(
        url,
        "SELECT o.client_order_id, b.name FROM orders o JOIN bots b ON b.id = o.bot_id",
    )
    fresh = {r.name for r in rows if r.client_order_id not in orders_at_kill}
    return victims <= fresh


def assert_no_order_twice_and_every_lease_handed_back(url: str) -> None:
    ids = [r.client_order_id for r in query(url, "SELECT client_order_id FROM orders")]
    assert len(ids) == len(set(ids))
    assert_positions_consistent(url, max_open_positions=2)
    # a graceful stop hands its leases back at once (expired, epoch kept)
    leases = query(url, "SELECT owner, expires_at <= now() AS free FROM bot_leases")
    assert all(row.free for row in leases)


def test_a_lease_that_changed_hands_and_came_back_restarts_its_bot_from_the_database(
    aio: Aio, postgres_url: str, strategies_dir: Path
) -> None:
    add_bots(postgres_url, strategies_dir, [("back", "always")])

    async def scenario() -> None:
        running = await start_engine(
            config_for(postgres_url, strategies_dir, engine_id="home", **LEASES)
        )
        engine = running.engine
        try:
            await push(running, walk(80))
            await aio.eventually(lambda: engine.core.metrics.entries >= 1, "an entry")
            # its writes in: one queued under epoch 1 would be refused, stopping it that way
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes flushed")
            first = engine.core.bots["back"]
            first_held = health_body(engine.status())["leases"]["held_since"]["back"]
            changed_at = datetime.now(UTC)
            # another engine held it (epoch 2) and let it lapse; this one took it back (3)
            execute(postgres_url, "UPDATE bot_leases SET epoch = epoch + 2")
            await aio.eventually(
                lambda: engine.leases.status({}).epochs.get(str(first.row.id)) == 3,
                "the new epoch",
            )
            await aio.eventually(
                lambda: "back" in engine.core.bots and engine.core.bots["back"] is not first,
                "the bot restarted",
            )
            lost = [event.message for event in engine.bus.recent("bot_lease_lost")]
            assert any("came back" in message for message in lost)
            claimed = engine.bus.recent("bots_claimed")
            assert claimed and claimed[-1].data["epochs"] == {"back": 3}
            leases = engine.status().leases
            assert leases is not None and leases.held_since["back"] >= changed_at  # its age
            assert datetime.fromisoformat(first_held) < changed_at  # restarts with the epoch
        finally:
            await engine.stop()

    aio.run(scenario(), timeout=60)


def test_a_joining_engine_takes_only_free_bots_and_a_graceful_stop_hands_over_at_once(
    aio: Aio, postgres_url: str, strategies_dir: Path
) -> None:
    names = [f"j{index}" for index in range(6)]
    add_bots(postgres_url, strategies_dir, [(name, "always") for name in names])

    def config(engine_id: str) -> Any:
        return config_for(
            postgres_url, strategies_dir, engine_id=engine_id, engine_max_bots=3, **LEASES
        )

    async def scenario() -> None:
        first = await start_engine(config("first"))
        second = await start_engine(config("second"))
        await aio.eventually(lambda: len(second.engine.core.bots) == 3, "the second's share")
        joining = await start_engine(config("joining"))
        try:
            await asyncio.sleep(1.0)  # several renewals: every bot is held, nothing moves
            assert joining.engine.core.bots == {}
            assert {len(r.engine.core.bots) for r in (first, second)} == {3}
            handed = set(first.engine.core.bots)
            await first.engine.stop()  # releases its leases: no TTL to wait for
            await aio.eventually(
                lambda: set(joining.engine.core.bots) == handed, "the joining engine's share"
            )
            epochs = joining.engine.status().leases
            assert epochs is not None and set(epochs.epochs.values()) == {2}
        finally:
            for running in (first, second, joining):
                await running.engine.stop()

    aio.run(scenario(), timeout=90)
