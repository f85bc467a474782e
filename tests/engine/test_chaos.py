"""Chaos: the engine process SIGKILLed at 20 random moments (seeded) while paper bots trade on
the replayed market, restarted each time on the same database. After every kill the
database's invariants hold (tests/engine/invariants.py: no order twice, every position
consistent with its orders and fills and with its bot's saved book, no bot over its
position limit), and no restart resumes a position that was closed when it was killed.

About a third of the kills fall while the engine starts (imports, migration, journal
replay, reconciliation), the others within a second of trading. One replay server serves
every run (its market goes on while the engine is down). A restart costs two interpreter
starts (the engine and its strategy validation process), so the test takes one to three
minutes on two cores, depending on what else runs. Nothing depends on a timing being met:
each moment is only a moment, and every check is on what the database says."""

from __future__ import annotations

import asyncio
import functools
import random
import signal
import time
from pathlib import Path

from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import START_MS, Aio, MarketTimes, add_bots, query
from tests.engine.invariants import closed_positions, problems
from tests.engine.processes import EngineProcess, last_event_id, reconciled_after

SPEED = 100
SEED = 14
KILLS = 20


def bots_running(engine: EngineProcess) -> bool:
    """Every bot past its warm-up: deciding, entering, exiting."""
    health = engine.health()
    return bool(health and health["bots"] and all(b["state"] == "running" for b in health["bots"]))


def test_sigkill_at_twenty_random_moments_keeps_the_database_consistent(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    url = database_url
    for unused in ("lgbm_threshold.py", "explode.py"):  # each start validates every file
        (strategies_dir / unused).unlink()
    add_bots(
        url,
        strategies_dir,
        [("cnt", "counting"), ("lim", "always_limit"), ("mkt", "always")],
        take_profit_pct=0.2,
        stop_loss_pct=0.2,
        max_holding_seconds=30.0,
        maker_order_timeout_seconds=15.0,
        max_open_positions=2,
    )
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))
    moments = random.Random(SEED)
    resumed_total = 0
    trading_kills = 0

    async def scenario() -> None:
        nonlocal resumed_total, trading_kills
        async with ReplayServer(source, speed=SPEED) as replay:
            engine = EngineProcess(
                url, replay, strategies_dir, tmp_path / "engine.log", warmup_from_exchange=False
            )
            try:
                for kill in range(KILLS):
                    # read in threads: the replay server shares this event loop
                    closed = await asyncio.to_thread(closed_positions, url)
                    last = await asyncio.to_thread(last_event_id, url)
                    started = time.monotonic()
                    engine.start()
                    during_start = moments.random() < 0.3
                    if during_start:  # in imports, migration, journal replay, reconciliation
                        await asyncio.sleep(moments.uniform(0.5, 5.0))
                    else:  # trading: managing the resumed positions, entering, exiting
                        trading_kills += 1
                        started_up = functools.partial(reconciled_after, url, last)
                        await engine.until(started_up, f"start {kill}", 120)
                        await engine.until(
                            functools.partial(bots_running, engine), f"run {kill} trading", 120
                        )
                        await asyncio.sleep(moments.uniform(0.0, 1.0))
                    assert await engine.kill() == -signal.SIGKILL
                    event = await asyncio.to_thread(reconciled_after, url, last)
                    if event is not None:
                        resumed = {(item["bot"], item["seq"]) for item in event["resumed"]}
                        assert not resumed & closed, f"kill {kill}: closed positions resumed"
                        resumed_total += len(resumed)
                    found = await asyncio.to_thread(problems, url)
                    assert found == [], (
                        f"kill {kill} ({'starting' if during_start else 'trading'}, "
                        f"{time.monotonic() - started:.2f} s after start): {found}"
                    )
                closed = await asyncio.to_thread(closed_positions, url)
                last = await asyncio.to_thread(last_event_id, url)
                engine.start()
                event = await engine.until(
                    lambda: reconciled_after(url, last), "the last start", 120
                )
                assert not {(i["bot"], i["seq"]) for i in event["resumed"]} & closed
                assert await engine.stop() == 0
            finally:
                engine.cleanup()

    aio.run(scenario(), timeout=540)  # about a minute; bounded far above for a busy machine
    assert problems(url) == []
    closes = query(url, "SELECT COUNT(*) AS n FROM positions WHERE status = 'closed'")[0].n
    assert trading_kills > 10 and closes > 0  # the bots did trade between the kills
    assert resumed_total > 0  # and kills did fall on open positions
    statuses = {r.status for r in query(url, "SELECT status FROM bots")}
    assert statuses == {"stopped"}
