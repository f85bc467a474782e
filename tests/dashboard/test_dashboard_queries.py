"""The dashboard's reads (tradepipe.db.dashboard_queries) on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from tests.seed_data import MOMENTUM_HASH, RecentHistory
from tradepipe.db import BotStatus, Position, PositionStatus, QueryError, session_scope
from tradepipe.db.dashboard_queries import (
    FALLBACK_NOTE,
    bot_health,
    closed_positions,
    engine_health,
    equity_curve,
    open_position_marks,
)
from tradepipe.db.live_prices import LIVE_PRICES
from tradepipe.db.models import Heartbeat
from tradepipe.enums import ComponentKind


def test_equity_curve_accumulates_net_pnl_per_bot_and_in_total_with_filters(
    engine: Engine, seeded: RecentHistory
) -> None:
    with session_scope(engine) as session:
        points = equity_curve(session)
    # gamma's timeout, alpha's unfilled entry, alpha's win, alpha's loss: oldest first.
    assert [p.position_id for p in points] == [
        seeded.timeout_id,
        seeded.unfilled_id,
        seeded.win_id,
        seeded.loss_id,
    ]
    assert [p.bot_name for p in points] == ["gamma", "alpha", "alpha", "alpha"]
    assert [p.net_pnl for p in points] == pytest.approx([0.45, 0.0, 1.8, -1.1])
    assert [p.bot_equity for p in points] == pytest.approx([0.45, 0.0, 1.8, 0.7])
    assert [p.total_equity for p in points] == pytest.approx([0.45, 0.45, 2.25, 1.15])
    closed = [p.closed_at for p in points]
    assert closed == sorted(closed) and all(t.tzinfo is not None for t in closed)

    with session_scope(engine) as session:
        alpha = equity_curve(session, bot="alpha")
        recent = equity_curve(session, since=seeded.now - timedelta(days=1, minutes=1))
        before = equity_curve(session, until=seeded.now - timedelta(days=1, hours=12))
        assert equity_curve(session, bot="delta") == ()
        with pytest.raises(QueryError, match="time zone"):
            equity_curve(session, since=datetime(2024, 1, 1))
    assert [p.total_equity for p in alpha] == pytest.approx([0.0, 1.8, 0.7])
    assert [p.position_id for p in recent] == [seeded.win_id, seeded.loss_id]
    assert recent[-1].total_equity == pytest.approx(0.7)  # sums start at `since`
    assert [p.position_id for p in before] == [seeded.timeout_id]


def test_closed_positions_bound_the_close_time(engine: Engine, seeded: RecentHistory) -> None:
    midnight = seeded.now.replace(hour=0, minute=0, second=0)
    with session_scope(engine) as session:
        today = closed_positions(session, since=midnight)
        everything = closed_positions(session)
        gamma = closed_positions(session, bot="gamma", limit=1)
        with pytest.raises(QueryError, match="limit"):
            closed_positions(session, limit=0)
    assert [p.id for p in today] == [seeded.loss_id]
    assert today[0].net_pnl == pytest.approx(-1.1)
    assert [p.id for p in everything] == [
        seeded.loss_id,
        seeded.win_id,
        seeded.unfilled_id,
        seeded.timeout_id,
    ]
    assert [p.id for p in gamma] == [seeded.timeout_id]


def test_open_positions_are_marked_at_the_last_fill_of_their_symbol_or_say_why_not(
    engine: Engine, seeded: RecentHistory
) -> None:
    with session_scope(engine) as session:
        marks = {mark.position.id: mark for mark in open_position_marks(session)}
        only_beta = open_position_marks(session, bot="beta")
    assert set(marks) == {seeded.active_id, seeded.pending_id}
    active = marks[seeded.active_id]
    assert active.position.status is PositionStatus.ACTIVE
    assert (active.exchange, active.mark_price) == ("binance", 105.0)
    assert active.marked_at == seeded.loss_closed_at  # the short's stop-loss fill
    assert active.unrealised_pnl == pytest.approx(1.0)  # (105 - 103) * 0.5, long
    assert active.note == FALLBACK_NOTE and active.price_source == "last fill"  # no engine
    pending = marks[seeded.pending_id]
    assert pending.unrealised_pnl is None and pending.mark_price is None
    assert pending.note == "entry not filled yet"
    assert [mark.position.id for mark in only_beta] == [seeded.pending_id]

    with session_scope(engine) as session:
        row = session.get(Position, seeded.pending_id)
        assert row is not None
        row.status, row.entry_price = PositionStatus.ACTIVE, 3000.0  # no ETHUSDT fill exists
    with session_scope(engine) as session:
        (mark,) = open_position_marks(session, bot="beta")
    assert mark.unrealised_pnl is None
    assert mark.note == "no live price and no fill on binance ETHUSDT yet to mark it with"


def test_open_positions_are_marked_at_the_live_price_a_fresh_engine_publishes(
    engine: Engine, seeded: RecentHistory
) -> None:
    now = datetime.now(UTC)
    traded_ms = int((now - timedelta(seconds=3)).timestamp() * 1000)
    prices = {"BTCUSDT": {"exchange": "binance", "price": 110.0, "time_ms": traded_ms}}
    with session_scope(engine) as session:
        session.add(
            Heartbeat(
                kind=ComponentKind.ENGINE, name="e1", engine_id="e1", status="running",
                detail={LIVE_PRICES: prices}, started_at=now, beat_at=now,
            )
        )  # fmt: skip
    with session_scope(engine) as session:
        marks = {mark.position.id: mark for mark in open_position_marks(session)}
    active = marks[seeded.active_id]
    assert (active.mark_price, active.price_source, active.note) == (110.0, "engine", None)
    assert active.unrealised_pnl == pytest.approx((110.0 - 103.0) * 0.5)
    assert active.marked_at is not None and 2 < (now - active.marked_at).total_seconds() < 4

    with session_scope(engine) as session:  # the engine stopped beating: the fallback, said
        beat = session.get(Heartbeat, (ComponentKind.ENGINE, "e1"))
        assert beat is not None
        beat.beat_at = now - timedelta(minutes=5)
    with session_scope(engine) as session:
        stale = {mark.position.id: mark for mark in open_position_marks(session)}[seeded.active_id]
    assert (stale.mark_price, stale.price_source, stale.note) == (105.0, "last fill", FALLBACK_NOTE)


def test_bot_and_engine_health(engine: Engine, seeded: RecentHistory) -> None:
    with session_scope(engine) as session:
        health = {item.bot.name: item for item in bot_health(session, now=seeded.now)}
    assert list(health) == ["alpha", "beta", "delta", "gamma"]
    alpha, beta, gamma, delta = (health[name] for name in ("alpha", "beta", "gamma", "delta"))

    assert not alpha.needs_attention
    assert alpha.heartbeat is not None and alpha.heartbeat.age_seconds == pytest.approx(3)
    assert alpha.uptime_seconds == pytest.approx(4 * 3600 - 3)
    assert alpha.strategy is not None and alpha.strategy.version_count == 3
    assert alpha.open_positions == 1
    assert alpha.model_version == "3"  # reported in its heartbeat
    assert alpha.strategy_hash == MOMENTUM_HASH  # its latest order's
    assert alpha.last_order_at is not None

    assert beta.is_error and not beta.is_stale and beta.needs_attention
    assert beta.bot.last_error is not None and "InsufficientFunds" in beta.bot.last_error
    assert beta.open_positions == 1 and beta.model_version == "3"

    assert gamma.is_stale and not gamma.is_error
    assert gamma.strategy is not None and gamma.strategy.error_line == 12
    assert gamma.model_version is None and gamma.open_positions == 0

    assert delta.heartbeat is None and delta.strategy is None  # "vanished" is not registered
    assert not delta.needs_attention  # stopped: not beating is expected
    assert (delta.uptime_seconds, delta.last_order_at, delta.strategy_hash) == (None, None, None)
    # Marked running, yet it never beat: stale.
    running = dataclasses.replace(
        delta, bot=dataclasses.replace(delta.bot, status=BotStatus.RUNNING)
    )
    assert running.is_stale

    with session_scope(engine) as session:
        (engine_1,) = engine_health(session, now=seeded.now)
        later = engine_health(session, now=seeded.now + timedelta(hours=1))
    assert engine_1.heartbeat.name == "engine-1" and engine_1.heartbeat.version == "0.1.0"
    assert engine_1.bots == ("alpha", "beta", "gamma")
    assert not engine_1.heartbeat.is_stale
    assert engine_1.uptime_seconds == pytest.approx(5 * 3600 - 2)
    assert later[0].heartbeat.is_stale


def test_empty_database(engine: Engine) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        assert equity_curve(session) == ()
        assert closed_positions(session) == ()
        assert open_position_marks(session) == ()
        assert bot_health(session, now=now) == ()
        assert engine_health(session, now=now) == ()
