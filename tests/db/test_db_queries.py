"""The query layer returns the seeded values as frozen views, with PnL computed right."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.seed_data import T0, ReferenceHistory
from tradepipe.db import (
    Base,
    Bot,
    BotMode,
    ComponentKind,
    OrderRole,
    OrderStatus,
    PositionStatus,
    PromotionDecision,
    QueryError,
    StrategyStatus,
    daily_stats,
    get_bot,
    get_position,
    get_strategy,
    heartbeats,
    list_bots,
    list_model_promotions,
    list_orders,
    list_positions,
    list_strategies,
    pnl_summary,
    recent_events,
    session_scope,
)


def test_bots(session: Session, seeded: ReferenceHistory) -> None:
    bots = list_bots(session)
    assert [bot.name for bot in bots] == ["alpha", "beta", "gamma"]
    alpha = get_bot(session, "alpha")
    assert alpha is not None
    assert alpha.id == seeded.alpha_id
    assert alpha.config is not None and alpha.config.model_name == "btc-lgbm"
    assert alpha.config_error is None
    assert (alpha.symbol, alpha.exchange, alpha.timeframe) == ("BTCUSDT", "binance", "1m")
    assert bots[1].mode is BotMode.TESTNET
    assert bots[2].enabled is False
    assert get_bot(session, "nobody") is None


def test_bot_with_unreadable_config_is_still_listed(
    engine: Engine, seeded: ReferenceHistory
) -> None:
    with engine.begin() as connection:  # a raw write that bypasses the model's validation
        connection.execute(
            sa.update(Bot).where(Bot.name == "gamma").values(config={"capital_per_trade": -1})
        )
    with session_scope(engine) as session:
        gamma = get_bot(session, "gamma")
    assert gamma is not None and gamma.config is None
    assert gamma.config_error is not None and "capital_per_trade" in gamma.config_error


def test_strategies(session: Session, seeded: ReferenceHistory) -> None:
    strategies = list_strategies(session)
    assert [strategy.name for strategy in strategies] == ["broken", "momentum"]
    broken = strategies[0]
    assert broken.status is StrategyStatus.INVALID
    assert broken.error_line == 7 and broken.error is not None and "broken.py:7" in broken.error

    momentum = get_strategy(session, "momentum")
    assert momentum is not None
    assert momentum.strategy.version_count == 3
    assert [bot.name for bot in momentum.bots] == ["alpha", "beta"]
    assert get_strategy(session, "gone") is None  # gamma names it, but it is not registered


def test_orders_filters(session: Session, seeded: ReferenceHistory) -> None:
    everything = list_orders(session)
    assert len(everything) == 7
    created = [order.created_at for order in everything]
    assert created == sorted(created, reverse=True)
    assert everything[0].role is OrderRole.ENTRY and everything[0].status is OrderStatus.CANCELLED
    assert {order.bot_name for order in everything} == {"alpha"}

    assert list_orders(session, bot="beta") == ()
    assert len(list_orders(session, symbol="BTCUSDT")) == 7
    assert len(list_orders(session, status=OrderStatus.FILLED)) == 5
    assert len(list_orders(session, status=["open", OrderStatus.NEW])) == 1
    assert len(list_orders(session, role="entry")) == 4
    assert len(list_orders(session, role="take_profit", status="filled")) == 1
    window = list_orders(session, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
    assert [order.role for order in window] == [OrderRole.STOP_LOSS, OrderRole.ENTRY]
    assert len(list_orders(session, limit=2)) == 2


def test_positions(session: Session, seeded: ReferenceHistory) -> None:
    assert len(list_positions(session, bot="alpha")) == 4
    open_ = list_positions(session, status=[PositionStatus.PENDING, PositionStatus.ACTIVE])
    assert {(p.bot_name, p.status) for p in open_} == {
        ("alpha", PositionStatus.ACTIVE),
        ("beta", PositionStatus.PENDING),
    }
    assert len(list_positions(session, status="closed")) == 3
    assert list_positions(session, symbol="SOLUSDT") == ()


def test_position_with_its_orders_and_fills(session: Session, seeded: ReferenceHistory) -> None:
    detail = get_position(session, seeded.closed_win_id)
    assert detail is not None
    assert detail.position.bot_name == "alpha"
    assert detail.position.net_pnl == pytest.approx(1.8)
    assert detail.position.closed_at == T0 + timedelta(minutes=5)
    assert [order.role for order in detail.orders] == [OrderRole.ENTRY, OrderRole.TAKE_PROFIT]
    assert [fill.exchange_fill_id for fill in detail.fills] == ["t-1", "t-2", "t-3"]
    assert detail.fills[0].order_id == seeded.win_entry_order_id
    assert sum(fill.fee for fill in detail.fills) == pytest.approx(0.2)
    assert get_position(session, 987_654) is None


def test_pnl_summary(session: Session, seeded: ReferenceHistory) -> None:
    summary = pnl_summary(session)
    assert [bot.bot_name for bot in summary.bots] == ["alpha", "beta", "gamma"]
    alpha = summary.for_bot("alpha")
    assert alpha is not None
    # The unfilled maker-timeout entry is closed but is not a trade.
    assert (alpha.trades, alpha.wins, alpha.losses, alpha.open_positions) == (2, 1, 1, 1)
    assert alpha.realised_pnl == pytest.approx(1.0)
    assert alpha.fees == pytest.approx(0.3)
    assert alpha.net_pnl == pytest.approx(0.7)
    assert alpha.win_rate == pytest.approx(0.5)
    beta = summary.for_bot("beta")
    assert beta is not None
    assert (beta.trades, beta.open_positions, beta.win_rate) == (0, 1, None)
    gamma = summary.for_bot("gamma")
    assert gamma is not None and (gamma.trades, gamma.realised_pnl) == (0, 0.0)
    assert (summary.trades, summary.open_positions) == (2, 2)
    assert summary.net_pnl == pytest.approx(0.7)
    assert summary.win_rate == pytest.approx(0.5)


def test_pnl_summary_over_a_window(session: Session, seeded: ReferenceHistory) -> None:
    later = pnl_summary(session, since=T0 + timedelta(minutes=30))
    alpha = later.for_bot("alpha")
    assert alpha is not None
    assert (alpha.trades, alpha.wins, alpha.losses) == (1, 0, 1)
    assert alpha.realised_pnl == pytest.approx(-1.0)
    assert alpha.open_positions == 1  # open positions are "now", whatever the window

    only_beta = pnl_summary(session, bot="beta", until=T0)
    assert [bot.bot_name for bot in only_beta.bots] == ["beta"]


def test_daily_stats(session: Session, seeded: ReferenceHistory) -> None:
    rows = daily_stats(session)
    assert [(row.bot_name, row.day) for row in rows] == [
        ("alpha", date(2024, 3, 1)),
        ("beta", date(2024, 3, 2)),
    ]
    assert rows[0].net_pnl == pytest.approx(0.7) and rows[0].win_rate == pytest.approx(0.5)
    assert rows[1].win_rate is None
    assert [row.bot_name for row in daily_stats(session, since=date(2024, 3, 2))] == ["beta"]
    assert daily_stats(session, bot="alpha", until=date(2024, 3, 1)) == ()


def test_heartbeats_are_judged_stale_against_the_given_clock(
    session: Session, seeded: ReferenceHistory
) -> None:
    beats = heartbeats(session, now=seeded.now, stale_after=timedelta(minutes=5))
    assert [(beat.kind, beat.name) for beat in beats] == [
        (ComponentKind.ENGINE, "engine-1"),
        (ComponentKind.BOT, "alpha"),
        (ComponentKind.BOT, "beta"),
    ]
    assert [beat.age_seconds for beat in beats] == [0.0, 60.0, 600.0]
    assert [beat.is_stale for beat in beats] == [False, False, True]
    assert beats[0].detail == {"bots": 2}
    assert beats[0].beat_at.tzinfo == UTC


def test_model_promotions(session: Session, seeded: ReferenceHistory) -> None:
    everything = list_model_promotions(session)
    assert (everything[0].model_name, everything[0].version) == ("btc-lgbm", "3")
    btc = list_model_promotions(session, model_name="btc-lgbm")
    assert [p.decision for p in btc] == [PromotionDecision.REFUSED, PromotionDecision.PROMOTED]
    assert btc[0].reasons == {"beats_champion": {"passed": False}}
    assert btc[0].metrics == {"sharpe": 0.9}
    assert (btc[0].run_id, btc[0].feature_spec_hash is not None) == ("r3", True)
    assert len(list_model_promotions(session, limit=1)) == 1


def test_recent_events(session: Session, seeded: ReferenceHistory) -> None:
    events = recent_events(session)
    assert [event.kind for event in events] == [
        "order_filled",
        "strategy_reloaded",
        "order_filled",
    ]
    assert [event.bot_name for event in recent_events(session, kind="order_filled")] == [
        "beta",
        "alpha",
    ]
    assert [event.payload for event in recent_events(session, bot="alpha")] == [{"order": "c-1"}]
    assert len(recent_events(session, limit=1)) == 1


def test_views_are_frozen_copies_not_orm_rows(session: Session, seeded: ReferenceHistory) -> None:
    views = [
        *list_bots(session),
        *list_orders(session),
        *list_positions(session),
        *heartbeats(session),
        *recent_events(session),
    ]
    assert views
    for view in views:
        assert dataclasses.is_dataclass(view) and not isinstance(view, Base)
    bot = list_bots(session)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        bot.name = "renamed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: list_orders(s, status="done"), "unknown order status 'done'"),
        (lambda s: list_orders(s, role=["entry", "exit"]), "unknown order role 'exit'"),
        (lambda s: list_positions(s, status="open"), "unknown position status 'open'"),
        (lambda s: list_orders(s, since=datetime(2024, 1, 1)), "since=.* has no time zone"),
        (lambda s: pnl_summary(s, until=datetime(2024, 1, 1)), "until=.* has no time zone"),
        (lambda s: recent_events(s, limit=0), "limit=0"),
    ],
)
def test_bad_filters_are_refused_by_name(session: Session, call: object, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        call(session)  # type: ignore[operator]
