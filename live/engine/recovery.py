"""Start and crash recovery are one path: read what the database says, then agree with the
broker.

1. `read_snapshot`: every bot row, the kill switch, and (`read_saved`) each bot's saved
   book and strategy state. A bot's book is the `PositionBook` saved with its last write,
   so every open position comes back with its take-profit, stop-loss and deadline exactly
   as persisted: a holding timeout still counts from the persisted open time.
2. `restore_book`: the saved book, or a new one numbered after the bot's last recorded
   entry (so a client order id is never reused, even if the state row was lost).
3. `reconcile_orders`: every order a book holds as working but the venue does not is sent
   (again) under its deterministic id; cancels that were asked for are asked again; an
   order the venue holds that no book knows is cancelled and reported. For the paper
   broker, whose memory died with the process, this re-registers every working order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from live.brokers import Broker, BrokerOrder
from live.engine.bot import BotRow
from live.engine.outbox import BrokerCommand, Outbox
from live.engine.status import KillSwitchState
from tradepipe.botconfig import BotConfigError
from tradepipe.db import KILL_SWITCH, Bot, BotState, EngineControl, Order
from tradepipe.enums import OrderRole
from tradepipe.orders import FeeSchedule, PositionBook, StateError, parse_client_order_id

__all__ = [
    "BotsSnapshot",
    "InvalidBot",
    "ReconcileReport",
    "SavedState",
    "read_saved",
    "read_snapshot",
    "reconcile_orders",
    "restore_book",
]


@dataclass(frozen=True, slots=True)
class InvalidBot:
    id: int
    name: str
    message: str


@dataclass(frozen=True, slots=True)
class BotsSnapshot:
    bots: tuple[BotRow, ...]
    invalid: tuple[InvalidBot, ...]
    kill_switch: KillSwitchState


@dataclass(frozen=True, slots=True)
class SavedState:
    book: dict[str, Any] | None
    strategy_state: dict[str, Any]
    strategy_name: str | None
    last_seq: int  # the highest position number of the bot's recorded entries (0: none)

    @property
    def has_open_positions(self) -> bool:
        return bool(self.book and self.book.get("positions"))


def read_snapshot(session: Session) -> BotsSnapshot:
    bots, invalid = [], []
    for row in session.scalars(sa.select(Bot).order_by(Bot.id)):
        try:
            config = row.bot_config
        except BotConfigError as error:
            invalid.append(InvalidBot(row.id, row.name, str(error)))
            continue
        bots.append(
            BotRow(
                row.id,
                row.name,
                row.strategy_name,
                row.symbol,
                row.timeframe,
                config,
                bool(row.enabled),
                row.mode,
            )
        )
    control = session.get(EngineControl, KILL_SWITCH)
    value = control.value if control is not None else {}
    kill = KillSwitchState(
        bool(value.get("engaged")),
        value.get("reason"),
        control.updated_at if control is not None and value.get("engaged") else None,
    )
    return BotsSnapshot(tuple(bots), tuple(invalid), kill)


def read_saved(session: Session, bot_ids: Iterable[int]) -> dict[int, SavedState]:
    saved: dict[int, SavedState] = {}
    for bot_id in bot_ids:
        state = session.get(BotState, bot_id)
        latest_entry = session.scalar(
            sa.select(Order.client_order_id)
            .where(Order.bot_id == bot_id, Order.role == OrderRole.ENTRY)
            .order_by(Order.id.desc())
            .limit(1)
        )
        parsed = parse_client_order_id(latest_entry) if latest_entry else None
        saved[bot_id] = SavedState(
            book=state.book if state is not None else None,
            strategy_state=dict(state.strategy_state or {}) if state is not None else {},
            strategy_name=state.strategy_name if state is not None else None,
            last_seq=parsed[1] if parsed else 0,
        )
    return saved


def restore_book(row: BotRow, saved: SavedState | None, fees: FeeSchedule) -> PositionBook:
    """The bot's book as saved (raises `StateError` if unreadable), or a fresh one.

    The config's position limit and the engine's fees apply from now on; the positions'
    barriers are their own and do not change."""
    if saved is not None and saved.book is not None:
        book = PositionBook.from_dict(saved.book)
        if book.bot != row.name:
            raise StateError(f"saved book belongs to bot {book.bot!r}, not {row.name!r}")
        book.max_open_positions = row.config.max_open_positions
        book.fees = fees
    else:
        book = PositionBook.for_bot(row.name, row.symbol, row.config, fees, simulated=False)
    if saved is not None:
        book.next_seq = max(book.next_seq, saved.last_seq + 1)
    return book


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    resumed: tuple[dict[str, Any], ...]
    resent: tuple[str, ...]
    cancels: tuple[str, ...]
    orphans: tuple[str, ...]
    venue_orders: int = 0
    notes: tuple[str, ...] = field(default=())


async def reconcile_orders(
    books: Iterable[PositionBook], broker: Broker, outbox: Outbox
) -> ReconcileReport:
    venue = {order.client_order_id: order for order in await broker.open_orders()}
    resumed: list[dict[str, Any]] = []
    resent: list[str] = []
    cancels: list[str] = []
    known: set[str] = set()
    for book in books:
        for position in book.positions:
            resumed.append(
                {
                    "bot": book.bot,
                    "seq": position.seq,
                    "status": position.status.value,
                    "expires_at_ms": position.expires_at_ms,
                }
            )
            for order in (position.entry, *position.exits):
                if not order.is_working:
                    continue
                order_id = order.client_order_id
                known.add(order_id)
                if order_id not in venue:
                    entry = order.role is OrderRole.ENTRY
                    command = BrokerOrder.from_state(book.symbol, order)
                    outbox.push(BrokerCommand(book.bot, book.symbol, order_id, command, 0, entry))
                    resent.append(order_id)
                if order.cancel_requested:
                    outbox.push(BrokerCommand(book.bot, book.symbol, order_id, None))
                    cancels.append(order_id)
    orphans = sorted(set(venue) - known)
    for order_id in orphans:
        parsed = parse_client_order_id(order_id)
        owner = parsed[0] if parsed else "unknown"
        outbox.push(BrokerCommand(owner, venue[order_id].symbol, order_id, None))
    return ReconcileReport(
        tuple(resumed), tuple(resent), tuple(cancels), tuple(orphans), len(venue)
    )
