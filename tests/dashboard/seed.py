"""A small trading history for the dashboard, relative to a given `now`, with known figures.

Bots:
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
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from tradepipe.db import (
    Bot,
    BotStatus,
    ComponentKind,
    Event,
    ExitReason,
    Fill,
    Heartbeat,
    LiveReview,
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
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord, record_shadow

MOMENTUM_HASH = "c0ffee" + "1" * 58
MOMENTUM_OLD_HASH = "deadbe" + "2" * 58
MEAN_REVERT_HASH = "facade" + "3" * 58
FEATURE_SPEC_HASH = "5eed" + "4" * 60
DATA_FINGERPRINT = "sha256:0dd5a1a0b1c2"
ENGINE_VERSION = "0.1.0"
BETA_ERROR = "ccxt InsufficientFunds: account has 3.2 USDT, order needs 100"
MEAN_REVERT_ERROR = "strategies/mean_revert.py:12: NameError: name 'np' is not defined"
REVIEW_DIVERGENCE = "live enter, backtest hold"


@dataclass(frozen=True)
class Seeded:
    now: datetime
    win_id: int
    loss_id: int
    active_id: int
    unfilled_id: int
    pending_id: int
    timeout_id: int
    loss_closed_at: datetime


SHADOW_DECISIONS = 61


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def seed(engine: Engine, now: datetime) -> Seeded:
    # "Today" must hold the loss whatever the hour: close it an hour ago, or at midnight.
    loss_closed = max(day_start(now), now - timedelta(hours=1))
    with session_scope(engine) as session:
        session.add_all(
            [
                Strategy(
                    name="momentum",
                    file_path="strategies/momentum.py",
                    class_name="Momentum",
                    content_hash=MOMENTUM_HASH,
                    status=StrategyStatus.VALID,
                    version_count=3,
                ),
                Strategy(
                    name="mean_revert",
                    file_path="strategies/mean_revert.py",
                    class_name="MeanRevert",
                    content_hash=MEAN_REVERT_HASH,
                    status=StrategyStatus.INVALID,
                    error=MEAN_REVERT_ERROR,
                    error_line=12,
                    version_count=2,
                ),
            ]
        )
        config = {
            "capital_per_trade": 100.0,
            "take_profit_pct": 1.0,
            "stop_loss_pct": 0.5,
            "max_holding_seconds": 3600,
            "maker_order_timeout_seconds": 30,
        }
        alpha = Bot(
            name="alpha",
            strategy_name="momentum",
            symbol="BTCUSDT",
            timeframe="1m",
            config={**config, "model_name": "btc-lgbm"},
            enabled=True,
            status=BotStatus.RUNNING,
        )
        beta = Bot(
            name="beta",
            strategy_name="momentum",
            symbol="ETHUSDT",
            timeframe="5m",
            config=config,
            enabled=True,
            status=BotStatus.ERROR,
            last_error=BETA_ERROR,
        )
        gamma = Bot(
            name="gamma",
            strategy_name="mean_revert",
            symbol="SOLUSDT",
            timeframe="1h",
            config=config,
            enabled=True,
            status=BotStatus.RUNNING,
        )
        delta = Bot(
            name="delta",
            strategy_name="vanished",
            symbol="XRPUSDT",
            timeframe="1m",
            config=config,
            enabled=False,
            status=BotStatus.STOPPED,
        )
        session.add_all([alpha, beta, gamma, delta])
        session.flush()

        def position(bot: Bot, status: PositionStatus, **fields: object) -> Position:
            values: dict[str, object] = {
                "side": Side.BUY,
                "quantity": 1.0,
                "strategy_hash": MOMENTUM_HASH,
                "model_version": "3",
                "created_at": fields.get("opened_at") or now,
            }
            values.update(fields)
            row = Position(bot_id=bot.id, symbol=bot.symbol, status=status, **values)
            session.add(row)
            return row

        win = position(
            alpha,
            PositionStatus.CLOSED,
            entry_price=100.0,
            exit_price=102.0,
            opened_at=now - timedelta(days=1, hours=1),
            closed_at=now - timedelta(days=1),
            exit_reason=ExitReason.TAKE_PROFIT,
            realised_pnl=2.0,
            fees=0.2,
            take_profit_price=102.0,
            stop_loss_price=99.5,
            strategy_hash=MOMENTUM_OLD_HASH,
            model_version="2",
        )
        loss = position(
            alpha,
            PositionStatus.CLOSED,
            side=Side.SELL,
            entry_price=104.0,
            exit_price=105.0,
            opened_at=loss_closed - timedelta(minutes=40),
            closed_at=loss_closed,
            exit_reason=ExitReason.STOP_LOSS,
            realised_pnl=-1.0,
            fees=0.1,
        )
        active = position(
            alpha,
            PositionStatus.ACTIVE,
            quantity=0.5,
            entry_price=103.0,
            opened_at=now - timedelta(hours=3),
            take_profit_price=104.03,
            stop_loss_price=102.485,
            expires_at=now + timedelta(hours=1),
            fees=0.05,
        )
        unfilled = position(
            alpha,
            PositionStatus.CLOSED,
            quantity=0.0,
            created_at=now - timedelta(days=1, hours=3),
            closed_at=now - timedelta(days=1, hours=3) + timedelta(seconds=30),
            exit_reason=ExitReason.MAKER_TIMEOUT,
        )
        pending = position(beta, PositionStatus.PENDING, quantity=0.03, created_at=now)
        timeout = position(
            gamma,
            PositionStatus.CLOSED,
            entry_price=150.0,
            exit_price=150.6,
            opened_at=now - timedelta(days=2, hours=1),
            closed_at=now - timedelta(days=2),
            exit_reason=ExitReason.TIMEOUT,
            realised_pnl=0.5,
            fees=0.05,
            strategy_hash=MEAN_REVERT_HASH,
            model_version=None,
        )
        session.flush()

        def order(
            pos: Position,
            role: OrderRole,
            side: Side,
            at: datetime,
            price: float,
            status: OrderStatus,
            **fields: object,
        ) -> Order:
            row = Order(
                client_order_id=f"tp-{pos.id}-{role.value}",
                bot_id=pos.bot_id,
                position_id=pos.id,
                symbol=pos.symbol,
                side=side,
                order_type=OrderType.LIMIT,
                price=price,
                quantity=pos.quantity or 1.0,
                filled_quantity=(pos.quantity or 1.0) if status is OrderStatus.FILLED else 0.0,
                status=status,
                role=role,
                strategy_hash=pos.strategy_hash,
                model_version=pos.model_version,
                created_at=at,
                updated_at=at,
                **fields,
            )
            session.add(row)
            return row

        def fill(row: Order, at: datetime, fee: float) -> None:
            session.add(
                Fill(
                    order_id=row.id,
                    exchange_fill_id=f"t-{row.client_order_id}",
                    price=row.price,
                    quantity=row.quantity,
                    fee=fee,
                    fee_asset="USDT",
                    filled_at=at,
                )
            )

        filled, working = OrderStatus.FILLED, OrderStatus.OPEN
        win_opened, win_closed = now - timedelta(days=1, hours=1), now - timedelta(days=1)
        loss_opened = loss_closed - timedelta(minutes=40)
        active_opened = now - timedelta(hours=3)
        timeout_opened, timeout_closed = now - timedelta(days=2, hours=1), now - timedelta(days=2)
        # (position, role, side, placed at, price, status, fee of its one fill if filled)
        history = [
            (win, OrderRole.ENTRY, Side.BUY, win_opened, 100.0, filled, 0.1),
            (win, OrderRole.TAKE_PROFIT, Side.SELL, win_closed, 102.0, filled, 0.1),
            (loss, OrderRole.ENTRY, Side.SELL, loss_opened, 104.0, filled, 0.05),
            (loss, OrderRole.STOP_LOSS, Side.BUY, loss_closed, 105.0, filled, 0.05),
            (active, OrderRole.ENTRY, Side.BUY, active_opened, 103.0, filled, 0.05),
            (active, OrderRole.TAKE_PROFIT, Side.SELL, active_opened, 104.03, working, None),
            (timeout, OrderRole.ENTRY, Side.BUY, timeout_opened, 150.0, filled, 0.025),
            (timeout, OrderRole.TIMEOUT_EXIT, Side.SELL, timeout_closed, 150.6, filled, 0.025),
            (pending, OrderRole.ENTRY, Side.BUY, now, 3000.0, working, None),
        ]
        fills = [
            (order(pos, role, side, at, price, status), at, fee)
            for pos, role, side, at, price, status, fee in history
        ]
        order(
            unfilled,
            OrderRole.ENTRY,
            Side.BUY,
            now - timedelta(days=1, hours=3),
            99.0,
            OrderStatus.CANCELLED,
            reason="maker order timeout",
        )
        session.flush()
        for row, at, fee in fills:
            if fee is not None:
                fill(row, at, fee)

        session.add_all(
            [
                Heartbeat(
                    kind=ComponentKind.ENGINE,
                    name="engine-1",
                    engine_id="e1",
                    status="running",
                    detail={"bots": 3, "api_token": "hidden"},
                    version=ENGINE_VERSION,
                    started_at=now - timedelta(hours=5),
                    beat_at=now - timedelta(seconds=2),
                ),
                Heartbeat(
                    kind=ComponentKind.BOT,
                    name="alpha",
                    engine_id="e1",
                    status="running",
                    detail={"model_version": "3"},
                    started_at=now - timedelta(hours=4),
                    beat_at=now - timedelta(seconds=3),
                ),
                Heartbeat(
                    kind=ComponentKind.BOT,
                    name="beta",
                    engine_id="e1",
                    status="error",
                    started_at=now - timedelta(hours=4),
                    beat_at=now - timedelta(seconds=4),
                ),
                Heartbeat(
                    kind=ComponentKind.BOT,
                    name="gamma",
                    engine_id="e1",
                    status="running",
                    started_at=now - timedelta(hours=6),
                    beat_at=now - timedelta(minutes=10),
                ),
                ModelPromotion(
                    model_name="btc-lgbm",
                    version="3",
                    decision=PromotionDecision.PROMOTED,
                    reasons={
                        "min_trades": {"passed": True, "value": 120, "threshold": 50},
                        "sharpe_beats_champion": {"passed": True, "value": 1.4, "champion": 1.1},
                    },
                    metrics={"sharpe": 1.4, "auc": 0.61},
                    run_id="run3",
                    data_fingerprint=DATA_FINGERPRINT,
                    feature_spec_hash=FEATURE_SPEC_HASH,
                    strategy_hash=MOMENTUM_HASH,
                    decided_at=now - timedelta(days=3),
                ),
                ModelPromotion(
                    model_name="btc-lgbm",
                    version="4",
                    decision=PromotionDecision.REFUSED,
                    reasons={
                        "min_trades": {"passed": True, "value": 95, "threshold": 50},
                        "sharpe_beats_champion": {"passed": False, "value": 0.9, "champion": 1.4},
                    },
                    metrics={"sharpe": 0.9, "auc": 0.58},
                    run_id="run4",
                    data_fingerprint=DATA_FINGERPRINT,
                    feature_spec_hash=FEATURE_SPEC_HASH,
                    strategy_hash=MOMENTUM_HASH,
                    decided_at=now - timedelta(days=1),
                ),
                Event(
                    kind="order_filled",
                    bot_name="alpha",
                    payload={"order": "tp-1"},
                    created_at=now - timedelta(hours=1),
                ),
                LiveReview(
                    bot_name="alpha",
                    range_start=day_start(now) - timedelta(days=1),
                    range_end=day_start(now),
                    summary={
                        "features_equal": True,
                        "decisions_equal": False,
                        "positions_live": 3,
                        "positions_backtest": 4,
                        "positions_matched": 3,
                        "divergences": [
                            {
                                "kind": "decision",
                                "time": "2024-01-01T08:03:15.000Z",
                                "detail": REVIEW_DIVERGENCE,
                                "cause": "the strategy answered differently on the same inputs",
                            },
                            {
                                "kind": "entry_price",
                                "time": "2024-01-01T08:03:20.300Z",
                                "detail": "live 100.012 backtest 100.0",
                                "cause": "slippage: +1.20 bps from the candle price the "
                                "backtest used (100.0)",
                            },
                        ],
                    },
                    created_at=now - timedelta(minutes=30),
                ),
            ]
        )
        # the challenger (version 4) in shadow beside alpha: one closed paper trade
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
        return Seeded(
            now=now,
            win_id=win.id,
            loss_id=loss.id,
            active_id=active.id,
            unfilled_id=unfilled.id,
            pending_id=pending.id,
            timeout_id=timeout.id,
            loss_closed_at=loss_closed,
        )
