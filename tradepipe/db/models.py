"""SQLAlchemy models of the trading database.

Conventions, so every writer (engine, CLI, DAGs) and the query layer agree:
- times are timezone-aware UTC datetimes (`UTCDateTime`); naive ones are refused;
- prices, quantities, fees and PnL are floats in the quote currency, as in `tradepipe.domain`;
- `Position.realised_pnl` is before fees; the net result is `realised_pnl - fees`;
- bots name their strategy by string, not by foreign key, so removing a strategy file never
  breaks (or cascades into) the bots and their trading history;
- model versions are MLflow's version strings, strategy hashes the loader's content hashes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from tradepipe.botconfig import BotConfig, parse_bot_config
from tradepipe.db.base import Base
from tradepipe.db.types import IdType, UTCDateTime, enum_column_type, utcnow
from tradepipe.enums import (
    BotMode,
    BotStatus,
    ComponentKind,
    ExitReason,
    OrderRole,
    OrderStatus,
    OrderType,
    PositionStatus,
    PromotionDecision,
    Side,
    StrategyStatus,
)
from tradepipe.timeframes import parse_timeframe

__all__ = [
    "Bot",
    "DailyBotStats",
    "Event",
    "Fill",
    "Heartbeat",
    "ModelPromotion",
    "Order",
    "Position",
    "Strategy",
]

NAME = 128  # bot, strategy and component names
SYMBOL = 32
HASH = 64  # sha256 hex digest
REF = 64  # exchange ids, client order ids, MLflow versions and run ids


class _Timestamps:
    """Audit times kept by the database layer itself, not trading times."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Strategy(_Timestamps, Base):
    """The strategy registry: one row per strategy file the loader has seen."""

    __tablename__ = "strategies"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME), unique=True)
    file_path: Mapped[str] = mapped_column(sa.String(1024))
    class_name: Mapped[str] = mapped_column(sa.String(NAME))
    content_hash: Mapped[str] = mapped_column(sa.String(HASH))
    status: Mapped[StrategyStatus] = mapped_column(
        enum_column_type(StrategyStatus, "status"), default=StrategyStatus.VALID
    )
    error: Mapped[str | None] = mapped_column(sa.Text)  # loader message with file and line
    error_line: Mapped[int | None] = mapped_column(sa.Integer)
    version_count: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (sa.CheckConstraint("version_count >= 0", name="version_count_not_negative"),)


class Bot(_Timestamps, Base):
    """A configured bot: which strategy trades which symbol, how, and in which mode."""

    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME), unique=True)
    strategy_name: Mapped[str] = mapped_column(sa.String(NAME), index=True)
    symbol: Mapped[str] = mapped_column(sa.String(SYMBOL))
    exchange: Mapped[str] = mapped_column(sa.String(32), default="binance")
    timeframe: Mapped[str] = mapped_column(sa.String(8))
    mode: Mapped[BotMode] = mapped_column(enum_column_type(BotMode, "mode"), default=BotMode.PAPER)
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # No default on purpose: whoever creates a bot decides whether it may trade.
    enabled: Mapped[bool] = mapped_column(sa.Boolean(create_constraint=True, name="enabled"))
    status: Mapped[BotStatus] = mapped_column(
        enum_column_type(BotStatus, "status"), default=BotStatus.STOPPED
    )
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    @validates("timeframe")
    def _canonical_timeframe(self, _key: str, value: str) -> str:
        # "60s" and "1m" are the same candles; store one spelling so lookups match.
        return parse_timeframe(value).name

    @validates("config")
    def _validated_config(self, _key: str, value: dict[str, Any] | BotConfig) -> dict[str, Any]:
        return parse_bot_config(value, bot=self.name).model_dump(mode="json")

    @property
    def bot_config(self) -> BotConfig:
        return parse_bot_config(self.config, bot=self.name)


class Position(_Timestamps, Base):
    """One round trip: pending (entry working), active (holding), closed (with a reason)."""

    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    bot_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("bots.id"))
    symbol: Mapped[str] = mapped_column(sa.String(SYMBOL))
    side: Mapped[Side] = mapped_column(enum_column_type(Side, "side"))
    status: Mapped[PositionStatus] = mapped_column(
        enum_column_type(PositionStatus, "status"), default=PositionStatus.PENDING
    )
    quantity: Mapped[float] = mapped_column(sa.Float)
    entry_price: Mapped[float | None] = mapped_column(sa.Float)
    exit_price: Mapped[float | None] = mapped_column(sa.Float)
    take_profit_price: Mapped[float | None] = mapped_column(sa.Float)
    stop_loss_price: Mapped[float | None] = mapped_column(sa.Float)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # entry filled
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # holding timeout
    exit_reason: Mapped[ExitReason | None] = mapped_column(
        enum_column_type(ExitReason, "exit_reason")
    )
    fees: Mapped[float] = mapped_column(sa.Float, default=0.0)
    realised_pnl: Mapped[float] = mapped_column(sa.Float, default=0.0)  # before fees
    strategy_hash: Mapped[str] = mapped_column(sa.String(HASH))
    model_version: Mapped[str | None] = mapped_column(sa.String(REF))

    orders: Mapped[list[Order]] = relationship(
        back_populates="position", order_by="Order.id", passive_deletes=True
    )

    __table_args__ = (
        sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        sa.CheckConstraint("fees >= 0", name="fees_not_negative"),
        # A closed position always says why, so PnL reports can be broken down by exit.
        sa.CheckConstraint(
            "status != 'closed' OR exit_reason IS NOT NULL", name="closed_has_exit_reason"
        ),
        sa.Index("ix_positions_bot_id_status", "bot_id", "status"),
        sa.Index("ix_positions_status", "status"),
        sa.Index("ix_positions_closed_at", "closed_at"),
    )


class Order(_Timestamps, Base):
    """An order as sent to the venue, recorded before sending and updated as it fills."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(sa.String(REF), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(REF))
    bot_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("bots.id"))
    position_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("positions.id"))
    symbol: Mapped[str] = mapped_column(sa.String(SYMBOL))
    side: Mapped[Side] = mapped_column(enum_column_type(Side, "side"))
    order_type: Mapped[OrderType] = mapped_column(enum_column_type(OrderType, "order_type"))
    price: Mapped[float | None] = mapped_column(sa.Float)  # None for market orders
    quantity: Mapped[float] = mapped_column(sa.Float)
    filled_quantity: Mapped[float] = mapped_column(sa.Float, default=0.0)
    status: Mapped[OrderStatus] = mapped_column(
        enum_column_type(OrderStatus, "status"), default=OrderStatus.NEW
    )
    role: Mapped[OrderRole] = mapped_column(enum_column_type(OrderRole, "role"))
    strategy_hash: Mapped[str] = mapped_column(sa.String(HASH))
    model_version: Mapped[str | None] = mapped_column(sa.String(REF))
    reason: Mapped[str | None] = mapped_column(sa.Text)  # why it was placed or cancelled
    error: Mapped[str | None] = mapped_column(sa.Text)  # the venue's rejection message

    position: Mapped[Position | None] = relationship(back_populates="orders")
    fills: Mapped[list[Fill]] = relationship(back_populates="order", order_by="Fill.id")

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("filled_quantity >= 0", name="filled_quantity_not_negative"),
        sa.CheckConstraint("price IS NULL OR price > 0", name="price_positive"),
        sa.CheckConstraint(
            "order_type != 'limit' OR price IS NOT NULL", name="limit_order_has_price"
        ),
        sa.Index("ix_orders_bot_id_status", "bot_id", "status"),
        sa.Index("ix_orders_bot_id_created_at", "bot_id", "created_at"),
        sa.Index("ix_orders_status", "status"),
        sa.Index("ix_orders_created_at", "created_at"),
        sa.Index("ix_orders_position_id", "position_id"),
    )


class Fill(Base):
    """One execution of an order. (order_id, exchange_fill_id) is unique so replaying the
    venue's trade history during reconciliation never double-counts."""

    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    order_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("orders.id"))
    exchange_fill_id: Mapped[str] = mapped_column(sa.String(REF))  # venue trade id
    price: Mapped[float] = mapped_column(sa.Float)
    quantity: Mapped[float] = mapped_column(sa.Float)
    fee: Mapped[float] = mapped_column(sa.Float, default=0.0)
    fee_asset: Mapped[str | None] = mapped_column(sa.String(16))
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime())

    order: Mapped[Order] = relationship(back_populates="fills")

    __table_args__ = (
        sa.UniqueConstraint("order_id", "exchange_fill_id"),
        sa.CheckConstraint("price > 0", name="price_positive"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("fee >= 0", name="fee_not_negative"),
    )


class DailyBotStats(Base):
    """Per-bot, per-UTC-day totals, upserted by the engine as positions close."""

    __tablename__ = "daily_bot_stats"

    bot_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("bots.id"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    trades: Mapped[int] = mapped_column(sa.Integer, default=0)
    wins: Mapped[int] = mapped_column(sa.Integer, default=0)
    losses: Mapped[int] = mapped_column(sa.Integer, default=0)
    gross_pnl: Mapped[float] = mapped_column(sa.Float, default=0.0)
    fees: Mapped[float] = mapped_column(sa.Float, default=0.0)
    net_pnl: Mapped[float] = mapped_column(sa.Float, default=0.0)
    volume: Mapped[float] = mapped_column(sa.Float, default=0.0)  # quote currency traded


class Heartbeat(Base):
    """The latest beat of an engine or a bot; staleness is judged by readers from beat_at.

    `status` is the component's own lifecycle word (ready, running, degraded, ...), kept as
    free text so the engine can refine its lifecycle without a migration.
    """

    __tablename__ = "heartbeats"

    kind: Mapped[ComponentKind] = mapped_column(
        enum_column_type(ComponentKind, "kind"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(NAME), primary_key=True)
    engine_id: Mapped[str] = mapped_column(sa.String(REF))
    status: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    version: Mapped[str | None] = mapped_column(sa.String(REF))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelPromotion(Base):
    """Every promotion decision, including refusals and the gate results behind them."""

    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(256))
    version: Mapped[str] = mapped_column(sa.String(REF))
    alias: Mapped[str] = mapped_column(sa.String(REF), default="champion")
    decision: Mapped[PromotionDecision] = mapped_column(
        enum_column_type(PromotionDecision, "decision")
    )
    # gate name -> its result, e.g. {"sharpe_beats_champion": {"passed": false, ...}}
    reasons: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    run_id: Mapped[str | None] = mapped_column(sa.String(REF))
    data_fingerprint: Mapped[str | None] = mapped_column(sa.String(128))
    feature_spec_hash: Mapped[str | None] = mapped_column(sa.String(HASH))
    strategy_hash: Mapped[str | None] = mapped_column(sa.String(HASH))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        sa.Index("ix_model_promotions_model_name_decided_at", "model_name", "decided_at"),
    )


class Event(Base):
    """An append-only log of what happened (orders, reloads, refusals, errors) for humans."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    bot_name: Mapped[str | None] = mapped_column(sa.String(NAME))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        sa.Index("ix_events_created_at", "created_at"),
        sa.Index("ix_events_kind_created_at", "kind", "created_at"),
    )
