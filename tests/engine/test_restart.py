"""Stop and start again on the same database: books, barriers, deadlines and strategy state
come back; working orders are registered with the (new, empty) paper broker again; no
client order id is ever used twice."""

from __future__ import annotations

from pathlib import Path

from live.engine import Engine
from tests.engine.helpers import (
    START_MS,
    Aio,
    Running,
    add_bots,
    config_for,
    push,
    query,
    start_engine,
    walk,
)


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    return {
        name: [
            (
                p.seq,
                p.status,
                p.take_profit_price,
                p.stop_loss_price,
                p.expires_at_ms,
                tuple(o.client_order_id for o in (p.entry, *p.exits) if o.is_working),
            )
            for p in bot.book.positions
        ]
        for name, bot in engine.core.bots.items()
    }


def test_a_restart_resumes_every_position_and_order(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(
        database_url,
        strategies_dir,
        [("cnt", "counting"), ("lim", "always_limit")],
        max_holding_seconds=600.0,
        take_profit_pct=5.0,
        stop_loss_pct=5.0,
        maker_order_timeout_seconds=600.0,
    )
    config = config_for(database_url, strategies_dir)
    seen = 0

    async def trade(running: Running, count: int) -> None:
        nonlocal seen
        await push(running, walk(count, start_ms=START_MS + seen * 1_000, first_id=seen + 1))
        seen += count

    async def first_run() -> tuple[dict[str, list[tuple[object, ...]]], int]:
        running = await start_engine(config)
        engine = running.engine
        try:
            await trade(running, 45)
            state = snapshot(engine)
            assert state["cnt"] and state["cnt"][0][1].value == "active"
            assert state["lim"] and state["lim"][0][1].value == "pending"
            return state, engine.core.bots["cnt"].strategy.seen  # type: ignore[attr-defined]
        finally:
            await engine.stop()

    async def second_run(expected: dict[str, list[tuple[object, ...]]], counted: int) -> None:
        running = await start_engine(config)
        engine = running.engine
        try:
            assert snapshot(engine) == expected
            assert engine.core.bots["cnt"].strategy.seen == counted  # type: ignore[attr-defined]
            working = {o for rows in expected.values() for row in rows for o in row[5]}
            await aio.eventually(lambda: engine.core.outbox.pending == 0, "re-registration")
            open_orders = await engine.broker.open_orders()
            assert {order.client_order_id for order in open_orders} == working
            [event] = [e for e in engine.bus.recent() if e.kind == "engine_reconciled"]
            assert len(event.data["resumed"]) == 2 and set(event.data["resent"]) == working
            await trade(running, 30)
        finally:
            await engine.stop()

    expected, counted = aio.run(first_run())
    orders_before = query(database_url, "SELECT client_order_id FROM orders")
    aio.run(second_run(expected, counted))
    orders = query(database_url, "SELECT client_order_id FROM orders")
    ids = [row.client_order_id for row in orders]
    assert len(ids) == len(set(ids)) and {r.client_order_id for r in orders_before} <= set(ids)


def test_a_resting_take_profit_fills_at_its_limit_after_a_restart(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    """Before a restart a resting take-profit that the market trades through fills at its
    limit (maker); re-registered after one, it must too, not at the first trade's price."""
    add_bots(database_url, strategies_dir, [("tp", "always")], take_profit_pct=1.0,
             stop_loss_pct=5.0, max_holding_seconds=600.0, max_open_positions=1)  # fmt: skip
    config = config_for(database_url, strategies_dir)
    calm = (1.0001, 0.9999)  # a zigzag far from both barriers

    async def first_run() -> float:
        running = await start_engine(config)
        engine = running.engine
        try:
            await push(running, walk(45, moves=calm))
            [position] = engine.core.bots["tp"].book.positions
            assert position.status.value == "active" and position.take_profit_price is not None
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
            return position.take_profit_price
        finally:
            await engine.stop()

    async def second_run() -> None:
        running = await start_engine(config)
        engine = running.engine
        try:
            await aio.eventually(lambda: engine.core.outbox.pending == 0, "re-registration")
            # the market rallied far through the take-profit while the engine was down
            await push(running, walk(5, start_ms=START_MS + 45_000, first_id=46, moves=(1.0,),
                                     price=105.0))  # fmt: skip
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()

    limit = aio.run(first_run())
    assert limit < 105.0
    aio.run(second_run())
    [fill] = query(
        database_url,
        "SELECT f.price, f.fee, o.price AS limit_price FROM fills f JOIN orders o ON "
        "f.order_id = o.id WHERE o.role = 'take_profit'",
    )
    assert fill.price == fill.limit_price == limit  # at its limit, not at 105
    [position] = query(database_url, "SELECT exit_reason FROM positions WHERE status = 'closed'")
    assert position.exit_reason == "take_profit"
