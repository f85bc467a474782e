"""What the engine writes: idempotent batches (applied twice, counted once), the market
entry's quantity before and after its fill, and a write that can never succeed set aside
without blocking the ones behind it (and never reported durable)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from live.engine.events import EngineEvent
from live.engine.persistence import BotBatch, EventWrite, FillRecord, apply_writes
from live.engine.recorder import EngineDatabase, Recorder
from tests.engine.helpers import Aio, add_bots, config_for, query
from tradepipe.db import session_scope
from tradepipe.enums import OrderType
from tradepipe.orders import EntryRequest, Event, FeeSchedule, PositionBook, PositionClosed


def request() -> EntryRequest:
    return EntryRequest(
        order_type=OrderType.MARKET,
        capital=100.0,
        take_profit_pct=1.0,
        stop_loss_pct=1.0,
        max_holding_ms=60_000,
        strategy_hash="h" * 64,
        model_version="3",
    )


def batch(
    bot_id: int,
    book: PositionBook,
    events: tuple[Event, ...],
    *,
    fills: tuple[FillRecord, ...] = (),
    reference_price: float | None = None,
) -> BotBatch:
    """What the engine writes after `events` of position 1 (its final snapshot)."""
    closed = [e.position for e in events if isinstance(e, PositionClosed)]
    position = book.position(1) or closed[-1]
    return BotBatch(
        bot_id,
        "p",
        events=events,
        positions=(position,),
        fills=fills,
        book=book.to_dict(),
        reference_price=reference_price,
    )


def test_batches_are_idempotent_and_a_market_entry_gets_its_real_quantity(
    database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("p", "always")])
    [bot] = query(database_url, "SELECT id FROM bots")
    book = PositionBook("p", "BTCUSDT", fees=FeeSchedule(0.001, 0.001), simulated=False)
    database = EngineDatabase(database_url, busy_timeout_ms=1_000)

    def write(item: BotBatch) -> None:
        for _ in range(2):  # a retry after a commit whose answer was lost
            with session_scope(database.engine) as session:
                apply_writes(session, [item])

    try:
        placed = book.submit_entry(request(), 1_000)
        write(batch(bot.id, book, placed, reference_price=50.0))
        [order] = query(database_url, "SELECT quantity, status, model_version FROM orders")
        assert (order.quantity, order.status, order.model_version) == (2.0, "new", "3")

        filled = book.on_fill("p-1-en", 40.0, 2_000)
        fill = FillRecord("p-1-en", "paper:p-1-en:1", 40.0, 2.5, 0.1, 2_000)
        write(batch(bot.id, book, filled, fills=(fill,)))
        entry = query(database_url, "SELECT quantity FROM orders WHERE role = 'entry'")
        assert entry[0].quantity == 2.5  # the filled quantity replaces the estimate

        exit_fill = book.on_fill("p-1-tp", 40.4, 3_000)
        tp = FillRecord("p-1-tp", "paper:p-1-tp:1", 40.4, 2.5, 0.1, 3_000)
        write(batch(bot.id, book, exit_fill, fills=(tp,)))
    finally:
        database.dispose()
    assert len(query(database_url, "SELECT id FROM orders")) == 2
    assert len(query(database_url, "SELECT id FROM fills")) == 2
    [position] = query(database_url, "SELECT status, exit_reason, quantity FROM positions")
    assert (position.status, position.exit_reason, position.quantity) == (
        "closed",
        "take_profit",
        2.5,
    )
    [stats] = query(database_url, "SELECT trades, wins, losses FROM daily_bot_stats")
    assert (stats.trades, stats.wins, stats.losses) == (1, 1, 0)  # counted once, not twice
    closed_events = query(database_url, "SELECT id FROM events WHERE kind = 'position_closed'")
    assert len(closed_events) == 2  # the human log may repeat itself; the figures may not


def test_a_write_that_cannot_succeed_is_set_aside_and_never_durable(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("p", "always")])
    [bot] = query(database_url, "SELECT id FROM bots")
    config = config_for(database_url, strategies_dir)
    broken = BotBatch(bot.id, "p", fills=(FillRecord("p-9-en", "x", 1.0, 1.0, 0.0, 1),))

    async def scenario() -> None:
        database = EngineDatabase(database_url, busy_timeout_ms=1_000)
        recorder = Recorder(database, config, on_health=lambda available, error: None)
        task = asyncio.create_task(recorder.run())
        try:
            first = recorder.submit(EventWrite(EngineEvent("note", "before")))
            bad = recorder.submit(broken)
            last = recorder.submit(EventWrite(EngineEvent("note", "after")))
            assert await recorder.wait_durable(last, 5.0)
            assert await recorder.wait_durable(first, 0.1)
            assert not await recorder.wait_durable(bad, 0.1)
            assert recorder.dead_letters == [broken] and recorder.available
        finally:
            await recorder.close(2.0)
            await asyncio.wait_for(task, 2.0)
            database.dispose()

    aio.run(scenario())
    notes = query(database_url, "SELECT payload FROM events WHERE kind = 'note'")
    assert len(notes) == 2
