"""What the query layer returns: frozen, plain dataclasses, never ORM objects.

Readers (dashboard, API, CLI) get values that stay valid after the session closes and
cannot write back to the database by accident. JSON columns come back as fresh dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tradepipe.botconfig import BotConfig
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

__all__ = [
    "BotPnl",
    "BotView",
    "DailyStatsView",
    "EventView",
    "FillView",
    "HeartbeatView",
    "OrderView",
    "PnlSummary",
    "PositionDetail",
    "PositionView",
    "PromotionView",
    "StrategyDetail",
    "StrategyView",
]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class StrategyView:
    id: int
    name: str
    file_path: str
    class_name: str
    content_hash: str
    status: StrategyStatus
    error: str | None
    error_line: int | None
    version_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BotView:
    """A bot; `config` is None (and `config_error` says why) if the stored JSON no longer
    validates, so one bad row cannot break a listing of every bot."""

    id: int
    name: str
    strategy_name: str
    symbol: str
    exchange: str
    timeframe: str
    mode: BotMode
    enabled: bool
    status: BotStatus
    last_error: str | None
    config: BotConfig | None
    config_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StrategyDetail:
    strategy: StrategyView
    bots: tuple[BotView, ...]  # bots configured with this strategy, by name


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    client_order_id: str
    exchange_order_id: str | None
    bot_name: str
    position_id: int | None
    symbol: str
    side: Side
    order_type: OrderType
    price: float | None
    quantity: float
    filled_quantity: float
    status: OrderStatus
    role: OrderRole
    strategy_hash: str
    model_version: str | None
    reason: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FillView:
    id: int
    order_id: int
    exchange_fill_id: str
    price: float
    quantity: float
    fee: float
    fee_asset: str | None
    filled_at: datetime


@dataclass(frozen=True, slots=True)
class PositionView:
    id: int
    bot_name: str
    symbol: str
    side: Side
    status: PositionStatus
    quantity: float
    entry_price: float | None
    exit_price: float | None
    take_profit_price: float | None
    stop_loss_price: float | None
    opened_at: datetime | None
    closed_at: datetime | None
    expires_at: datetime | None
    exit_reason: ExitReason | None
    fees: float
    realised_pnl: float  # before fees
    strategy_hash: str
    model_version: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def net_pnl(self) -> float:
        return self.realised_pnl - self.fees


@dataclass(frozen=True, slots=True)
class PositionDetail:
    position: PositionView
    orders: tuple[OrderView, ...]  # oldest first
    fills: tuple[FillView, ...]  # of all those orders, oldest first


@dataclass(frozen=True, slots=True)
class BotPnl:
    """Realised results of one bot's closed trades.

    A trade is a closed position whose entry filled (an entry that timed out unfilled is not
    a trade). A win nets more than zero after fees; every other trade counts as a loss.
    """

    bot_name: str
    trades: int
    wins: int
    losses: int
    realised_pnl: float  # before fees
    fees: float
    open_positions: int  # pending or active, now

    @property
    def net_pnl(self) -> float:
        return self.realised_pnl - self.fees

    @property
    def win_rate(self) -> float | None:
        """wins / trades, or None before the first trade."""
        return _ratio(self.wins, self.trades)


@dataclass(frozen=True, slots=True)
class PnlSummary:
    bots: tuple[BotPnl, ...]  # every bot, by name, including those that never traded

    @property
    def trades(self) -> int:
        return sum(bot.trades for bot in self.bots)

    @property
    def wins(self) -> int:
        return sum(bot.wins for bot in self.bots)

    @property
    def realised_pnl(self) -> float:
        return sum(bot.realised_pnl for bot in self.bots)

    @property
    def fees(self) -> float:
        return sum(bot.fees for bot in self.bots)

    @property
    def net_pnl(self) -> float:
        return self.realised_pnl - self.fees

    @property
    def open_positions(self) -> int:
        return sum(bot.open_positions for bot in self.bots)

    @property
    def win_rate(self) -> float | None:
        return _ratio(self.wins, self.trades)

    def for_bot(self, name: str) -> BotPnl | None:
        return next((bot for bot in self.bots if bot.bot_name == name), None)


@dataclass(frozen=True, slots=True)
class DailyStatsView:
    bot_name: str
    day: date  # UTC day
    trades: int
    wins: int
    losses: int
    gross_pnl: float
    fees: float
    net_pnl: float
    volume: float

    @property
    def win_rate(self) -> float | None:
        return _ratio(self.wins, self.trades)


@dataclass(frozen=True, slots=True)
class HeartbeatView:
    """A component's last beat, judged against the reader's clock when it was read."""

    kind: ComponentKind
    name: str
    engine_id: str
    status: str
    detail: dict[str, Any]
    version: str | None
    started_at: datetime
    beat_at: datetime
    age_seconds: float  # how long before the read the last beat was
    is_stale: bool


@dataclass(frozen=True, slots=True)
class PromotionView:
    id: int
    model_name: str
    version: str
    alias: str
    decision: PromotionDecision
    reasons: dict[str, Any]
    metrics: dict[str, Any]
    run_id: str | None
    data_fingerprint: str | None
    feature_spec_hash: str | None
    strategy_hash: str | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    kind: str
    bot_name: str | None
    payload: dict[str, Any]
    created_at: datetime
