"""The cost of fencing on PostgreSQL: bot writes applied with the lease check (every bot's
lease row read FOR SHARE in the writing transaction) against the same writes unfenced.

2,000 bot batches (the serialized book, as each engine step writes) over 8 bots, 256 per
transaction as the recorder groups them, into a fresh database on TRADEPIPE_TEST_PG_URL's
server (dropped afterwards). The reference, measured in the same run, is the unfenced
write path an engine on SQLite or before leases used; the ratio is what fencing costs.
Prints a note and measures nothing when no PostgreSQL server is reachable.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.harness import Measurement, best_of, report
from benchmarks.postgres import fresh_database
from live.engine.persistence import BotBatch, apply_writes
from tradepipe.db import Bot, BotMode, create_engine_for, session_scope
from tradepipe.db.leases import claim_leases

BOTS = 8
WRITES = 2_000
PER_TRANSACTION = 256
OWNER = "bench-engine"


def run() -> None:
    with fresh_database("fencing") as url:
        if url is not None:
            _measure(url)


def _measure(url: str) -> None:
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
