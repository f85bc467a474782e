"""Reads the dashboard needs beyond `tradepipe.db.queries`: the equity curve, trades closed
in a window, open positions marked to the last known price, bot and engine health, and
which engine leases which bot (PostgreSQL).

Same contract as the query layer: every function takes an open Session and returns frozen
views; times are timezone-aware and ranges half-open (`since` inclusive, `until` exclusive).

An open position is marked at the live price its engine publishes in its heartbeat
(`tradepipe.db.live_prices`); when no fresh engine publishes one (the engine is down), at
the last fill the database knows on the same exchange and symbol (any bot's), and the mark
says so (`price_source`, `note`). Each mark carries its price's time so a reader can see how
old it is. Without either price, or before the entry fills, the unrealised PnL is None and
`note` says why, rather than a guessed number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tradepipe.db.leases import LeaseView, list_leases
from tradepipe.db.live_prices import LivePrice, live_prices
from tradepipe.db.models import Bot, Fill, Order, Position, Strategy
from tradepipe.db.queries import DEFAULT_LIMIT, DEFAULT_STALE_AFTER, _aware, _limit, heartbeats
from tradepipe.db.to_views import bot_view, position_view, strategy_view
from tradepipe.db.views import BotView, HeartbeatView, PositionView, StrategyView
from tradepipe.enums import BotStatus, ComponentKind, PositionStatus, Side

__all__ = [
    "BotHealth",
    "EngineHealth",
    "EquityPoint",
    "LeaseOverview",
    "OpenPositionMark",
    "bot_health",
    "bot_leases",
    "closed_positions",
    "engine_health",
    "equity_curve",
    "open_position_marks",
]

_OPEN = (PositionStatus.PENDING, PositionStatus.ACTIVE)


# ---------------------------------------------------------------- results over time


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The cumulative realised result after one closed position (net of fees)."""

    closed_at: datetime
    bot_name: str
    position_id: int
    net_pnl: float  # this position's realised PnL after fees
    bot_equity: float  # the bot's cumulative net PnL, this position included
    total_equity: float  # every bot in the query's scope, this position included


def equity_curve(
    session: Session,
    *,
    bot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[EquityPoint, ...]:
    """One point per position closed in [since, until), oldest first; sums start at zero at
    `since`. Closed entries that never filled count too (their PnL is zero, fees may not be)."""
    query = (
        sa.select(Position.id, Position.closed_at, Position.realised_pnl, Position.fees, Bot.name)
        .join(Bot, Position.bot_id == Bot.id)
        .where(Position.status == PositionStatus.CLOSED, Position.closed_at.is_not(None))
    )
    if bot is not None:
        query = query.where(Bot.name == bot)
    if since is not None:
        query = query.where(Position.closed_at >= _aware(since, "since"))
    if until is not None:
        query = query.where(Position.closed_at < _aware(until, "until"))
    query = query.order_by(Position.closed_at, Position.id)
    per_bot: dict[str, float] = {}
    total = 0.0
    points = []
    for position_id, closed_at, realised, fees, bot_name in session.execute(query):
        if closed_at is None:  # pragma: no cover - excluded by the query; narrows the type
            continue
        net = realised - fees
        per_bot[bot_name] = per_bot.get(bot_name, 0.0) + net
        total += net
        points.append(EquityPoint(closed_at, bot_name, position_id, net, per_bot[bot_name], total))
    return tuple(points)


def closed_positions(
    session: Session,
    *,
    bot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[PositionView, ...]:
    """Positions closed in [since, until), most recently closed first (`list_positions`
    bounds created_at instead, which misses a trade opened yesterday and closed today)."""
    query = (
        sa.select(Position, Bot.name)
        .join(Bot, Position.bot_id == Bot.id)
        .where(Position.status == PositionStatus.CLOSED, Position.closed_at.is_not(None))
    )
    if bot is not None:
        query = query.where(Bot.name == bot)
    if since is not None:
        query = query.where(Position.closed_at >= _aware(since, "since"))
    if until is not None:
        query = query.where(Position.closed_at < _aware(until, "until"))
    query = query.order_by(Position.closed_at.desc(), Position.id.desc()).limit(_limit(limit))
    return tuple(position_view(row, bot_name) for row, bot_name in session.execute(query))


# ---------------------------------------------------------------- open positions


@dataclass(frozen=True, slots=True)
class OpenPositionMark:
    """A pending or active position marked to the last known price."""

    position: PositionView
    exchange: str
    mark_price: float | None
    marked_at: datetime | None  # when that price traded
    unrealised_pnl: float | None  # before fees; None when it cannot be known (see note)
    note: str | None  # why unrealised_pnl is None, or that the engine's price is missing
    price_source: str | None = None  # "engine" (live), "last fill" (fallback), None: none


FALLBACK_NOTE = "no engine publishes a live price (down?): marked at the last fill"


def open_position_marks(
    session: Session,
    *,
    bot: str | None = None,
    prices: dict[tuple[str, str], LivePrice] | None = None,
) -> tuple[OpenPositionMark, ...]:
    """Every pending and active position (newest first) with its unrealised PnL at the live
    price of its exchange and symbol (`prices`, default: what fresh engines publish), else
    at the last fill price known there."""
    query = (
        sa.select(Position, Bot.name, Bot.exchange)
        .join(Bot, Position.bot_id == Bot.id)
        .where(Position.status.in_(_OPEN))
        .order_by(Position.created_at.desc(), Position.id.desc())
    )
    if bot is not None:
        query = query.where(Bot.name == bot)
    rows = [(position_view(row, name), exchange) for row, name, exchange in session.execute(query)]
    live = live_prices(session) if prices is None else prices
    last_prices = {
        key: _live(live[key]) if key in live else _last_fill(session, *key)
        for key in {(ex, pos.symbol) for pos, ex in rows}
    }
    return tuple(
        _mark(position, exchange, last_prices[exchange, position.symbol])
        for position, exchange in rows
    )


def _live(price: LivePrice) -> tuple[float, datetime, str]:
    return price.price, price.traded_at, "engine"


def _last_fill(session: Session, exchange: str, symbol: str) -> tuple[float, datetime, str] | None:
    found = session.execute(
        sa.select(Fill.price, Fill.filled_at)
        .join(Order, Fill.order_id == Order.id)
        .join(Bot, Order.bot_id == Bot.id)
        .where(Order.symbol == symbol, Bot.exchange == exchange)
        .order_by(Fill.filled_at.desc(), Fill.id.desc())
        .limit(1)
    ).one_or_none()
    return None if found is None else (found[0], found[1], "last fill")


def _mark(
    position: PositionView, exchange: str, last: tuple[float, datetime, str] | None
) -> OpenPositionMark:
    price, at, source = last if last is not None else (None, None, None)
    if position.status is PositionStatus.PENDING:
        return OpenPositionMark(position, exchange, price, at, None, "entry not filled yet", source)
    if position.entry_price is None:
        note = "no entry price recorded"
        return OpenPositionMark(position, exchange, price, at, None, note, source)
    if price is None:
        note = f"no live price and no fill on {exchange} {position.symbol} yet to mark it with"
        return OpenPositionMark(position, exchange, None, None, None, note)
    direction = 1.0 if position.side is Side.BUY else -1.0
    pnl = direction * (price - position.entry_price) * position.quantity
    fallback = FALLBACK_NOTE if source == "last fill" else None
    return OpenPositionMark(position, exchange, price, at, pnl, fallback, source)


# ---------------------------------------------------------------- health


@dataclass(frozen=True, slots=True)
class BotHealth:
    """A bot with its last heartbeat, its strategy's registry entry and its latest order."""

    bot: BotView
    heartbeat: HeartbeatView | None  # None: it never beat
    strategy: StrategyView | None  # None: its strategy is not in the registry
    open_positions: int
    last_order_at: datetime | None
    last_order_strategy_hash: str | None
    last_order_model_version: str | None

    @property
    def is_error(self) -> bool:
        return self.bot.status is BotStatus.ERROR

    @property
    def is_stale(self) -> bool:
        """Marked stale, or meant to be running but not beating (or never beaten)."""
        if self.bot.status is BotStatus.STALE:
            return True
        running = self.bot.status is BotStatus.RUNNING
        return running and (self.heartbeat is None or self.heartbeat.is_stale)

    @property
    def needs_attention(self) -> bool:
        return self.is_error or self.is_stale

    @property
    def uptime_seconds(self) -> float | None:
        """From the start of the run to its last beat; None if it never beat."""
        if self.heartbeat is None:
            return None
        return (self.heartbeat.beat_at - self.heartbeat.started_at).total_seconds()

    @property
    def strategy_hash(self) -> str | None:
        """The strategy version it runs: what its engine reports (`strategy_hash` in the
        heartbeat detail), else what its latest order recorded."""
        return _reported(self.heartbeat, "strategy_hash") or self.last_order_strategy_hash

    @property
    def model_version(self) -> str | None:
        """The model version it runs: reported `model_version`, else its latest order's."""
        return _reported(self.heartbeat, "model_version") or self.last_order_model_version


def _reported(heartbeat: HeartbeatView | None, key: str) -> str | None:
    value = None if heartbeat is None else heartbeat.detail.get(key)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class EngineHealth:
    heartbeat: HeartbeatView
    bots: tuple[str, ...]  # bots whose last beat came from this engine, by name

    @property
    def uptime_seconds(self) -> float:
        return (self.heartbeat.beat_at - self.heartbeat.started_at).total_seconds()


def bot_health(
    session: Session,
    *,
    now: datetime | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[BotHealth, ...]:
    """Every bot, by name, with what the dashboard shows about its health; heartbeats are
    judged against `now` (default: the wall clock)."""
    beats = {
        beat.name: beat
        for beat in heartbeats(session, now=now, stale_after=stale_after)
        if beat.kind is ComponentKind.BOT
    }
    strategies = {row.name: strategy_view(row) for row in session.scalars(sa.select(Strategy))}
    open_counts: dict[int, int] = {
        bot_id: count
        for bot_id, count in session.execute(
            sa.select(Position.bot_id, sa.func.count())
            .where(Position.status.in_(_OPEN))
            .group_by(Position.bot_id)
        )
    }
    latest = _latest_orders(session)
    health = []
    for row in session.scalars(sa.select(Bot).order_by(Bot.name)):
        order_at, strategy_hash, model_version = latest.get(row.id, (None, None, None))
        health.append(
            BotHealth(
                bot=bot_view(row),
                heartbeat=beats.get(row.name),
                strategy=strategies.get(row.strategy_name),
                open_positions=open_counts.get(row.id, 0),
                last_order_at=order_at,
                last_order_strategy_hash=strategy_hash,
                last_order_model_version=model_version,
            )
        )
    return tuple(health)


def _latest_orders(session: Session) -> dict[int, tuple[datetime, str, str | None]]:
    """Each bot's newest order: when, and the strategy hash and model version it recorded."""
    rank = sa.func.row_number().over(
        partition_by=Order.bot_id, order_by=(Order.created_at.desc(), Order.id.desc())
    )
    ranked = sa.select(Order.id, rank.label("rank")).subquery()
    newest = sa.select(ranked.c.id).where(ranked.c.rank == 1)
    query = sa.select(
        Order.bot_id, Order.created_at, Order.strategy_hash, Order.model_version
    ).where(Order.id.in_(newest))
    return {
        bot_id: (created, strategy, model)
        for bot_id, created, strategy, model in session.execute(query)
    }


def engine_health(
    session: Session,
    *,
    now: datetime | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[EngineHealth, ...]:
    """Every engine that ever beat, by name, with the bots that last beat from it."""
    beats = heartbeats(session, now=now, stale_after=stale_after)
    owned: dict[str, list[str]] = {}
    for beat in beats:
        if beat.kind is ComponentKind.BOT:
            owned.setdefault(beat.engine_id, []).append(beat.name)
    return tuple(
        EngineHealth(beat, tuple(sorted(owned.get(beat.engine_id, ()))))
        for beat in sorted(beats, key=lambda beat: beat.name)
        if beat.kind is ComponentKind.ENGINE
    )


@dataclass(frozen=True, slots=True)
class LeaseOverview:
    """Who runs which bot: on PostgreSQL the lease of every bot (owner engine, fencing epoch,
    ages on the database's clock); SQLite has none (`shared` False: one engine owns all)."""

    shared: bool
    leases: tuple[LeaseView, ...]

    def live_by_owner(self) -> dict[str, int]:
        """Engine id -> how many bots it holds a live (unexpired) lease on."""
        counts: dict[str, int] = {}
        for lease in self.leases:
            if not lease.expired:
                counts[lease.owner] = counts.get(lease.owner, 0) + 1
        return dict(sorted(counts.items()))


def bot_leases(session: Session) -> LeaseOverview:
    """Every bot lease by owner then bot (the view of `tradepipe engines list`)."""
    if session.get_bind().dialect.name != "postgresql":
        return LeaseOverview(shared=False, leases=())
    return LeaseOverview(shared=True, leases=tuple(list_leases(session)))
