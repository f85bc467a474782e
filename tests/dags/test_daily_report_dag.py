"""daily_report: the day's closed positions become one daily_bot_stats row per bot."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.dags.conftest import AirflowWorker, Platform
from tradepipe.db import (
    Bot,
    DailyBotStats,
    Event,
    ExitReason,
    Position,
    PositionStatus,
    Side,
    create_engine_for,
    session_scope,
    upgrade_database,
)

DAY = datetime(2024, 3, 1, tzinfo=UTC)
CONFIG = {
    "capital_per_trade": 100.0,
    "take_profit_pct": 1.0,
    "stop_loss_pct": 0.5,
    "max_holding_seconds": 3600,
    "maker_order_timeout_seconds": 30,
}


def _seed(url: str) -> dict[str, int]:
    """alpha: a win and a loss on DAY, a maker timeout (not a trade) and a trade the next
    day; beta: an open position, and a stale row for DAY that must be zeroed."""
    upgrade_database(url)
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        bots = {
            name: Bot(
                name=name,
                strategy_name="ema_rsi",
                symbol="BTCUSDT",
                timeframe="1m",
                config=CONFIG,
                enabled=True,
            )
            for name in ("alpha", "beta")
        }
        session.add_all(bots.values())
        session.flush()
        session.add_all([*_alpha_positions(bots["alpha"].id), *_beta_rows(bots["beta"].id)])
        ids = {name: bot.id for name, bot in bots.items()}
    engine.dispose()
    return ids


def _closed(bot_id: int, at: datetime, **fields: object) -> Position:
    values: dict[str, object] = {
        "bot_id": bot_id,
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "status": PositionStatus.CLOSED,
        "quantity": 0.01,
        "strategy_hash": "a" * 64,
        "closed_at": at,
    }
    values.update(fields)
    return Position(**values)


def _alpha_positions(alpha_id: int) -> list[Position]:
    """A win and a loss closed on DAY, a maker timeout on DAY, a trade closed the next day."""
    return [
        _closed(
            alpha_id,
            DAY + timedelta(hours=1),
            opened_at=DAY,
            entry_price=100.0,
            exit_price=300.0,
            realised_pnl=2.0,
            fees=0.2,
            exit_reason=ExitReason.TAKE_PROFIT,
        ),
        _closed(
            alpha_id,
            DAY + timedelta(hours=23, minutes=59),
            opened_at=DAY + timedelta(hours=2),
            entry_price=200.0,
            exit_price=100.0,
            realised_pnl=-1.0,
            fees=0.1,
            exit_reason=ExitReason.STOP_LOSS,
        ),
        _closed(
            alpha_id,
            DAY + timedelta(hours=3),
            quantity=0.0,
            exit_reason=ExitReason.MAKER_TIMEOUT,
        ),
        _closed(
            alpha_id,
            DAY + timedelta(days=1, minutes=1),
            opened_at=DAY + timedelta(hours=23),
            entry_price=100.0,
            exit_price=110.0,
            realised_pnl=0.1,
            fees=0.01,
            exit_reason=ExitReason.TIMEOUT,
        ),
    ]


def _beta_rows(beta_id: int) -> list[Position | DailyBotStats]:
    """An open position and a stale stats row for DAY."""
    return [
        Position(
            bot_id=beta_id,
            symbol="BTCUSDT",
            side=Side.BUY,
            status=PositionStatus.ACTIVE,
            quantity=0.01,
            entry_price=100.0,
            opened_at=DAY,
            strategy_hash="a" * 64,
        ),
        DailyBotStats(bot_id=beta_id, day=DAY.date(), trades=9, net_pnl=5.0),
    ]


def _stats(url: str) -> dict[tuple[int, date], DailyBotStats]:
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        rows = {(row.bot_id, row.day): row for row in session.scalars(sa.select(DailyBotStats))}
    engine.dispose()
    return rows


def test_the_day_is_rolled_up_per_bot_and_a_rerun_writes_the_same(
    airflow: AirflowWorker, platform: Platform
) -> None:
    (platform.root / "var").mkdir()
    bots = _seed(platform.database_url)

    # The run at 2024-03-02 00:00 covers 2024-03-01 (its data interval), not the 2nd.
    run = airflow.run("daily_report", "2024-03-02T00:00:00+00:00", platform)
    assert run.state == "success", run.tasks
    assert set(run.tasks) == {"roll_up_daily_stats", "record_daily_report"}

    rows = _stats(platform.database_url)
    assert set(rows) == {(bots["alpha"], DAY.date()), (bots["beta"], DAY.date())}
    alpha = rows[(bots["alpha"], DAY.date())]
    assert (alpha.trades, alpha.wins, alpha.losses) == (2, 1, 1)
    assert alpha.gross_pnl == pytest.approx(1.0)
    assert alpha.fees == pytest.approx(0.3)
    assert alpha.net_pnl == pytest.approx(0.7)
    assert alpha.volume == pytest.approx(7.0)  # 1 + 3 and 2 + 1 in quote currency
    beta = rows[(bots["beta"], DAY.date())]
    assert (beta.trades, beta.net_pnl) == (0, 0.0)  # the stale row is recomputed

    report = run.xcom["record_daily_report"]
    assert report["totals"]["trades"] == 2
    assert report["totals"]["net_pnl"] == pytest.approx(0.7)

    again = airflow.run("daily_report", "2024-03-02T00:00:00+00:00", platform)
    assert again.state == "success"
    assert again.xcom["record_daily_report"]["replaced"] is True
    rerun = _stats(platform.database_url)
    assert {key: (row.trades, row.net_pnl) for key, row in rerun.items()} == {
        key: (row.trades, row.net_pnl) for key, row in rows.items()
    }
    engine = create_engine_for(platform.database_url)
    with session_scope(engine) as session:
        events = session.scalars(sa.select(Event).where(Event.kind == "daily_report")).all()
        assert len(events) == 1
        assert events[0].created_at == DAY + timedelta(days=1)
        assert events[0].payload["days"][0]["bots"]["alpha"]["wins"] == 1
    engine.dispose()
