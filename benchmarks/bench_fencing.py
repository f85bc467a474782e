"""The cost of fencing on PostgreSQL: bot writes applied with the lease check (every bot's
lease row read FOR SHARE in the writing transaction) against the same writes unfenced.

2,000 bot batches (the serialized book, as each engine step writes) over 8 bots, 256 per
transaction as the recorder groups them, into a fresh database on TRADEPIPE_TEST_PG_URL's
server (dropped afterwards). The reference, measured in the same run, is the unfenced
write path an engine on SQLite or before leases used; the ratio is what fencing costs.
Prints a note and measures nothing when no PostgreSQL server is reachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks.harness import Measurement, best_of, report
from live.engine.persistence import BotBatch, apply_writes
from tradepipe.db import Bot, BotMode, create_engine_for, session_scope, upgrade_database
from tradepipe.db.leases import claim_leases

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BOTS = 8
WRITES = 2_000
PER_TRANSACTION = 256
OWNER = "bench-engine"


def run() -> None:
    admin_url = make_url(os.environ.get("TRADEPIPE_TEST_PG_URL", DEFAULT_PG_URL))
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as error:
        print(f"fencing: no PostgreSQL server reachable ({error.orig}); nothing measured")
        admin.dispose()
        return
    name = f"tradepipe_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        _measure(url)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _measure(url: str) -> None:
    upgrade_database(url)
    engine = create_engine_for(url)
    try:
        with session_scope(engine) as session:
            bots = [_bot(index) for index in range(BOTS)]
            session.add_all(bots)
            session.flush()
            ids = [bot.id for bot in bots]
            epochs = claim_leases(session, OWNER, ids, ttl_seconds=3600, max_bots=BOTS)
        writes = [
            BotBatch(
                ids[n % BOTS],
                f"bench{n % BOTS}",
                book={"version": 1, "positions": [], "next_seq": n},
                epoch=epochs[ids[n % BOTS]],
            )
            for n in range(WRITES)
        ]

        def applying(owner: str | None) -> Callable[[], None]:
            def work() -> None:
                for start in range(0, WRITES, PER_TRANSACTION):
                    with session_scope(engine) as session:
                        refused = apply_writes(
                            session, writes[start : start + PER_TRANSACTION], owner
                        )
                        assert not refused

            return work

        fenced = best_of(3, applying(OWNER))
        unfenced = best_of(3, applying(None))
    finally:
        engine.dispose()
    report(
        f"bot writes on PostgreSQL: {WRITES} batches, {BOTS} bots, {PER_TRANSACTION} a transaction",
        Measurement("fenced (lease epoch checked)", fenced, WRITES, "writes"),
        Measurement("unfenced (reference)", unfenced, WRITES, "writes"),
    )


def _bot(index: int) -> Bot:
    from tradepipe.botconfig import parse_bot_config

    config = parse_bot_config(
        {
            "capital_per_trade": 100.0,
            "take_profit_pct": 1.0,
            "stop_loss_pct": 1.0,
            "max_holding_seconds": 60.0,
            "maker_order_timeout_seconds": 10.0,
        }
    )
    return Bot(
        name=f"bench{index}",
        strategy_name="ema_rsi",
        symbol="BTCUSDT",
        exchange="binance",
        timeframe="1m",
        mode=BotMode.PAPER,
        config=config,
        enabled=True,
    )
