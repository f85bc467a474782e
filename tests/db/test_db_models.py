"""Every model round-trips unchanged through both backends, and the schema refuses bad rows."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tradepipe.db import (
    Base,
    Bot,
    BotConfig,
    BotConfigError,
    BotLease,
    BotMode,
    BotState,
    BotStatus,
    ComponentKind,
    DailyBotStats,
    EngineControl,
    Event,
    ExitReason,
    Fill,
    Heartbeat,
    ModelPromotion,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    PromotionDecision,
    Side,
    Strategy,
    StrategyStatus,
    session_scope,
)
from tradepipe.db.live_reviews import LiveReview
from tradepipe.db.shadow import ShadowPosition, ShadowRun
from tradepipe.db.strategy_sources import StrategySource
from tradepipe.timeframes import InvalidTimeframeError

HASH_A = "a" * 64
HASH_B = "b" * 64
SOURCE = b"class Dip:\n    pass\n"  # bytes: sources are kept exactly as on disk


def bot_config(**overrides: object) -> dict[str, object]:
    return {
        "capital_per_trade": 50.0,
        "take_profit_pct": 0.8,
        "stop_loss_pct": 0.4,
        "max_holding_seconds": 900,
        "maker_order_timeout_seconds": 15,
        **overrides,
    }


# An odd offset and microseconds: both must survive, normalised to UTC.
PLUS_TWO = timezone(timedelta(hours=2))
WHEN = datetime(2024, 5, 6, 9, 30, 15, 123456, tzinfo=PLUS_TWO)


def _columns(row: Base) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in sa.inspect(row).mapper.column_attrs}


def _one_of_each(session: Session) -> list[Base]:
    """One fully populated row of every model (no column left at its default)."""
    strategy, bot, shadow_run = _strategy_bot_and_shadow_run()
    session.add_all([strategy, bot, shadow_run])
    session.flush()
    position = _closed_position(bot.id)
    session.add(position)
    session.flush()
    order = _partly_filled_entry(bot.id, position.id)
    session.add(order)
    session.flush()
    rows: list[Base] = [
        strategy,
        bot,
        position,
        order,
        *_trading_records(bot.id, order.id, position.id),
        *_state_and_review_records(bot.id),
        shadow_run,
        _closed_shadow_position(shadow_run.id),
    ]
    session.add_all(rows[4:])
    session.flush()
    return rows


def _strategy_bot_and_shadow_run() -> tuple[Strategy, Bot, ShadowRun]:
    strategy = Strategy(
        name="momentum",
        file_path="strategies/momentum.py",
        class_name="Momentum",
        content_hash=HASH_A,
        status=StrategyStatus.INVALID,
        error="momentum.py:3: NameError",
        error_line=3,
        version_count=4,
        created_at=WHEN,
        updated_at=WHEN,
    )
    bot = Bot(
        name="alpha",
        strategy_name="momentum",
        symbol="BTCUSDT",
        exchange="binance",
        timeframe="15m",
        mode=BotMode.LIVE,
        config=bot_config(model_name="m"),
        enabled=True,
        status=BotStatus.ERROR,
        last_error="feed lost",
        created_at=WHEN,
        updated_at=WHEN,
    )
    shadow_run = ShadowRun(
        bot_name="alpha",
        model_name="btc-lgbm",
        model_version="8",
        symbol="BTCUSDT",
        strategy_hash=HASH_A,
        started_at=WHEN,
        updated_at=WHEN + timedelta(hours=1),
        decisions=60,
        entries=3,
    )
    return strategy, bot, shadow_run


def _closed_position(bot_id: int) -> Position:
    return Position(
        bot_id=bot_id,
        symbol="BTCUSDT",
        side=Side.SELL,
        status=PositionStatus.CLOSED,
        quantity=0.125,
        entry_price=64000.5,
        exit_price=63000.25,
        take_profit_price=63000.25,
        stop_loss_price=64500.0,
        opened_at=WHEN,
        closed_at=WHEN + timedelta(minutes=3),
        expires_at=WHEN + timedelta(hours=1),
        exit_reason=ExitReason.TAKE_PROFIT,
        fees=0.0625,
        realised_pnl=125.03125,
        strategy_hash=HASH_A,
        model_version="7",
        created_at=WHEN,
        updated_at=WHEN,
    )


def _partly_filled_entry(bot_id: int, position_id: int) -> Order:
    return Order(
        client_order_id="alpha-1",
        exchange_order_id="88",
        bot_id=bot_id,
        position_id=position_id,
        symbol="BTCUSDT",
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        price=64000.5,
        quantity=0.125,
        filled_quantity=0.0625,
        status=OrderStatus.PARTIALLY_FILLED,
        role=OrderRole.ENTRY,
        strategy_hash=HASH_A,
        model_version="7",
        reason="signal 0.83",
        error="none",
        created_at=WHEN,
        updated_at=WHEN,
    )


def _trading_records(bot_id: int, order_id: int, position_id: int) -> list[Base]:
    """What trading leaves behind: a fill, daily stats, a heartbeat, a promotion, an event."""
    return [
        Fill(
            order_id=order_id,
            exchange_fill_id="t-1",
            price=64000.5,
            quantity=0.0625,
            fee=0.03125,
            fee_asset="BNB",
            filled_at=WHEN,
        ),
        DailyBotStats(
            bot_id=bot_id,
            day=date(2024, 5, 6),
            trades=3,
            wins=2,
            losses=1,
            gross_pnl=10.5,
            fees=0.75,
            net_pnl=9.75,
            volume=24000.0,
        ),
        Heartbeat(
            kind=ComponentKind.ENGINE,
            name="engine-1",
            engine_id="e-1",
            status="running",
            detail={"bots": ["alpha"], "lag_ms": 12.5},
            version="0.1.0",
            started_at=WHEN,
            beat_at=WHEN + timedelta(seconds=5),
        ),
        ModelPromotion(
            model_name="btc-lgbm",
            version="7",
            alias="challenger",
            decision=PromotionDecision.REFUSED,
            reasons={"sharpe": {"passed": False, "value": 0.4}},
            metrics={"sharpe": 0.4, "trades": 120},
            run_id="run-7",
            data_fingerprint="sha256:ff",
            feature_spec_hash=HASH_B,
            strategy_hash=HASH_A,
            decided_at=WHEN,
        ),
        Event(
            kind="position_closed",
            bot_name="alpha",
            payload={"position": position_id, "nested": {"pnl": [1, 2.5, None]}},
            created_at=WHEN,
        ),
    ]


def _state_and_review_records(bot_id: int) -> list[Base]:
    """A bot's kept state, an engine control, a lease, a strategy source, a live review."""
    return [
        BotState(
            bot_id=bot_id,
            book={"version": 1, "bot": "alpha", "positions": [], "next_seq": 4},
            strategy_state={"seen": 3},
            strategy_name="dip",
            strategy_hash=HASH_A,
            updated_at=WHEN,
        ),
        EngineControl(
            name="kill_switch",
            value={"engaged": True, "reason": "test"},
            updated_by="engine-1",
            updated_at=WHEN,
        ),
        BotLease(
            bot_id=bot_id,
            owner="engine-1",
            epoch=3,
            acquired_at=WHEN,
            renewed_at=WHEN,
            expires_at=WHEN,
        ),
        StrategySource(
            content_hash=hashlib.sha256(SOURCE).hexdigest(),
            name="dip",
            source=SOURCE,
            first_seen_at=WHEN,
        ),
        LiveReview(
            bot_name="alpha",
            range_start=WHEN,
            range_end=WHEN + timedelta(days=1),
            summary={
                "features_equal": True,
                "positions_matched": 2,
                "divergences": [{"kind": "entry_price", "cause": "slippage: +1.00 bps"}],
            },
            created_at=WHEN,
        ),
    ]


def _closed_shadow_position(run_id: int) -> ShadowPosition:
    return ShadowPosition(
        run_id=run_id,
        seq=2,
        side="sell",
        status="closed",
        quantity=0.5,
        entry_price=100.0,
        exit_price=99.0,
        placed_at=WHEN,
        opened_at=WHEN,
        closed_at=WHEN + timedelta(minutes=5),
        exit_reason="take_profit",
        fees=0.1,
        realised_pnl=0.5,
    )


def test_every_model_round_trips(engine: Engine) -> None:
    with session_scope(engine) as session:
        rows = _one_of_each(session)
        expected = [(type(row), sa.inspect(row).identity, _columns(row)) for row in rows]
    assert {model for model, _, _ in expected} == {
        mapper.class_ for mapper in Base.registry.mappers
    }, "a model is missing from this test"

    with session_scope(engine) as session:
        for model, identity, columns in expected:
            loaded = session.get(model, identity)
            assert loaded is not None, model.__name__
            assert _columns(loaded) == columns, model.__name__


def test_datetimes_come_back_in_utc(session: Session) -> None:
    session.add(Event(kind="x", payload={}, created_at=WHEN))
    session.commit()
    session.expire_all()
    loaded = session.scalars(sa.select(Event)).one()
    assert loaded.created_at == WHEN
    assert loaded.created_at.tzinfo == UTC
    assert loaded.created_at.hour == 7


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(Event(kind="x", payload={}, created_at=datetime(2024, 1, 1)))
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        session.flush()


def test_enums_load_as_members(session: Session) -> None:
    _one_of_each(session)
    session.commit()
    session.expire_all()
    order = session.scalars(sa.select(Order)).one()
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.side is Side.SELL


def test_client_order_id_is_unique(session: Session) -> None:
    _one_of_each(session)
    original = session.scalars(sa.select(Order)).one()
    session.add(
        Order(
            client_order_id=original.client_order_id,
            bot_id=original.bot_id,
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            quantity=1.0,
            role=OrderRole.ENTRY,
            strategy_hash=HASH_A,
        )
    )
    with pytest.raises(sa.exc.IntegrityError, match="client_order_id"):
        session.flush()


def test_fill_is_unique_per_order_and_venue_trade(session: Session) -> None:
    _one_of_each(session)
    fill = session.scalars(sa.select(Fill)).one()
    session.add(
        Fill(
            order_id=fill.order_id,
            exchange_fill_id=fill.exchange_fill_id,
            price=1.0,
            quantity=1.0,
            filled_at=WHEN,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(
        Order(
            client_order_id="orphan",
            bot_id=999_999,
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            quantity=1.0,
            role=OrderRole.ENTRY,
            strategy_hash=HASH_A,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


@pytest.mark.parametrize(
    ("model", "fields", "constraint"),
    [
        (Order, {"order_type": OrderType.LIMIT, "price": None}, "limit_order_has_price"),
        (Order, {"quantity": 0.0}, "quantity_positive"),
        (
            Position,
            {"status": PositionStatus.CLOSED, "exit_reason": None},
            "closed_has_exit_reason",
        ),
        (Position, {"fees": -1.0}, "fees_not_negative"),
    ],
)
def test_check_constraints_refuse_impossible_rows(
    session: Session, model: type[Order | Position], fields: dict[str, Any], constraint: str
) -> None:
    bot = Bot(
        name="b",
        strategy_name="s",
        symbol="BTCUSDT",
        timeframe="1m",
        config=bot_config(),
        enabled=True,
    )
    session.add(bot)
    session.flush()
    base: dict[str, Any] = {
        "bot_id": bot.id,
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "quantity": 1.0,
        "strategy_hash": HASH_A,
    }
    if model is Order:
        base |= {"client_order_id": "c", "order_type": OrderType.MARKET, "role": OrderRole.ENTRY}
    session.add(model(**(base | fields)))
    with pytest.raises(sa.exc.IntegrityError, match=constraint):
        session.flush()


def test_bot_timeframe_is_stored_canonically(session: Session) -> None:
    bot = Bot(
        name="b",
        strategy_name="s",
        symbol="BTCUSDT",
        timeframe="60s",
        config=bot_config(),
        enabled=True,
    )
    assert bot.timeframe == "1m"
    with pytest.raises(InvalidTimeframeError, match="7x"):
        bot.timeframe = "7x"


def test_bot_config_is_validated_when_assigned(session: Session) -> None:
    bot = Bot(
        name="b",
        strategy_name="s",
        symbol="BTCUSDT",
        timeframe="1m",
        config=bot_config(),
        enabled=True,
    )
    assert bot.config["model_alias"] == "champion"  # defaults are written out
    assert bot.bot_config == BotConfig.model_validate(bot_config())
    with pytest.raises(BotConfigError, match=r"bot 'b'.*stop_loss_pct"):
        bot.config = bot_config(stop_loss_pct=-1)
    bot.config = BotConfig.model_validate(bot_config(max_open_positions=3))  # type: ignore[assignment]
    assert bot.config["max_open_positions"] == 3


def test_updated_at_moves_on_update(session: Session) -> None:
    bot = Bot(
        name="b",
        strategy_name="s",
        symbol="BTCUSDT",
        timeframe="1m",
        config=bot_config(),
        enabled=True,
        updated_at=WHEN,
    )
    session.add(bot)
    session.flush()
    bot.status = BotStatus.RUNNING
    session.flush()
    assert bot.updated_at > WHEN
