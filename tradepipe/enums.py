"""The closed vocabularies of trading, shared by the order state machine and the database.

They live in the kernel's root, not in `tradepipe.db`, so pure code (orders, labels) can use
them without importing SQLAlchemy. In the database each enum is stored as its string value
in a VARCHAR guarded by a named CHECK constraint (see `tradepipe.db.types.enum_column_type`),
so SQLite and PostgreSQL hold identical data and a new member is an ordinary Alembic
migration rather than an `ALTER TYPE`.
"""

from __future__ import annotations

from enum import StrEnum

from tradepipe.domain import Side

__all__ = [
    "BotMode",
    "BotStatus",
    "ComponentKind",
    "ExitReason",
    "OrderRole",
    "OrderStatus",
    "OrderType",
    "PositionStatus",
    "PromotionDecision",
    "Side",
    "StrategyStatus",
]


class StrategyStatus(StrEnum):
    """Outcome of the last load of a strategy file."""

    VALID = "valid"
    INVALID = "invalid"  # the file failed to load; `error` says why, bots keep the old version
    REMOVED = "removed"  # the file was deleted; its bots moved to the default strategy


class BotMode(StrEnum):
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


class BotStatus(StrEnum):
    STOPPED = "stopped"
    RUNNING = "running"
    ERROR = "error"
    STALE = "stale"  # marked running but its engine stopped heart-beating


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    NEW = "new"  # recorded before it is sent, so a crash mid-send is reconcilable
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_ORDER_STATUSES


_TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class OrderRole(StrEnum):
    """Why an order exists within its position's life."""

    ENTRY = "entry"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    TIMEOUT_EXIT = "timeout_exit"
    MARKET_EXIT = "market_exit"  # a forced exit for any other reason (manual, error)


class PositionStatus(StrEnum):
    PENDING = "pending"  # entry order working, nothing filled yet
    ACTIVE = "active"
    CLOSED = "closed"


class ExitReason(StrEnum):
    """Why a position closed. Adding a member needs a migration (it widens a CHECK)."""

    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    TIMEOUT = "timeout"  # held for max_holding_seconds
    MAKER_TIMEOUT = "maker_timeout"  # the entry limit order never filled in time
    MANUAL = "manual"  # closed by hand for every bot: the kill switch's flatten
    OPERATOR = "operator"  # an operator closed this one position (CLI, API, dashboard)
    REJECTED = "rejected"  # the venue refused the entry order
    ERROR = "error"  # closed by reconciliation after a failure
    STRATEGY = "strategy"  # the strategy returned Exit for it
    TRAILING_STOP = "trailing_stop"  # the trailing stop, ratcheted by the best price seen


class ComponentKind(StrEnum):
    """What sends a heartbeat."""

    ENGINE = "engine"
    BOT = "bot"


class PromotionDecision(StrEnum):
    PROMOTED = "promoted"
    REFUSED = "refused"
