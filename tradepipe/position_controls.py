"""An operator's hand on one open position: close it, or move its barriers; and moving the
barriers of every open position of a bot to its (new) configuration.

The one implementation behind `tradepipe positions close|move`, `tradepipe bots set
--move-open` and the dashboard's buttons. A request is checked here against what the
database says (the position is open; for a move, active, with the new barriers on the right
side of the live price its engine publishes, tradepipe/db/live_prices.py) and written as a
row of `engine_controls` named `op:<id>` with who and when: the engine running the bot
applies it at its next poll of the table (`engine_bot_reload_seconds`), checks it again
against its own last trade, and marks the row `applied` or `refused` (with why), recording
an event with who, the old and the new barriers. The engine's API applies the same actions
in-process at once (live/engine/operator.py).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tradepipe.bots import bot_row
from tradepipe.db.engine_state import EngineControl
from tradepipe.db.live_prices import live_prices
from tradepipe.db.models import Bot, Order, Position
from tradepipe.enums import OrderRole, PositionStatus, Side
from tradepipe.orders import BarrierError, check_barrier_prices, parse_client_order_id

__all__ = [
    "CLOSE",
    "MOVE",
    "MOVE_BOT",
    "REQUEST_PREFIX",
    "OpenPositionRef",
    "OperatorRequest",
    "PositionControlError",
    "UnknownPositionError",
    "locate_position",
    "pending_requests",
    "request_bot_move",
    "request_close",
    "request_move",
]

REQUEST_PREFIX = "op:"
CLOSE, MOVE, MOVE_BOT = "close_position", "move_barriers", "move_bot_barriers"


class PositionControlError(ValueError):
    """A request that cannot be taken; the message says which and why."""


class UnknownPositionError(PositionControlError):
    pass


@dataclass(frozen=True, slots=True)
class OpenPositionRef:
    """An open position as the database has it, with the (bot, seq) the engine knows."""

    id: int
    bot: str
    seq: int
    symbol: str
    exchange: str
    side: Side
    status: PositionStatus
    entry_price: float | None
    take_profit_price: float | None
    stop_loss_price: float | None


@dataclass(frozen=True, slots=True)
class OperatorRequest:
    name: str  # the engine_controls row
    action: str  # CLOSE, MOVE or MOVE_BOT
    bot: str
    by: str
    at: str  # ISO 8601, UTC
    position_id: int | None = None
    seq: int | None = None
    take_profit_price: float | None = None
    stop_loss_price: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def locate_position(session: Session, position_id: int) -> OpenPositionRef:
    """The open position `position_id` (UnknownPositionError: none; PositionControlError:
    closed already)."""
    found = session.execute(
        sa.select(Position, Bot.name, Bot.exchange, Order.client_order_id)
        .join(Bot, Position.bot_id == Bot.id)
        .join(Order, (Order.position_id == Position.id) & (Order.role == OrderRole.ENTRY))
        .where(Position.id == position_id)
    ).first()
    if found is None:
        raise UnknownPositionError(f"no position {position_id}: see `tradepipe positions list`")
    row, bot, exchange, entry_id = found
    if row.status is PositionStatus.CLOSED:
        reason = row.exit_reason.value if row.exit_reason else "?"
        raise PositionControlError(f"position {position_id} is closed already ({reason})")
    parsed = parse_client_order_id(entry_id)
    if parsed is None:
        raise PositionControlError(f"position {position_id} has no engine order id ({entry_id})")
    return OpenPositionRef(
        row.id, bot, parsed[1], row.symbol, exchange, row.side, row.status,
        row.entry_price, row.take_profit_price, row.stop_loss_price,
    )  # fmt: skip


def request_close(session: Session, position_id: int, *, by: str) -> OperatorRequest:
    """Ask the engine to leave position `position_id` at market (a pending entry is
    cancelled); its exit reason is `operator`."""
    found = locate_position(session, position_id)
    return _write(session, CLOSE, found.bot, by, position_id=found.id, seq=found.seq)


def request_move(
    session: Session,
    position_id: int,
    *,
    by: str,
    take_profit_price: float | None = None,
    stop_loss_price: float | None = None,
) -> OperatorRequest:
    """Ask the engine to move active position `position_id`'s barriers (None keeps one);
    refused (PositionControlError) when they sit on the wrong side of the live price."""
    found = locate_position(session, position_id)
    if take_profit_price is None and stop_loss_price is None:
        raise PositionControlError("give --take-profit-price, --stop-loss-price or both")
    if found.status is not PositionStatus.ACTIVE:
        raise PositionControlError(
            f"position {position_id} is {found.status.value}: only an active one has barriers"
        )
    for label, value in (("take-profit", take_profit_price), ("stop-loss", stop_loss_price)):
        if value is not None and not (value == value and 0 < value < float("inf")):
            raise PositionControlError(f"{label} price must be a positive number, got {value}")
    live = live_prices(session).get((found.exchange, found.symbol))
    take_profit = take_profit_price or found.take_profit_price
    stop_loss = stop_loss_price or found.stop_loss_price
    assert take_profit is not None and stop_loss is not None  # an active position has both
    try:
        check_barrier_prices(found.side, take_profit, stop_loss, live.price if live else None)
    except BarrierError as error:
        raise PositionControlError(f"position {position_id}: {error}") from None
    return _write(
        session, MOVE, found.bot, by, position_id=found.id, seq=found.seq,
        take_profit_price=take_profit_price, stop_loss_price=stop_loss_price,
    )  # fmt: skip


def request_bot_move(session: Session, bot: str, *, by: str) -> OperatorRequest:
    """Ask the engine to give bot `bot`'s open positions the take-profit, stop-loss and
    timeout of its configuration, from their entry price and open time."""
    bot_row(session, bot)  # UnknownBotError (a BotError) when there is none
    return _write(session, MOVE_BOT, bot, by)


def pending_requests(session: Session) -> list[OperatorRequest]:
    """Requests no engine has answered yet, oldest first."""
    rows = session.scalars(
        sa.select(EngineControl)
        .where(EngineControl.name.startswith(REQUEST_PREFIX))
        .order_by(EngineControl.updated_at, EngineControl.name)
    )
    found = []
    for row in rows:
        value = dict(row.value or {})
        if value.pop("state", None) != "requested":
            continue
        try:
            found.append(OperatorRequest(**value))
        except TypeError:
            continue  # not a request this code wrote
    return found


def _write(session: Session, action: str, bot: str, by: str, **fields: Any) -> OperatorRequest:
    now = datetime.now(UTC)
    name = f"{REQUEST_PREFIX}{uuid.uuid4().hex[:16]}"
    request = OperatorRequest(name, action, bot, by, now.isoformat(), **fields)
    value = {**request.to_dict(), "state": "requested"}
    session.add(EngineControl(name=name, value=value, updated_by=by, updated_at=now))
    session.flush()
    return request
