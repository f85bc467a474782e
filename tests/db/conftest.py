"""Fixtures for the database tests: every schema-touching test runs on SQLite and PostgreSQL.

PostgreSQL comes from TRADEPIPE_TEST_PG_URL (default: the local server, trust auth). One
database, `tradepipe_test_<random>`, is created per test session and dropped at the end;
inside it every test gets its own schema (via search_path), so tests stay independent
without paying for a CREATE DATABASE each. An unreachable server skips the PostgreSQL tests
with the reason; CI turns those skips into failures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from tests.support import fresh_pg_database
from tradepipe.db import (
    Bot,
    BotMode,
    ComponentKind,
    DailyBotStats,
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
    create_engine_for,
    session_scope,
    upgrade_database,
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def pg_session_database() -> Iterator[URL]:
    """A fresh PostgreSQL database for this test session; skips if the server is down."""
    with fresh_pg_database("tradepipe_test") as url:
        yield url


def _fresh_pg_schema(database_url: URL) -> URL:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    # Everything unqualified, alembic_version included, lands in this schema.
    return database_url.update_query_dict({"options": f"-csearch_path={schema}"})


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database (never migrated) on the parametrised backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'tradepipe.db'}"
    database: URL = request.getfixturevalue("pg_session_database")
    return _fresh_pg_schema(database).render_as_string(hide_password=False)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A plain session, rolled back at the end: tests that expect a failed flush leave it
    unusable, which session_scope would then try to commit."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


# ---------------------------------------------------------------- seed data

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HASH_A = "a" * 64
HASH_B = "b" * 64


def bot_config(**overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "capital_per_trade": 100.0,
        "take_profit_pct": 1.0,
        "stop_loss_pct": 0.5,
        "max_holding_seconds": 3600,
        "maker_order_timeout_seconds": 30,
    }
    config.update(overrides)
    return config


@dataclass(frozen=True)
class Seeded:
    """Ids and expected figures of the seeded database."""

    alpha_id: int
    beta_id: int
    closed_win_id: int
    closed_loss_id: int
    active_id: int
    maker_timeout_id: int
    win_entry_order_id: int
    now: datetime  # ten minutes after T0, the engine's last heartbeat


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    """Two strategies, three bots and a small trading history with known PnL.

    alpha: one win (+2.0 gross, 0.2 fees), one loss (-1.0 gross, 0.1 fees), one active
    position and one entry that timed out unfilled (not a trade). beta: one pending position.
    gamma: nothing at all.
    """
    with session_scope(engine) as session:
        session.add_all(
            [
                Strategy(
                    name="momentum",
                    file_path="strategies/momentum.py",
                    class_name="Momentum",
                    content_hash=HASH_A,
                    status=StrategyStatus.VALID,
                    version_count=3,
                ),
                Strategy(
                    name="broken",
                    file_path="strategies/broken.py",
                    class_name="Broken",
                    content_hash=HASH_B,
                    status=StrategyStatus.INVALID,
                    error="strategies/broken.py:7: SyntaxError: invalid syntax",
                    error_line=7,
                ),
            ]
        )
        alpha = Bot(
            name="alpha",
            strategy_name="momentum",
            symbol="BTCUSDT",
            timeframe="1m",
            config=bot_config(model_name="btc-lgbm"),
            enabled=True,
        )
        beta = Bot(
            name="beta",
            strategy_name="momentum",
            symbol="ETHUSDT",
            timeframe="5m",
            mode=BotMode.TESTNET,
            config=bot_config(),
            enabled=True,
        )
        gamma = Bot(
            name="gamma",
            strategy_name="gone",
            symbol="SOLUSDT",
            timeframe="1h",
            config=bot_config(),
            enabled=False,
        )
        session.add_all([alpha, beta, gamma])
        session.flush()

        def position(
            bot: Bot, status: PositionStatus, quantity: float = 0.01, **fields: object
        ) -> Position:
            row = Position(
                bot_id=bot.id,
                symbol=bot.symbol,
                side=Side.BUY,
                status=status,
                quantity=quantity,
                strategy_hash=HASH_A,
                model_version="3",
                **fields,
            )
            session.add(row)
            return row

        win = position(
            alpha,
            PositionStatus.CLOSED,
            entry_price=100.0,
            exit_price=300.0,
            opened_at=T0,
            closed_at=T0 + timedelta(minutes=5),
            exit_reason=ExitReason.TAKE_PROFIT,
            realised_pnl=2.0,
            fees=0.2,
        )
        loss = position(
            alpha,
            PositionStatus.CLOSED,
            entry_price=200.0,
            exit_price=100.0,
            opened_at=T0 + timedelta(hours=1),
            closed_at=T0 + timedelta(hours=2),
            exit_reason=ExitReason.STOP_LOSS,
            realised_pnl=-1.0,
            fees=0.1,
        )
        active = position(
            alpha,
            PositionStatus.ACTIVE,
            entry_price=150.0,
            opened_at=T0,
            expires_at=T0 + timedelta(hours=1),
            fees=0.05,
        )
        unfilled = position(
            alpha,
            PositionStatus.CLOSED,
            quantity=0.0,
            closed_at=T0 + timedelta(minutes=1),
            exit_reason=ExitReason.MAKER_TIMEOUT,
        )
        position(beta, PositionStatus.PENDING)
        session.flush()

        def order(
            pos: Position, role: OrderRole, side: Side, created: datetime, **fields: object
        ) -> Order:
            row = Order(
                client_order_id=f"c-{pos.id}-{role.value}",
                bot_id=pos.bot_id,
                position_id=pos.id,
                symbol=pos.symbol,
                side=side,
                order_type=OrderType.LIMIT,
                price=100.0,
                quantity=0.01,
                role=role,
                strategy_hash=HASH_A,
                model_version="3",
                created_at=created,
                **fields,
            )
            session.add(row)
            return row

        win_entry = order(
            win,
            OrderRole.ENTRY,
            Side.BUY,
            T0,
            status=OrderStatus.FILLED,
            filled_quantity=0.01,
            exchange_order_id="x-1",
        )
        win_exit = order(
            win,
            OrderRole.TAKE_PROFIT,
            Side.SELL,
            T0 + timedelta(minutes=4),
            status=OrderStatus.FILLED,
            filled_quantity=0.01,
        )
        order(
            loss,
            OrderRole.ENTRY,
            Side.BUY,
            T0 + timedelta(hours=1),
            status=OrderStatus.FILLED,
            filled_quantity=0.01,
        )
        order(
            loss,
            OrderRole.STOP_LOSS,
            Side.SELL,
            T0 + timedelta(hours=2),
            status=OrderStatus.FILLED,
            filled_quantity=0.01,
        )
        order(
            active,
            OrderRole.ENTRY,
            Side.BUY,
            T0 + timedelta(hours=3),
            status=OrderStatus.FILLED,
            filled_quantity=0.01,
        )
        order(
            active,
            OrderRole.TAKE_PROFIT,
            Side.SELL,
            T0 + timedelta(hours=3, minutes=1),
            status=OrderStatus.OPEN,
        )
        order(
            unfilled,
            OrderRole.ENTRY,
            Side.BUY,
            T0 + timedelta(hours=4),
            status=OrderStatus.CANCELLED,
            reason="maker order timeout",
        )
        session.flush()
        session.add_all(
            [
                Fill(
                    order_id=win_entry.id,
                    exchange_fill_id="t-1",
                    price=100.0,
                    quantity=0.004,
                    fee=0.04,
                    fee_asset="USDT",
                    filled_at=T0,
                ),
                Fill(
                    order_id=win_entry.id,
                    exchange_fill_id="t-2",
                    price=100.0,
                    quantity=0.006,
                    fee=0.06,
                    fee_asset="USDT",
                    filled_at=T0 + timedelta(seconds=1),
                ),
                Fill(
                    order_id=win_exit.id,
                    exchange_fill_id="t-3",
                    price=300.0,
                    quantity=0.01,
                    fee=0.1,
                    fee_asset="USDT",
                    filled_at=T0 + timedelta(minutes=5),
                ),
                DailyBotStats(
                    bot_id=alpha.id,
                    day=date(2024, 3, 1),
                    trades=2,
                    wins=1,
                    losses=1,
                    gross_pnl=1.0,
                    fees=0.3,
                    net_pnl=0.7,
                    volume=7.0,
                ),
                DailyBotStats(
                    bot_id=beta.id,
                    day=date(2024, 3, 2),
                    trades=0,
                    wins=0,
                    losses=0,
                    gross_pnl=0.0,
                    fees=0.0,
                    net_pnl=0.0,
                    volume=0.0,
                ),
                Heartbeat(
                    kind=ComponentKind.ENGINE,
                    name="engine-1",
                    engine_id="e1",
                    status="running",
                    detail={"bots": 2},
                    version="0.1.0",
                    started_at=T0,
                    beat_at=T0 + timedelta(minutes=10),
                ),
                Heartbeat(
                    kind=ComponentKind.BOT,
                    name="alpha",
                    engine_id="e1",
                    status="running",
                    started_at=T0,
                    beat_at=T0 + timedelta(minutes=9),
                ),
                Heartbeat(
                    kind=ComponentKind.BOT,
                    name="beta",
                    engine_id="e1",
                    status="running",
                    started_at=T0,
                    beat_at=T0,
                ),
                ModelPromotion(
                    model_name="btc-lgbm",
                    version="2",
                    decision=PromotionDecision.PROMOTED,
                    reasons={"beats_champion": {"passed": True}},
                    metrics={"sharpe": 1.4},
                    run_id="r2",
                    decided_at=T0,
                ),
                ModelPromotion(
                    model_name="btc-lgbm",
                    version="3",
                    decision=PromotionDecision.REFUSED,
                    reasons={"beats_champion": {"passed": False}},
                    metrics={"sharpe": 0.9},
                    run_id="r3",
                    data_fingerprint="fp",
                    feature_spec_hash=HASH_B,
                    strategy_hash=HASH_A,
                    decided_at=T0 + timedelta(days=1),
                ),
                ModelPromotion(
                    model_name="eth-lgbm",
                    version="1",
                    decision=PromotionDecision.PROMOTED,
                    decided_at=T0,
                ),
                Event(
                    kind="order_filled", bot_name="alpha", payload={"order": "c-1"}, created_at=T0
                ),
                Event(
                    kind="strategy_reloaded",
                    payload={"strategy": "momentum"},
                    created_at=T0 + timedelta(minutes=1),
                ),
                Event(
                    kind="order_filled",
                    bot_name="beta",
                    payload={"order": "c-9"},
                    created_at=T0 + timedelta(minutes=2),
                ),
            ]
        )
        return Seeded(
            alpha_id=alpha.id,
            beta_id=beta.id,
            closed_win_id=win.id,
            closed_loss_id=loss.id,
            active_id=active.id,
            maker_timeout_id=unfilled.id,
            win_entry_order_id=win_entry.id,
            now=T0 + timedelta(minutes=10),
        )
