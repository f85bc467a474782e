"""Start and crash recovery are one path: read what the database says, then agree with the
broker.

1. `read_snapshot`: every bot row, the kill switch, and (`read_saved`) each bot's saved
   book and strategy state. A bot's book is the `PositionBook` saved with its last write,
   so every open position comes back with its take-profit, stop-loss and deadline exactly
   as persisted: a holding timeout still counts from the persisted open time.
2. `restore_book`: the saved book, or a new one numbered after the bot's last recorded
   entry (so a client order id is never reused, even if the state row was lost).
3. `reconcile_orders`: every order a book holds as working but the venue does not is sent
   (again) under its deterministic id (a real venue's broker looks the id up first, so an
   order that filled meanwhile is found, not doubled); cancels that were asked for are
   asked again; an order of one of this engine's bots that the venue holds and no book
   knows is cancelled and reported. For the paper broker, whose memory died with the
   process, this re-registers every working order. Open orders and recent fills that the
   database does not know at all (another engine's? placed by hand?) are reported, never
   adopted or cancelled. The engine runs it again every `reconcile_seconds`, reporting only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from live.brokers import Broker, BrokerOrder, VenueFill
from live.engine.bot import BotRow
from live.engine.outbox import BrokerCommand, Outbox
from live.engine.status import KillSwitchState
from tradepipe.botconfig import BotConfigError, parse_bot_config
from tradepipe.bots import BotError, check_exchange, check_symbol, check_timeframe
from tradepipe.db import KILL_SWITCH, Bot, BotState, EngineControl, Fill, Order
from tradepipe.enums import BotMode, OrderRole
from tradepipe.orders import (
    FeeSchedule,
    OrderState,
    Position,
    PositionBook,
    StateError,
    parse_client_order_id,
    venue_stop_order_id,
)

__all__ = [
    "BotsSnapshot",
    "InvalidBot",
    "KnownOrders",
    "ReconcileReport",
    "SavedState",
    "read_known",
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
    """Every bot row, checked as `tradepipe bots add` checks it: the table may have been
    edited by other paths, so a row that does not validate (config, exchange, symbol,
    timeframe, mode, even unreadable JSON) becomes an `InvalidBot` (in error, naming the
    problem) and never stops the others or the engine."""
    bots, invalid = [], []
    columns = (
        Bot.id, Bot.name, Bot.strategy_name, Bot.symbol, Bot.exchange, Bot.timeframe,
        # raw values: a bad mode or unreadable JSON must fail its row, not the whole query
        sa.type_coerce(Bot.mode, sa.String), sa.type_coerce(Bot.config, sa.Text), Bot.enabled,
    )  # fmt: skip
    for values in session.execute(sa.select(*columns).order_by(Bot.id)):
        try:
            bots.append(_bot_row(*values))
        except BotConfigError as error:  # its message names the bot already
            invalid.append(InvalidBot(values[0], values[1], str(error)))
        except (BotError, ValueError, TypeError) as error:
            invalid.append(InvalidBot(values[0], values[1], f"invalid bot {values[1]!r}: {error}"))
    control = session.get(EngineControl, KILL_SWITCH)
    value = control.value if control is not None else {}
    kill = KillSwitchState(
        bool(value.get("engaged")),
        value.get("reason"),
        control.updated_at if control is not None and value.get("engaged") else None,
        bool(value.get("engaged")) and bool(value.get("flatten")),
    )
    return BotsSnapshot(tuple(bots), tuple(invalid), kill)


def _bot_row(
    bot_id: int,
    name: str,
    strategy: str,
    symbol: str,
    exchange: str,
    timeframe: str,
    mode: str,
    config: Any,
    enabled: bool,
) -> BotRow:
    if isinstance(config, str | bytes):  # drivers hand JSON back as text or already parsed
        try:
            config = json.loads(config)
        except ValueError as error:
            raise BotConfigError(f"invalid bot {name!r}: config is not JSON ({error})") from None
    try:
        checked_mode = BotMode(mode)
    except ValueError:
        raise BotError(f"mode {mode!r}: choose paper, testnet or live") from None
    return BotRow(
        bot_id,
        name,
        strategy,
        check_symbol(symbol),
        check_timeframe(timeframe),
        parse_bot_config(config, bot=name),
        bool(enabled),
        checked_mode,
        check_exchange(exchange),
    )


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
class KnownOrders:
    """What the database knows of some client order ids: the ids, and their fill ids."""

    orders: frozenset[str]
    fills: frozenset[tuple[str, str]]


def read_known(session: Session, client_order_ids: Iterable[str]) -> KnownOrders:
    ids = sorted(set(client_order_ids))
    orders: set[str] = set()
    fills: set[tuple[str, str]] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        orders.update(
            session.scalars(
                sa.select(Order.client_order_id).where(Order.client_order_id.in_(chunk))
            )
        )
        rows = session.execute(
            sa.select(Order.client_order_id, Fill.exchange_fill_id)
            .join(Fill, Fill.order_id == Order.id)
            .where(Order.client_order_id.in_(chunk))
        )
        fills.update((row[0], row[1]) for row in rows)
    return KnownOrders(frozenset(orders), frozenset(fills))


KnownLookup = Callable[[set[str]], Awaitable[KnownOrders]]


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    resumed: tuple[dict[str, Any], ...]
    resent: tuple[str, ...]
    cancels: tuple[str, ...]
    orphans: tuple[str, ...]  # working at the venue, in no book, of a bot of this engine
    venue_orders: int = 0
    notes: tuple[str, ...] = field(default=())
    # working at the venue, unknown to the books and the database (reported, left alone)
    unknown_orders: tuple[str, ...] = ()
    # venue fills of orders the database does not know, or fill ids it never recorded
    # for orders no book is still working (what the broker's polling will not bring)
    unknown_fills: tuple[str, ...] = ()

    @property
    def discrepancies(self) -> int:
        return len(self.unknown_orders) + len(self.unknown_fills)


@dataclass(slots=True)
class _BooksPass:
    """What the books say, gathered in one pass over them (and, with `act`, sent again)."""

    resumed: list[dict[str, Any]] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    in_books: set[str] = field(default_factory=set)  # every order id a book holds
    working: set[str] = field(default_factory=set)  # the working ones, with their stop legs


async def reconcile_orders(
    books: Iterable[PositionBook],
    broker: Broker,
    outbox: Outbox,
    *,
    known: KnownLookup | None = None,
    fills_since_ms: int | None = None,
    act: bool = True,
) -> ReconcileReport:
    """Agree with the venue. With `act` (at start): working orders the venue lacks are sent
    again, cancels asked again, and orders of this engine's bots that no book knows are
    cancelled. Without (the periodic pass): nothing is sent, the broker's own polling keeps
    tracked orders in step. Either way, open orders and recent fills (`fills_since_ms`)
    that neither the books nor the database (`known`) know are reported in the result."""
    books = list(books)
    venue = {order.client_order_id: order for order in await broker.open_orders()}
    seen = _walk_books(books, venue, outbox, act=act)
    strangers = sorted(set(venue) - seen.working)
    fills = (
        await broker.recent_fills({book.symbol for book in books}, fills_since_ms)
        if fills_since_ms is not None
        else []
    )
    asked = set(strangers) | {f.client_order_id for f in fills if f.client_order_id}
    recorded = (
        await known(asked) if known is not None and asked else KnownOrders(frozenset(), frozenset())
    )
    ours = {book.bot for book in books}
    orphans, unknown_orders = _settle_strangers(strangers, venue, ours, recorded, outbox, act=act)
    return ReconcileReport(
        tuple(seen.resumed),
        tuple(seen.resent),
        tuple(seen.cancels),
        tuple(orphans),
        len(venue),
        unknown_orders=tuple(unknown_orders),
        unknown_fills=tuple(_unknown_fills(fills, seen, recorded)),
    )


def _walk_books(
    books: list[PositionBook], venue: dict[str, BrokerOrder], outbox: Outbox, *, act: bool
) -> _BooksPass:
    seen = _BooksPass()
    for book in books:
        for position in book.positions:
            seen.resumed.append(
                {
                    "bot": book.bot,
                    "seq": position.seq,
                    "status": position.status.value,
                    "expires_at_ms": position.expires_at_ms,
                }
            )
            for order in (position.entry, *position.exits):
                seen.in_books.add(order.client_order_id)
                if not order.is_working:
                    continue
                seen.working.add(order.client_order_id)
                if order.role is OrderRole.TAKE_PROFIT:  # its stop leg at the venue, if any
                    seen.working.add(venue_stop_order_id(order.client_order_id))
                if act:
                    _send_again(book, position, order, venue, outbox, seen)
    return seen


def _send_again(
    book: PositionBook,
    position: Position,
    order: OrderState,
    venue: dict[str, BrokerOrder],
    outbox: Outbox,
    seen: _BooksPass,
) -> None:
    """Sent again whether or not the venue holds it: a venue's broker looks the id up first
    and, if it is there, tracks it from now on (its fills come); only the ones the venue
    lacks count as resent. A cancel that was asked for is asked again."""
    order_id = order.client_order_id
    entry = order.role is OrderRole.ENTRY
    # a take-profit whose cancel was asked for needs no protection re-placed
    protect = None if order.cancel_requested else position
    command = BrokerOrder.from_state(book.symbol, order, protect)
    outbox.push(BrokerCommand(book.bot, book.symbol, order_id, command, 0, entry))
    if order_id not in venue:
        seen.resent.append(order_id)
    if order.cancel_requested:
        outbox.push(BrokerCommand(book.bot, book.symbol, order_id, None))
        seen.cancels.append(order_id)


def _settle_strangers(
    strangers: list[str],
    venue: dict[str, BrokerOrder],
    ours: set[str],
    recorded: KnownOrders,
    outbox: Outbox,
    *,
    act: bool,
) -> tuple[list[str], list[str]]:
    """The venue's working orders no book holds: (orphans of this engine's bots, cancelled
    with `act`; orders unknown to the database too, only reported)."""
    orphans: list[str] = []
    unknown_orders: list[str] = []
    for order_id in strangers:
        parsed = parse_client_order_id(order_id)
        if act and parsed is not None and parsed[0] in ours:
            outbox.push(BrokerCommand(parsed[0], venue[order_id].symbol, order_id, None))
            orphans.append(order_id)
        elif order_id not in recorded.orders:
            unknown_orders.append(order_id)  # someone else's (or lost) order: reported only
    return orphans, unknown_orders


def _unknown_fills(fills: list[VenueFill], seen: _BooksPass, recorded: KnownOrders) -> list[str]:
    """Fills of orders neither the books nor the database know, or of orders no book is
    still working whose fill the database never recorded."""
    unknown: list[str] = []
    for fill in fills:
        owner = fill.client_order_id
        where = f"{fill.symbol} fill {fill.fill_id} (exchange order {fill.exchange_order_id})"
        if owner is None or (owner not in seen.in_books and owner not in recorded.orders):
            unknown.append(f"{where} of unknown order {owner or '?'}")
        elif owner not in seen.working and (owner, fill.fill_id) not in recorded.fills:
            unknown.append(f"{where} of {owner} never recorded")
    return unknown
