"""The seed data of the database and dashboard tests: one writer of trading-history rows
(`HistoryWriter`) and the two histories written with it.

`seed_reference(engine)`: a small history at a fixed time (T0) whose figures the query
layer's tests know by heart (tests/db):
- alpha (momentum, BTCUSDT 1m, model btc-lgbm): one win (+2.0 gross, 0.2 fees), one loss
  (-1.0 gross, 0.1 fees), one active position and one entry that timed out unfilled (not a
  trade). beta (ETHUSDT 5m, testnet): one pending position. gamma (strategy "gone"): nothing.

`seed_recent(engine, now)`: a history relative to `now` for the dashboard's pages (tests/
dashboard):
- alpha (momentum, BTCUSDT 1m, model btc-lgbm): running, fresh heartbeat. A win yesterday
  (+2.0 gross, 0.2 fees), a short loss today (-1.0 gross, 0.1 fees), an unfilled maker
  entry (not a trade) and an active long (0.5 @ 103) marked at the last BTCUSDT fill, 105:
  unrealised +1.0.
- beta (momentum, ETHUSDT 5m): in error, fresh heartbeat, one pending entry.
- gamma (mean_revert, SOLUSDT 1h): marked running but its heartbeat is ten minutes old
  (stale); one timeout trade two days ago (+0.5 gross, 0.05 fees).
- delta (strategy "vanished", not registered): stopped, disabled, never beat.
Net realised PnL: alpha 0.7, gamma 0.45, total 1.15; 3 trades, 2 wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.seed_writer import HistoryWriter, bot_config, day_start
from tradepipe.db import (
    Bot,
    BotMode,
    BotStatus,
    ComponentKind,
    DailyBotStats,
    Event,
    ExitReason,
    Heartbeat,
    LiveReview,
    ModelPromotion,
    Order,
    OrderRole,
    OrderStatus,
    Position,
    PositionStatus,
    PromotionDecision,
    Side,
    StrategyStatus,
    session_scope,
)
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord, record_shadow

# The reference history's time and hashes.
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HASH_A = "a" * 64
HASH_B = "b" * 64


@dataclass(frozen=True)
class ReferenceHistory:
    """Ids and expected figures of the reference history."""

    alpha_id: int
    beta_id: int
    closed_win_id: int
    closed_loss_id: int
    active_id: int
    maker_timeout_id: int
    win_entry_order_id: int
    now: datetime  # ten minutes after T0, the engine's last heartbeat


def seed_reference(engine: Engine) -> ReferenceHistory:
    with session_scope(engine) as session:
        write = HistoryWriter(session, quantity=0.01, strategy_hash=HASH_A, order_prefix="c")
        write.strategy("momentum", HASH_A, StrategyStatus.VALID, version_count=3)
        broken = "strategies/broken.py:7: SyntaxError: invalid syntax"
        write.strategy("broken", HASH_B, StrategyStatus.INVALID, error=broken, error_line=7)
        alpha = write.bot(
            "alpha", "momentum", "BTCUSDT", "1m", config=bot_config(model_name="btc-lgbm")
        )
        beta = write.bot("beta", "momentum", "ETHUSDT", "5m", mode=BotMode.TESTNET)
        write.bot("gamma", "gone", "SOLUSDT", "1h", enabled=False)
        session.flush()
        win, loss, active, unfilled = _reference_positions(write, alpha, beta)
        win_entry = _reference_orders(write, win, loss, active, unfilled)
        session.add_all(_reference_stats(alpha, beta))
        session.add_all(_reference_monitoring())
        ids = (alpha.id, beta.id, win.id, loss.id, active.id, unfilled.id, win_entry.id)
        return ReferenceHistory(*ids, now=T0 + timedelta(minutes=10))


def _reference_positions(write: HistoryWriter, alpha: Bot, beta: Bot) -> tuple[Position, ...]:
    closed, reason = PositionStatus.CLOSED, ExitReason
    win = write.position(
        alpha, closed, entry_price=100.0, exit_price=300.0, opened_at=T0,
        closed_at=T0 + timedelta(minutes=5), exit_reason=reason.TAKE_PROFIT,
        realised_pnl=2.0, fees=0.2,
    )  # fmt: skip
    loss = write.position(
        alpha, closed, entry_price=200.0, exit_price=100.0, opened_at=T0 + timedelta(hours=1),
        closed_at=T0 + timedelta(hours=2), exit_reason=reason.STOP_LOSS,
        realised_pnl=-1.0, fees=0.1,
    )  # fmt: skip
    active = write.position(
        alpha, PositionStatus.ACTIVE, entry_price=150.0, opened_at=T0,
        expires_at=T0 + timedelta(hours=1), fees=0.05,
    )  # fmt: skip
    unfilled = write.position(
        alpha, closed, quantity=0.0, closed_at=T0 + timedelta(minutes=1),
        exit_reason=reason.MAKER_TIMEOUT,
    )  # fmt: skip
    write.position(beta, PositionStatus.PENDING)
    write.session.flush()
    return win, loss, active, unfilled


def _reference_orders(
    write: HistoryWriter, win: Position, loss: Position, active: Position, unfilled: Position
) -> Order:
    """Every order at 100.0 for 0.01; the win's entry (returned) filled in two parts."""
    filled, hour = OrderStatus.FILLED, timedelta(hours=1)
    role, buy, sell = OrderRole, Side.BUY, Side.SELL
    win_entry = write.order(win, role.ENTRY, buy, T0, 100.0, filled, exchange_order_id="x-1")
    win_exit = write.order(win, role.TAKE_PROFIT, sell, T0 + timedelta(minutes=4), 100.0, filled)
    write.order(loss, role.ENTRY, buy, T0 + hour, 100.0, filled)
    write.order(loss, role.STOP_LOSS, sell, T0 + 2 * hour, 100.0, filled)
    write.order(active, role.ENTRY, buy, T0 + 3 * hour, 100.0, filled)
    placed = T0 + timedelta(hours=3, minutes=1)
    write.order(active, role.TAKE_PROFIT, sell, placed, 100.0, OrderStatus.OPEN)
    write.order(
        unfilled, role.ENTRY, buy, T0 + 4 * hour, 100.0, OrderStatus.CANCELLED,
        quantity=0.01, reason="maker order timeout",
    )  # fmt: skip
    write.session.flush()
    write.fill(win_entry, T0, 0.04, exchange_fill_id="t-1", quantity=0.004)
    write.fill(win_entry, T0 + timedelta(seconds=1), 0.06, exchange_fill_id="t-2", quantity=0.006)
    write.fill(win_exit, T0 + timedelta(minutes=5), 0.1, exchange_fill_id="t-3", price=300.0)
    return win_entry


def _reference_stats(alpha: Bot, beta: Bot) -> list[object]:
    return [
        DailyBotStats(
            bot_id=alpha.id, day=date(2024, 3, 1), trades=2, wins=1, losses=1,
            gross_pnl=1.0, fees=0.3, net_pnl=0.7, volume=7.0,
        ),
        DailyBotStats(
            bot_id=beta.id, day=date(2024, 3, 2), trades=0, wins=0, losses=0,
            gross_pnl=0.0, fees=0.0, net_pnl=0.0, volume=0.0,
        ),
        ModelPromotion(
            model_name="btc-lgbm", version="2", decision=PromotionDecision.PROMOTED,
            reasons={"beats_champion": {"passed": True}}, metrics={"sharpe": 1.4},
            run_id="r2", decided_at=T0,
        ),
        ModelPromotion(
            model_name="btc-lgbm", version="3", decision=PromotionDecision.REFUSED,
            reasons={"beats_champion": {"passed": False}}, metrics={"sharpe": 0.9},
            run_id="r3", data_fingerprint="fp", feature_spec_hash=HASH_B,
            strategy_hash=HASH_A, decided_at=T0 + timedelta(days=1),
        ),
        ModelPromotion(
            model_name="eth-lgbm", version="1", decision=PromotionDecision.PROMOTED, decided_at=T0
        ),
    ]  # fmt: skip


def _reference_monitoring() -> list[object]:
    engine, bot, minute = ComponentKind.ENGINE, ComponentKind.BOT, timedelta(minutes=1)
    return [
        Heartbeat(
            kind=engine, name="engine-1", engine_id="e1", status="running",
            detail={"bots": 2}, version="0.1.0", started_at=T0, beat_at=T0 + 10 * minute,
        ),
        Heartbeat(
            kind=bot, name="alpha", engine_id="e1", status="running",
            started_at=T0, beat_at=T0 + 9 * minute,
        ),
        Heartbeat(
            kind=bot, name="beta", engine_id="e1", status="running", started_at=T0, beat_at=T0
        ),
        Event(kind="order_filled", bot_name="alpha", payload={"order": "c-1"}, created_at=T0),
        Event(
            kind="strategy_reloaded", payload={"strategy": "momentum"}, created_at=T0 + minute
        ),
        Event(
            kind="order_filled", bot_name="beta", payload={"order": "c-9"},
            created_at=T0 + 2 * minute,
        ),
    ]  # fmt: skip


# ---------------------------------------------------------------- the recent history

# The recent history's hashes and texts that the dashboard shows.
MOMENTUM_HASH = "c0ffee" + "1" * 58
MOMENTUM_OLD_HASH = "deadbe" + "2" * 58
MEAN_REVERT_HASH = "facade" + "3" * 58
FEATURE_SPEC_HASH = "5eed" + "4" * 60
DATA_FINGERPRINT = "sha256:0dd5a1a0b1c2"
ENGINE_VERSION = "0.1.0"
BETA_ERROR = "ccxt InsufficientFunds: account has 3.2 USDT, order needs 100"
MEAN_REVERT_ERROR = "strategies/mean_revert.py:12: NameError: name 'np' is not defined"
REVIEW_DIVERGENCE = "live enter, backtest hold"
SHADOW_DECISIONS = 61


@dataclass(frozen=True)
class RecentHistory:
    now: datetime
    win_id: int
    loss_id: int
    active_id: int
    unfilled_id: int
    pending_id: int
    timeout_id: int
    loss_closed_at: datetime


def seed_recent(engine: Engine, now: datetime) -> RecentHistory:
    # "Today" must hold the loss whatever the hour: close it an hour ago, or at midnight.
    loss_closed = max(day_start(now), now - timedelta(hours=1))
    with session_scope(engine) as session:
        write = HistoryWriter(
            session, quantity=1.0, strategy_hash=MOMENTUM_HASH, order_prefix="tp", now=now
        )
        write.strategy("momentum", MOMENTUM_HASH, StrategyStatus.VALID, version_count=3)
        write.strategy(
            "mean_revert", MEAN_REVERT_HASH, StrategyStatus.INVALID,
            error=MEAN_REVERT_ERROR, error_line=12, version_count=2,
        )  # fmt: skip
        running = BotStatus.RUNNING
        alpha = write.bot(
            "alpha", "momentum", "BTCUSDT", "1m",
            config=bot_config(model_name="btc-lgbm"), status=running,
        )  # fmt: skip
        beta = write.bot(
            "beta", "momentum", "ETHUSDT", "5m", status=BotStatus.ERROR, last_error=BETA_ERROR
        )
        gamma = write.bot("gamma", "mean_revert", "SOLUSDT", "1h", status=running)
        write.bot("delta", "vanished", "XRPUSDT", "1m", enabled=False, status=BotStatus.STOPPED)
        session.flush()
        positions = _recent_positions(write, (alpha, beta, gamma), now, loss_closed)
        _recent_orders(write, positions, now, loss_closed)
        session.add_all(_recent_monitoring(now))
        session.add_all(_recent_research(now))
        _recent_shadow(session, now)
        kept = ("win", "loss", "active", "unfilled", "pending", "timeout")
        ids = {f"{name}_id": positions[name].id for name in kept}
        return RecentHistory(now=now, loss_closed_at=loss_closed, **ids)


def _recent_positions(
    write: HistoryWriter, bots: tuple[Bot, Bot, Bot], now: datetime, loss_closed: datetime
) -> dict[str, Position]:
    alpha, beta, gamma = bots
    day, hour = timedelta(days=1), timedelta(hours=1)
    closed, reason = PositionStatus.CLOSED, ExitReason
    positions = {
        "win": write.position(
            alpha, closed, entry_price=100.0, exit_price=102.0, opened_at=now - day - hour,
            closed_at=now - day, exit_reason=reason.TAKE_PROFIT, realised_pnl=2.0, fees=0.2,
            take_profit_price=102.0, stop_loss_price=99.5, strategy_hash=MOMENTUM_OLD_HASH,
            model_version="2",
        ),
        "loss": write.position(
            alpha, closed, side=Side.SELL, entry_price=104.0, exit_price=105.0,
            opened_at=loss_closed - timedelta(minutes=40), closed_at=loss_closed,
            exit_reason=reason.STOP_LOSS, realised_pnl=-1.0, fees=0.1,
        ),
        "active": write.position(
            alpha, PositionStatus.ACTIVE, quantity=0.5, entry_price=103.0,
            opened_at=now - 3 * hour, take_profit_price=104.03, stop_loss_price=102.485,
            expires_at=now + hour, fees=0.05,
        ),
        "unfilled": write.position(
            alpha, closed, quantity=0.0, created_at=now - day - 3 * hour,
            closed_at=now - day - 3 * hour + timedelta(seconds=30),
            exit_reason=reason.MAKER_TIMEOUT,
        ),
        "pending": write.position(beta, PositionStatus.PENDING, quantity=0.03, created_at=now),
        "timeout": write.position(
            gamma, closed, entry_price=150.0, exit_price=150.6,
            opened_at=now - 2 * day - hour, closed_at=now - 2 * day,
            exit_reason=reason.TIMEOUT, realised_pnl=0.5, fees=0.05,
            strategy_hash=MEAN_REVERT_HASH, model_version=None,
        ),
    }  # fmt: skip
    write.session.flush()
    return positions


def _recent_orders(
    write: HistoryWriter, positions: dict[str, Position], now: datetime, loss_closed: datetime
) -> None:
    day, hour = timedelta(days=1), timedelta(hours=1)
    win, loss, active = positions["win"], positions["loss"], positions["active"]
    timeout, pending = positions["timeout"], positions["pending"]
    filled, working, role = OrderStatus.FILLED, OrderStatus.OPEN, OrderRole
    loss_opened = loss_closed - timedelta(minutes=40)
    # (position, role, side, placed at, price, status, fee of its one fill if filled)
    history = [
        (win, role.ENTRY, Side.BUY, now - day - hour, 100.0, filled, 0.1),
        (win, role.TAKE_PROFIT, Side.SELL, now - day, 102.0, filled, 0.1),
        (loss, role.ENTRY, Side.SELL, loss_opened, 104.0, filled, 0.05),
        (loss, role.STOP_LOSS, Side.BUY, loss_closed, 105.0, filled, 0.05),
        (active, role.ENTRY, Side.BUY, now - 3 * hour, 103.0, filled, 0.05),
        (active, role.TAKE_PROFIT, Side.SELL, now - 3 * hour, 104.03, working, None),
        (timeout, role.ENTRY, Side.BUY, now - 2 * day - hour, 150.0, filled, 0.025),
        (timeout, role.TIMEOUT_EXIT, Side.SELL, now - 2 * day, 150.6, filled, 0.025),
        (pending, role.ENTRY, Side.BUY, now, 3000.0, working, None),
    ]
    fills = [
        (write.order(position, kind, side, at, price, status), at, fee)
        for position, kind, side, at, price, status, fee in history
    ]
    write.order(
        positions["unfilled"], role.ENTRY, Side.BUY, now - day - 3 * hour, 99.0,
        OrderStatus.CANCELLED, reason="maker order timeout",
    )  # fmt: skip
    write.session.flush()
    for order, at, fee in fills:
        if fee is not None:
            write.fill(order, at, fee)


def _recent_monitoring(now: datetime) -> list[object]:
    engine, bot, hour = ComponentKind.ENGINE, ComponentKind.BOT, timedelta(hours=1)
    return [
        Heartbeat(
            kind=engine, name="engine-1", engine_id="e1", status="running",
            detail={"bots": 3, "api_token": "hidden"}, version=ENGINE_VERSION,
            started_at=now - 5 * hour, beat_at=now - timedelta(seconds=2),
        ),
        Heartbeat(
            kind=bot, name="alpha", engine_id="e1", status="running",
            detail={"model_version": "3"}, started_at=now - 4 * hour,
            beat_at=now - timedelta(seconds=3),
        ),
        Heartbeat(
            kind=bot, name="beta", engine_id="e1", status="error",
            started_at=now - 4 * hour, beat_at=now - timedelta(seconds=4),
        ),
        Heartbeat(
            kind=bot, name="gamma", engine_id="e1", status="running",
            started_at=now - 6 * hour, beat_at=now - timedelta(minutes=10),
        ),
    ]  # fmt: skip


def _btc_promotion(
    decided_at: datetime, version: str, *, trades: int, sharpe: float, champion: float, auc: float
) -> ModelPromotion:
    """A decision on btc-lgbm `version`: promoted when its sharpe beats the champion's."""
    beats = sharpe > champion
    return ModelPromotion(
        model_name="btc-lgbm",
        version=version,
        decision=PromotionDecision.PROMOTED if beats else PromotionDecision.REFUSED,
        reasons={
            "min_trades": {"passed": True, "value": trades, "threshold": 50},
            "sharpe_beats_champion": {"passed": beats, "value": sharpe, "champion": champion},
        },
        metrics={"sharpe": sharpe, "auc": auc},
        run_id=f"run{version}",
        data_fingerprint=DATA_FINGERPRINT,
        feature_spec_hash=FEATURE_SPEC_HASH,
        strategy_hash=MOMENTUM_HASH,
        decided_at=decided_at,
    )


def _recent_research(now: datetime) -> list[object]:
    """Two promotion decisions of btc-lgbm, an order event and yesterday's live review."""
    day = timedelta(days=1)
    divergences = [
        {
            "kind": "decision", "time": "2024-01-01T08:03:15.000Z",
            "detail": REVIEW_DIVERGENCE,
            "cause": "the strategy answered differently on the same inputs",
        },
        {
            "kind": "entry_price", "time": "2024-01-01T08:03:20.300Z",
            "detail": "live 100.012 backtest 100.0",
            "cause": "slippage: +1.20 bps from the candle price the backtest used (100.0)",
        },
    ]  # fmt: skip
    return [
        _btc_promotion(now - 3 * day, "3", trades=120, sharpe=1.4, champion=1.1, auc=0.61),
        _btc_promotion(now - day, "4", trades=95, sharpe=0.9, champion=1.4, auc=0.58),
        Event(
            kind="order_filled", bot_name="alpha", payload={"order": "tp-1"},
            created_at=now - timedelta(hours=1),
        ),
        LiveReview(
            bot_name="alpha", range_start=day_start(now) - timedelta(days=1),
            range_end=day_start(now), created_at=now - timedelta(minutes=30),
            summary={
                "features_equal": True, "decisions_equal": False, "positions_live": 3,
                "positions_backtest": 4, "positions_matched": 3, "divergences": divergences,
            },
        ),
    ]  # fmt: skip


def _recent_shadow(session: Session, now: datetime) -> None:
    """The challenger (version 4) in shadow beside alpha: one closed paper trade."""
    started_ms = int((now - timedelta(hours=2)).timestamp() * 1000)
    closed = ShadowPositionRecord(
        1, "buy", "closed", 1.0, 100.0, 101.5, started_ms, started_ms,
        started_ms + 600_000, "take_profit", 0.2, 1.5,
    )  # fmt: skip
    record_shadow(
        session,
        ShadowRecord(
            "alpha", "btc-lgbm", "4", "BTCUSDT", MOMENTUM_HASH, started_ms,
            started_ms + 3_600_000, SHADOW_DECISIONS, 1, (closed,),
        ),
    )  # fmt: skip
