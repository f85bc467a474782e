"""Frozen order and position records: what the state machine holds, emits and saves.

Records are immutable snapshots so that the machine can hand them to strategies, event
consumers and the database writer without any of them being able to change its state; a
transition builds new records instead. Statuses, roles and exit reasons are the database's
own enums (`tradepipe.enums`), so a record maps onto a row without translation.

Money is in the quote currency: fees too (a venue that charges a fee in another asset is
converted by the broker adapter before it reports the fill). Times are ms since the epoch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tradepipe.botconfig import BotConfig
from tradepipe.enums import (
    ExitReason,
    OrderRole,
    OrderStatus,
    OrderType,
    PositionStatus,
    Side,
)
from tradepipe.orders.evolve import evolve
from tradepipe.orders.serialise import build, record_to_dict

__all__ = [
    "EntryRequest",
    "FeeSchedule",
    "InvalidOrderError",
    "Liquidity",
    "OrderState",
    "Position",
    "client_order_id",
    "duration_ms",
    "parse_client_order_id",
    "venue_stop_order_id",
]


class InvalidOrderError(ValueError):
    """An entry request, fee schedule or order id that cannot be valid; says which field."""


class Liquidity(StrEnum):
    """Which side of the book a fill was on; decides the fee rate."""

    MAKER = "maker"
    TAKER = "taker"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidOrderError(message)


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates as fractions of the traded notional (0.001 is 0.1 %)."""

    maker_rate: float = 0.0
    taker_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("maker_rate", "taker_rate"):
            rate = getattr(self, name)
            _require(math.isfinite(rate) and 0 <= rate < 1, f"{name} must be in [0, 1): {rate}")

    def rate(self, liquidity: Liquidity) -> float:
        return self.maker_rate if liquidity is Liquidity.MAKER else self.taker_rate

    def fee(self, notional: float, liquidity: Liquidity) -> float:
        return notional * self.rate(liquidity)

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeeSchedule:
        return build(cls, data, {})


def duration_ms(seconds: float) -> int:
    """A config duration in seconds as whole milliseconds (at least 1), the one rounding
    that positions and labels both use."""
    return max(1, round(seconds * 1000))


# Short codes keep ids within Binance's 36-character limit for client order ids.
_ROLE_CODES = {
    OrderRole.ENTRY: "en",
    OrderRole.TAKE_PROFIT: "tp",
    OrderRole.STOP_LOSS: "sl",
    OrderRole.TIMEOUT_EXIT: "tx",
    OrderRole.MARKET_EXIT: "mx",
}
# The stop-loss leg that rests at the venue beside a take-profit (an OCO): a stop-loss
# order the engine never sends itself, so its id must not be one of the engine's own.
VENUE_STOP_CODE = "vs"
_ROLES_BY_CODE = {code: role for role, code in _ROLE_CODES.items()} | {
    VENUE_STOP_CODE: OrderRole.STOP_LOSS
}
MAX_ORDER_ID = 36
_BOT_NAME = re.compile(r"^[A-Za-z0-9_]{1,20}$")
_ORDER_ID = re.compile(r"^([A-Za-z0-9_]{1,20})-([0-9]+)-([a-z]{2})(?:-([0-9]+))?$")


def client_order_id(bot: str, position_seq: int, role: OrderRole, attempt: int = 1) -> str:
    """The deterministic client order id f"{bot}-{position_seq}-{role code}[-{attempt}]".

    The same bot, sequence and role give the same id after a restart, so an order sent just
    before a crash is found again at the venue. Role codes: en, tp, sl, tx, mx; `attempt` > 1
    marks a re-placement. Bot names are limited to 20 of [A-Za-z0-9_] so ids split
    unambiguously on "-" and, up to sequence 999,999,999, fit Binance's 36 characters.
    """
    _require(
        bool(_BOT_NAME.match(bot)),
        f"bot name {bot!r} cannot form client order ids: use 1-20 letters, digits or _",
    )
    _require(position_seq >= 0 and attempt >= 1, f"bad sequence {position_seq} or {attempt}")
    suffix = "" if attempt == 1 else f"-{attempt}"
    order_id = f"{bot}-{position_seq}-{_ROLE_CODES[role]}{suffix}"
    _require(len(order_id) <= MAX_ORDER_ID, f"client order id {order_id!r} exceeds 36 characters")
    return order_id


def parse_client_order_id(order_id: str) -> tuple[str, int, OrderRole, int] | None:
    """(bot, position_seq, role, attempt) of an id made by `client_order_id`, else None."""
    match = _ORDER_ID.match(order_id)
    if match is None or match.group(3) not in _ROLES_BY_CODE:
        return None
    attempt = int(match.group(4)) if match.group(4) else 1
    return match.group(1), int(match.group(2)), _ROLES_BY_CODE[match.group(3)], attempt


def venue_stop_order_id(take_profit_id: str) -> str:
    """The client order id of the stop-loss leg resting at the venue with the take-profit
    `take_profit_id` ("b-5-tp" -> "b-5-vs", "b-5-tp-2" -> "b-5-vs-2"): deterministic, so a
    restarted engine finds it, and never an id the engine gives an order of its own."""
    parsed = parse_client_order_id(take_profit_id)
    _require(
        parsed is not None and parsed[2] is OrderRole.TAKE_PROFIT,
        f"{take_profit_id!r} is not a take-profit's client order id",
    )
    assert parsed is not None
    bot, seq, _, attempt = parsed
    return f"{bot}-{seq}-{VENUE_STOP_CODE}" + ("" if attempt == 1 else f"-{attempt}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRequest:
    """A strategy's wish to open a position, with the exit parameters it keeps for life.

    The barriers are copied into the position, so a strategy reload or a config edit never
    moves the take-profit or stop of a position that is already open.
    """

    order_type: OrderType
    capital: float
    take_profit_pct: float
    stop_loss_pct: float
    max_holding_ms: int
    side: Side = Side.BUY
    limit_price: float | None = None
    maker_timeout_ms: int | None = None
    strategy_hash: str = ""
    model_version: str | None = None
    reason: str | None = None
    trailing_stop_pct: float | None = None  # None: no trailing stop

    def __post_init__(self) -> None:
        _require(_positive(self.capital), f"capital must be > 0: {self.capital}")
        trail = self.trailing_stop_pct
        _require(
            trail is None or (_positive(trail) and trail < 100),
            f"trailing_stop_pct must be in (0, 100): {trail}",
        )
        _require(
            _positive(self.take_profit_pct), f"take_profit_pct must be > 0: {self.take_profit_pct}"
        )
        _require(_positive(self.stop_loss_pct), f"stop_loss_pct must be > 0: {self.stop_loss_pct}")
        _require(self.max_holding_ms > 0, f"max_holding_ms must be > 0: {self.max_holding_ms}")
        if self.order_type is OrderType.LIMIT:
            price, timeout = self.limit_price, self.maker_timeout_ms
            _require(price is not None and _positive(price), f"limit_price must be > 0: {price}")
            _require(
                timeout is not None and timeout > 0, f"maker_timeout_ms must be > 0: {timeout}"
            )
        else:
            _require(
                self.limit_price is None and self.maker_timeout_ms is None,
                "a market entry takes no limit_price or maker_timeout_ms",
            )

    @classmethod
    def from_config(
        cls,
        config: BotConfig,
        *,
        limit_price: float | None = None,
        trailing_stop_pct: float | None = None,
        **extra: Any,
    ) -> EntryRequest:
        """A market entry (or a limit one when `limit_price` is given) sized and bounded
        by a bot's config; `trailing_stop_pct` (the strategy's, on its `Enter`) replaces
        the config's; `extra` sets side, strategy_hash, model_version or reason."""
        limit = limit_price is not None
        return cls(
            order_type=OrderType.LIMIT if limit else OrderType.MARKET,
            capital=config.capital_per_trade,
            take_profit_pct=config.take_profit_pct,
            stop_loss_pct=config.stop_loss_pct,
            max_holding_ms=duration_ms(config.max_holding_seconds),
            limit_price=limit_price,
            maker_timeout_ms=duration_ms(config.maker_order_timeout_seconds) if limit else None,
            trailing_stop_pct=config.trailing_stop_pct
            if trailing_stop_pct is None
            else trailing_stop_pct,
            **extra,
        )

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntryRequest:
        return build(cls, data, {"order_type": OrderType, "side": Side})


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderState:
    """One order as the machine sees it. `quantity` is None for a market entry sized in
    quote currency (`quote_quantity`); its base quantity is known once it fills."""

    client_order_id: str
    role: OrderRole
    side: Side
    order_type: OrderType
    status: OrderStatus
    placed_at_ms: int
    updated_at_ms: int
    price: float | None = None
    quantity: float | None = None
    quote_quantity: float | None = None
    expires_at_ms: int | None = None  # maker timeout of a limit entry
    filled_quantity: float = 0.0
    average_price: float | None = None
    fee: float = 0.0
    resting: bool = False  # has been on the book through a whole candle (fill model rule 3)
    cancel_requested: bool = False
    reason: str | None = None

    @property
    def is_working(self) -> bool:
        return not self.status.is_terminal

    def filled(
        self, price: float, quantity: float, fee: float, time_ms: int, *, complete: bool
    ) -> OrderState:
        """This order after one more fill; `complete` is the venue's word that it is done."""
        total = self.filled_quantity + quantity
        average = (
            price
            if self.average_price is None
            else (self.average_price * self.filled_quantity + price * quantity) / total
        )
        return evolve(
            self,
            status=OrderStatus.FILLED if complete else OrderStatus.PARTIALLY_FILLED,
            filled_quantity=total,
            average_price=average,
            fee=self.fee + fee,
            updated_at_ms=time_ms,
        )

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderState:
        return build(
            cls,
            data,
            {"role": OrderRole, "side": Side, "order_type": OrderType, "status": OrderStatus},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """A position from its entry order to its close. Barrier prices and the holding
    deadline are fixed when the entry fills; PnL is derived from the fills, never stored,
    so it cannot disagree with them."""

    bot: str
    seq: int
    symbol: str
    side: Side
    status: PositionStatus
    request: EntryRequest
    created_at_ms: int
    entry: OrderState
    exits: tuple[OrderState, ...] = ()
    opened_at_ms: int | None = None
    take_profit_price: float | None = None
    stop_loss_price: float | None = None
    # ratchets with the best price seen (tradepipe.orders.trailing); None without a trail
    trailing_stop_price: float | None = None
    expires_at_ms: int | None = None
    closed_at_ms: int | None = None
    exit_reason: ExitReason | None = None
    pending_exit: ExitReason | None = None  # waiting for a cancel to confirm

    @property
    def is_open(self) -> bool:
        return self.status is not PositionStatus.CLOSED

    @property
    def quantity(self) -> float:
        return self.entry.filled_quantity

    @property
    def entry_price(self) -> float | None:
        return self.entry.average_price

    @property
    def exit_quantity(self) -> float:
        return sum(order.filled_quantity for order in self.exits)

    @property
    def exit_price(self) -> float | None:
        filled = [order for order in self.exits if order.average_price is not None]
        if len(filled) == 1:
            return filled[0].average_price
        if not filled:
            return None
        notional = sum(o.filled_quantity * (o.average_price or 0.0) for o in filled)
        return notional / self.exit_quantity

    @property
    def entry_fee(self) -> float:
        return self.entry.fee

    @property
    def exit_fee(self) -> float:
        return sum(order.fee for order in self.exits)

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee

    @property
    def gross_pnl(self) -> float:
        """Realised PnL of the quantity exited so far, before fees."""
        entry, exit_ = self.entry_price, self.exit_price
        if entry is None or exit_ is None:
            return 0.0
        move = exit_ - entry if self.side is Side.BUY else entry - exit_
        return self.exit_quantity * move

    @property
    def net_pnl(self) -> float:
        return self.gross_pnl - self.fees

    def order(self, client_order_id: str) -> OrderState | None:
        for candidate in (self.entry, *self.exits):
            if candidate.client_order_id == client_order_id:
                return candidate
        return None

    def working_exit(self, role: OrderRole) -> OrderState | None:
        for candidate in self.exits:
            if candidate.role is role and candidate.is_working:
                return candidate
        return None

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Position:
        def reason(value: str | None) -> ExitReason | None:
            return None if value is None else ExitReason(value)

        return build(
            cls,
            data,
            {
                "side": Side,
                "status": PositionStatus,
                "request": EntryRequest.from_dict,
                "entry": OrderState.from_dict,
                "exits": lambda items: tuple(OrderState.from_dict(item) for item in items),
                "exit_reason": reason,
                "pending_exit": reason,
            },
        )
