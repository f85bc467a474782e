"""What the engine writes to the trading database, and the synchronous code that writes it.

The engine never writes from the event loop: it hands `Write`s to the recorder
(`live.engine.recorder`), which applies them here, in a worker thread, many per transaction.

A `BotBatch` is everything one step changed for one bot: the state machine's events, the
final snapshot of every position they touched, the fills with their venue ids, and the
serialized book. Applying it is idempotent: positions and orders are upserted from their
snapshots (found by the deterministic client order id), fills are unique per (order, venue
fill id), daily stats move only when a position row turns closed in this very transaction.
So a batch applied twice (a commit whose answer was lost, then a retry) changes nothing the
second time, and the book in `bot_states` always matches the rows beside it.

Orders: `orders.quantity` is NOT NULL, and a market entry sized in quote currency has no
base quantity until it fills. The row holds the estimate `capital / price at the decision`
until then, and the filled quantity after; the exact quote size stays in the book.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from live.engine.events import EngineEvent
from tradepipe.db import (
    Bot,
    BotState,
    BotStatus,
    ComponentKind,
    DailyBotStats,
    EngineControl,
    Event,
    Fill,
    Heartbeat,
    Order,
    record_strategy_source,
)
from tradepipe.db import Position as PositionRow
from tradepipe.db.leases import leases_held
from tradepipe.db.shadow import ShadowRecord, record_shadow
from tradepipe.enums import OrderRole, PositionStatus
from tradepipe.orders import (
    Event as BookEvent,
)
from tradepipe.orders import (
    OrderRejected,
    OrderState,
    Position,
    client_order_id,
    event_to_dict,
)

__all__ = [
    "BotBatch",
    "BotStatusWrite",
    "BotStrategyWrite",
    "BotWrite",
    "ControlWrite",
    "EventWrite",
    "FillRecord",
    "HeartbeatWrite",
    "ShadowWrite",
    "StrategySourceWrite",
    "Write",
    "apply_writes",
    "from_ms",
    "write_heartbeats",
]

# State machine events worth a line in the human-readable events table; the rest (order
# placed, accepted, filled...) are in the orders and fills tables already.
LOGGED_KINDS = frozenset(
    {"position_opened", "position_closed", "order_rejected", "anomaly", "entry_refused"}
)


def from_ms(time_ms: int | None) -> datetime | None:
    return None if time_ms is None else datetime.fromtimestamp(time_ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class FillRecord:
    client_order_id: str
    fill_id: str
    price: float
    quantity: float
    fee: float
    time_ms: int


@dataclass(frozen=True, slots=True)
class BotBatch:
    bot_id: int
    bot: str
    events: tuple[BookEvent, ...] = ()
    positions: tuple[Position, ...] = ()
    fills: tuple[FillRecord, ...] = ()
    book: dict[str, Any] | None = None
    strategy_state: dict[str, Any] | None = None  # None: leave the saved state as it is
    strategy_name: str | None = None
    strategy_hash: str | None = None
    reference_price: float | None = None  # last price, for a market entry's quantity
    exchange_ids: dict[str, str] = field(default_factory=dict)
    epoch: int | None = None  # the lease epoch it was made under (PostgreSQL: fencing)


@dataclass(frozen=True, slots=True)
class BotStatusWrite:
    bot_id: int
    status: BotStatus
    last_error: str | None
    epoch: int | None = None
    disable: bool = False  # also disable the bot (a risk limit that waits for an operator)


@dataclass(frozen=True, slots=True)
class BotStrategyWrite:
    """The engine moved a bot to another strategy (its own was deleted)."""

    bot_id: int
    strategy: str
    epoch: int | None = None


@dataclass(frozen=True, slots=True)
class EventWrite:
    event: EngineEvent


@dataclass(frozen=True, slots=True)
class ControlWrite:
    name: str
    value: dict[str, Any]
    updated_by: str


@dataclass(frozen=True, slots=True)
class HeartbeatWrite:
    kind: ComponentKind
    name: str
    engine_id: str
    status: str
    detail: dict[str, Any]
    version: str | None
    started_at: datetime
    beat_at: datetime


@dataclass(frozen=True, slots=True)
class StrategySourceWrite:
    """A strategy version the engine loaded: its source, kept by content hash."""

    name: str
    content_hash: str
    source: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ShadowWrite:
    """A shadow run's change (live/engine/shadow.py): its own tables, never a broker's."""

    record: ShadowRecord


Write = (
    BotBatch
    | BotStatusWrite
    | BotStrategyWrite
    | EventWrite
    | ControlWrite
    | StrategySourceWrite
    | ShadowWrite
)
BotWrite = BotBatch | BotStatusWrite | BotStrategyWrite


def apply_writes(session: Session, writes: Iterable[Write], owner: str | None = None) -> list[int]:
    """Apply `writes` in order; with `owner` (an engine sharing the bots through leases) a
    bot's writes are applied only while `owner` holds the bot's lease at the epoch the
    write carries, checked in this very transaction. The positions of refused writes."""
    refused: list[int] = []
    writes = list(writes)
    held: set[tuple[int, int | None]] = set()
    if owner is not None:  # every lease row this transaction relies on, locked at once
        held = leases_held(
            session, owner, [(w.bot_id, w.epoch) for w in writes if isinstance(w, BotWrite)]
        )
    for index, write in enumerate(writes):
        if (
            owner is not None
            and isinstance(write, BotWrite)
            and (write.bot_id, write.epoch) not in held
        ):
            refused.append(index)
            continue
        if isinstance(write, BotBatch):
            _apply_batch(session, write)
        elif isinstance(write, BotStatusWrite):
            values: dict[str, Any] = {"status": write.status, "last_error": write.last_error}
            if write.disable:
                values["enabled"] = False
            session.execute(sa.update(Bot).where(Bot.id == write.bot_id).values(**values))
        elif isinstance(write, BotStrategyWrite):
            session.execute(
                sa.update(Bot).where(Bot.id == write.bot_id).values(strategy_name=write.strategy)
            )
        elif isinstance(write, EventWrite):
            event = write.event
            session.add(
                Event(
                    kind=event.kind,
                    bot_name=event.bot,
                    payload=event.payload(),
                    created_at=event.at,
                )
            )
        elif isinstance(write, StrategySourceWrite):
            record_strategy_source(session, write.name, write.content_hash, write.source)
        elif isinstance(write, ShadowWrite):
            record_shadow(session, write.record)
        else:
            row = session.get(EngineControl, write.name)
            if row is None:
                row = EngineControl(name=write.name)
                session.add(row)
            row.value = write.value
            row.updated_by = write.updated_by
        session.flush()
    return refused


def write_heartbeats(session: Session, beats: Sequence[HeartbeatWrite]) -> None:
    for beat in beats:
        row = session.get(Heartbeat, (beat.kind, beat.name))
        if row is None:
            row = Heartbeat(kind=beat.kind, name=beat.name)
            session.add(row)
        row.engine_id = beat.engine_id
        row.status = beat.status
        row.detail = beat.detail
        row.version = beat.version
        row.started_at = beat.started_at
        row.beat_at = beat.beat_at
    session.flush()


# -- one bot's batch ---------------------------------------------------------------------


def _apply_batch(session: Session, batch: BotBatch) -> None:
    errors = {
        e.order.client_order_id: e.message for e in batch.events if isinstance(e, OrderRejected)
    }
    for position in batch.positions:
        row = _position_row(session, batch, position)
        closing = row.status is not PositionStatus.CLOSED and not position.is_open
        _copy_position(row, position)
        for order in (position.entry, *position.exits):
            _upsert_order(session, batch, row, position, order, errors)
        if closing and position.quantity > 0:
            _count_close(session, batch.bot_id, position)
    session.flush()
    for fill in batch.fills:
        _add_fill(session, fill)
    for event in batch.events:
        if event.kind in LOGGED_KINDS:
            session.add(Event(kind=event.kind, bot_name=batch.bot, payload=event_to_dict(event)))
    if batch.book is not None:
        _save_state(session, batch)


def _position_row(session: Session, batch: BotBatch, position: Position) -> PositionRow:
    """The row of (bot, seq), found through its entry order's deterministic id."""
    entry_id = client_order_id(batch.bot, position.seq, OrderRole.ENTRY)
    order = session.scalars(sa.select(Order).where(Order.client_order_id == entry_id)).first()
    if order is not None and order.position is not None:
        return order.position
    row = PositionRow(
        bot_id=batch.bot_id,
        symbol=position.symbol,
        side=position.side,
        status=PositionStatus.PENDING,
        quantity=0.0,
        strategy_hash=position.request.strategy_hash,
        model_version=position.request.model_version,
    )
    session.add(row)
    session.flush()
    return row


def _copy_position(row: PositionRow, position: Position) -> None:
    row.status = position.status
    row.quantity = position.quantity
    row.entry_price = position.entry_price
    row.exit_price = position.exit_price
    row.take_profit_price = position.take_profit_price
    row.stop_loss_price = position.stop_loss_price
    row.opened_at = from_ms(position.opened_at_ms)
    row.closed_at = from_ms(position.closed_at_ms)
    row.expires_at = from_ms(position.expires_at_ms)
    row.exit_reason = position.exit_reason
    row.fees = position.fees
    row.realised_pnl = position.gross_pnl
    row.strategy_hash = position.request.strategy_hash
    row.model_version = position.request.model_version


def _upsert_order(
    session: Session,
    batch: BotBatch,
    position_row: PositionRow,
    position: Position,
    order: OrderState,
    errors: dict[str, str],
) -> None:
    row = session.scalars(
        sa.select(Order).where(Order.client_order_id == order.client_order_id)
    ).first()
    if row is None:
        row = Order(
            client_order_id=order.client_order_id,
            bot_id=batch.bot_id,
            position_id=position_row.id,
            symbol=position.symbol,
            side=order.side,
            order_type=order.order_type,
            role=order.role,
            strategy_hash=position.request.strategy_hash,
            model_version=position.request.model_version,
            reason=order.reason,
        )
        session.add(row)
    row.price = order.price
    row.quantity = _order_quantity(order, row.quantity, batch.reference_price)
    row.filled_quantity = order.filled_quantity
    row.status = order.status
    if order.client_order_id in batch.exchange_ids:
        row.exchange_order_id = batch.exchange_ids[order.client_order_id]
    if order.client_order_id in errors:
        row.error = errors[order.client_order_id]


def _order_quantity(order: OrderState, recorded: float | None, price: float | None) -> float:
    if order.quantity is not None:
        return order.quantity
    if order.filled_quantity > 0:
        return order.filled_quantity
    if recorded:
        return recorded
    if order.quote_quantity is not None and price:
        return order.quote_quantity / price
    raise ValueError(f"order {order.client_order_id}: no quantity and no price to estimate one")


def _add_fill(session: Session, fill: FillRecord) -> None:
    order_id = session.scalar(
        sa.select(Order.id).where(Order.client_order_id == fill.client_order_id)
    )
    if order_id is None:
        raise ValueError(f"fill {fill.fill_id} of unknown order {fill.client_order_id}")
    exists = session.scalar(
        sa.select(Fill.id).where(Fill.order_id == order_id, Fill.exchange_fill_id == fill.fill_id)
    )
    if exists is None:
        session.add(
            Fill(
                order_id=order_id,
                exchange_fill_id=fill.fill_id,
                price=fill.price,
                quantity=fill.quantity,
                fee=fill.fee,
                filled_at=from_ms(fill.time_ms),
            )
        )


def _count_close(session: Session, bot_id: int, position: Position) -> None:
    closed = from_ms(position.closed_at_ms)
    assert closed is not None
    key = (bot_id, closed.date())
    stats = session.get(DailyBotStats, key)
    if stats is None:
        stats = DailyBotStats(
            bot_id=bot_id,
            day=closed.date(),
            trades=0,
            wins=0,
            losses=0,
            gross_pnl=0.0,
            fees=0.0,
            net_pnl=0.0,
            volume=0.0,
        )
        session.add(stats)
    net = position.net_pnl
    stats.trades += 1
    stats.wins += 1 if net > 0 else 0
    stats.losses += 1 if net < 0 else 0
    stats.gross_pnl += position.gross_pnl
    stats.fees += position.fees
    stats.net_pnl += net
    entry_notional = (position.entry_price or 0.0) * position.quantity
    exit_notional = (position.exit_price or 0.0) * position.exit_quantity
    stats.volume += entry_notional + exit_notional


def _save_state(session: Session, batch: BotBatch) -> None:
    row = session.get(BotState, batch.bot_id)
    if row is None:
        row = BotState(bot_id=batch.bot_id, strategy_state={})
        session.add(row)
    assert batch.book is not None
    row.book = batch.book
    if batch.strategy_state is not None:
        row.strategy_state = batch.strategy_state
    row.strategy_name = batch.strategy_name
    row.strategy_hash = batch.strategy_hash
