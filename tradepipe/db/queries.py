"""The query layer: the one way the dashboard, the control API and the CLI read the trading
database. Every function takes an open Session and returns frozen views (`tradepipe.db.views`).

Filters accept enum members or their string values; an unknown value raises QueryError
naming it and the values allowed. Time ranges are half-open: `since` inclusive, `until`
exclusive, both timezone-aware. Listings come newest first unless stated otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from tradepipe.db.models import (
    Bot,
    DailyBotStats,
    Event,
    Fill,
    Heartbeat,
    ModelPromotion,
    Order,
    Position,
    Strategy,
)
from tradepipe.db.session import DatabaseError
from tradepipe.db.to_views import bot_view, fill_view, order_view, position_view, strategy_view
from tradepipe.db.views import (
    BotPnl,
    BotView,
    DailyStatsView,
    EventView,
    HeartbeatView,
    OrderView,
    PnlSummary,
    PositionDetail,
    PositionView,
    PromotionView,
    StrategyDetail,
    StrategyView,
)
from tradepipe.enums import OrderRole, OrderStatus, PositionStatus

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_STALE_AFTER",
    "QueryError",
    "daily_stats",
    "get_bot",
    "get_position",
    "get_strategy",
    "heartbeats",
    "list_bots",
    "list_model_promotions",
    "list_orders",
    "list_positions",
    "list_strategies",
    "pnl_summary",
    "recent_events",
]

DEFAULT_LIMIT = 100
# A component that has not beaten for this long is shown as stale (a few missed beats).
DEFAULT_STALE_AFTER = timedelta(seconds=60)
_OPEN_POSITION_STATUSES = (PositionStatus.PENDING, PositionStatus.ACTIVE)

E = TypeVar("E", bound=StrEnum)


class QueryError(DatabaseError, ValueError):
    """A bad filter given to a query: an unknown enum value, a naive time, a bad limit."""


# ---------------------------------------------------------------- strategies and bots


def list_strategies(session: Session) -> tuple[StrategyView, ...]:
    """Every registered strategy, by name, whatever its status."""
    rows = session.scalars(sa.select(Strategy).order_by(Strategy.name))
    return tuple(strategy_view(row) for row in rows)


def get_strategy(session: Session, name: str) -> StrategyDetail | None:
    """One strategy and the bots configured with it; None if no strategy has that name."""
    strategy = session.scalars(sa.select(Strategy).where(Strategy.name == name)).one_or_none()
    if strategy is None:
        return None
    bots = session.scalars(sa.select(Bot).where(Bot.strategy_name == name).order_by(Bot.name))
    return StrategyDetail(strategy_view(strategy), tuple(bot_view(bot) for bot in bots))


def list_bots(session: Session) -> tuple[BotView, ...]:
    """Every bot, by name."""
    return tuple(bot_view(bot) for bot in session.scalars(sa.select(Bot).order_by(Bot.name)))


def get_bot(session: Session, name: str) -> BotView | None:
    """The bot called `name`, or None."""
    bot = session.scalars(sa.select(Bot).where(Bot.name == name)).one_or_none()
    return None if bot is None else bot_view(bot)


# ---------------------------------------------------------------- orders and positions


def list_orders(
    session: Session,
    *,
    bot: str | None = None,
    symbol: str | None = None,
    status: OrderStatus | str | Collection[OrderStatus | str] | None = None,
    role: OrderRole | str | Collection[OrderRole | str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> tuple[OrderView, ...]:
    """Orders matching every given filter, newest first; `since`/`until` bound created_at;
    `offset` rows of that order skipped (pages)."""
    query = sa.select(Order, Bot.name).join(Bot, Order.bot_id == Bot.id)
    if bot is not None:
        query = query.where(Bot.name == bot)
    if symbol is not None:
        query = query.where(Order.symbol == symbol)
    if status is not None:
        query = query.where(Order.status.in_(_members(OrderStatus, status, "order status")))
    if role is not None:
        query = query.where(Order.role.in_(_members(OrderRole, role, "order role")))
    query = query.where(*_time_range(Order.created_at, since, until))
    query = query.order_by(Order.created_at.desc(), Order.id.desc())
    query = query.limit(_limit(limit)).offset(_offset(offset))
    return tuple(order_view(order, bot_name) for order, bot_name in session.execute(query))


def list_positions(
    session: Session,
    *,
    bot: str | None = None,
    status: PositionStatus | str | Collection[PositionStatus | str] | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> tuple[PositionView, ...]:
    """Positions matching every given filter, newest first; `since`/`until` bound
    created_at; `offset` rows of that order skipped (pages)."""
    query = sa.select(Position, Bot.name).join(Bot, Position.bot_id == Bot.id)
    if bot is not None:
        query = query.where(Bot.name == bot)
    if status is not None:
        query = query.where(
            Position.status.in_(_members(PositionStatus, status, "position status"))
        )
    if symbol is not None:
        query = query.where(Position.symbol == symbol)
    query = query.where(*_time_range(Position.created_at, since, until))
    query = query.order_by(Position.created_at.desc(), Position.id.desc())
    query = query.limit(_limit(limit)).offset(_offset(offset))
    return tuple(position_view(row, bot_name) for row, bot_name in session.execute(query))


def get_position(session: Session, position_id: int) -> PositionDetail | None:
    """One position with its orders and their fills (oldest first); None if unknown."""
    found = session.execute(
        sa.select(Position, Bot.name)
        .join(Bot, Position.bot_id == Bot.id)
        .where(Position.id == position_id)
    ).one_or_none()
    if found is None:
        return None
    position, bot_name = found
    orders = session.scalars(
        sa.select(Order).where(Order.position_id == position_id).order_by(Order.id)
    ).all()
    fills = session.scalars(
        sa.select(Fill)
        .join(Order, Fill.order_id == Order.id)
        .where(Order.position_id == position_id)
        .order_by(Fill.filled_at, Fill.id)
    )
    return PositionDetail(
        position=position_view(position, bot_name),
        orders=tuple(order_view(order, bot_name) for order in orders),
        fills=tuple(fill_view(fill) for fill in fills),
    )


# ---------------------------------------------------------------- results


def pnl_summary(
    session: Session,
    *,
    bot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> PnlSummary:
    """Realised PnL, fees, trades and win rate per bot from positions closed in
    [since, until), plus each bot's open positions now. Every bot is listed, by name."""
    closed = Position.status == PositionStatus.CLOSED
    if since is not None:
        closed = closed & (Position.closed_at >= _aware(since, "since"))
    if until is not None:
        closed = closed & (Position.closed_at < _aware(until, "until"))
    trade = closed & Position.opened_at.is_not(None)
    net = Position.realised_pnl - Position.fees

    def total(condition: sa.ColumnElement[bool], value: Any) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)

    query = (
        sa.select(
            Bot.name.label("bot_name"),
            total(trade, 1).label("trades"),
            total(trade & (net > 0), 1).label("wins"),
            total(trade & (net <= 0), 1).label("losses"),
            total(closed, Position.realised_pnl).label("realised_pnl"),
            total(closed, Position.fees).label("fees"),
            total(Position.status.in_(_OPEN_POSITION_STATUSES), 1).label("open_positions"),
        )
        .select_from(Bot)
        .outerjoin(Position, Position.bot_id == Bot.id)
        .group_by(Bot.id, Bot.name)
        .order_by(Bot.name)
    )
    if bot is not None:
        query = query.where(Bot.name == bot)
    return PnlSummary(
        tuple(
            BotPnl(
                bot_name=row["bot_name"],
                trades=int(row["trades"]),
                wins=int(row["wins"]),
                losses=int(row["losses"]),
                realised_pnl=float(row["realised_pnl"]),
                fees=float(row["fees"]),
                open_positions=int(row["open_positions"]),
            )
            for row in session.execute(query).mappings()
        )
    )


def daily_stats(
    session: Session,
    *,
    bot: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> tuple[DailyStatsView, ...]:
    """Per-bot daily totals for UTC days in [since, until), oldest day first, then by bot."""
    query = sa.select(DailyBotStats, Bot.name).join(Bot, DailyBotStats.bot_id == Bot.id)
    if bot is not None:
        query = query.where(Bot.name == bot)
    if since is not None:
        query = query.where(DailyBotStats.day >= since)
    if until is not None:
        query = query.where(DailyBotStats.day < until)
    query = query.order_by(DailyBotStats.day, Bot.name)
    return tuple(
        DailyStatsView(
            bot_name=bot_name,
            day=row.day,
            trades=row.trades,
            wins=row.wins,
            losses=row.losses,
            gross_pnl=row.gross_pnl,
            fees=row.fees,
            net_pnl=row.net_pnl,
            volume=row.volume,
        )
        for row, bot_name in session.execute(query)
    )


# ---------------------------------------------------------------- health, models, events


def heartbeats(
    session: Session,
    *,
    now: datetime | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[HeartbeatView, ...]:
    """Every component's last beat (engines first, then bots, by name), marked stale when
    older than `stale_after` at `now` (default: the wall clock)."""
    reference = datetime.now(UTC) if now is None else _aware(now, "now")
    rows = session.scalars(sa.select(Heartbeat).order_by(Heartbeat.kind.desc(), Heartbeat.name))
    views = []
    for row in rows:
        age = (reference - row.beat_at).total_seconds()
        views.append(
            HeartbeatView(
                kind=row.kind,
                name=row.name,
                engine_id=row.engine_id,
                status=row.status,
                detail=copy.deepcopy(row.detail),
                version=row.version,
                started_at=row.started_at,
                beat_at=row.beat_at,
                age_seconds=age,
                is_stale=age > stale_after.total_seconds(),
            )
        )
    return tuple(views)


def list_model_promotions(
    session: Session, *, model_name: str | None = None, limit: int = DEFAULT_LIMIT
) -> tuple[PromotionView, ...]:
    """Promotion decisions (promoted and refused), newest first."""
    query = sa.select(ModelPromotion)
    if model_name is not None:
        query = query.where(ModelPromotion.model_name == model_name)
    query = query.order_by(ModelPromotion.decided_at.desc(), ModelPromotion.id.desc())
    return tuple(
        PromotionView(
            id=row.id,
            model_name=row.model_name,
            version=row.version,
            alias=row.alias,
            decision=row.decision,
            reasons=copy.deepcopy(row.reasons),
            metrics=copy.deepcopy(row.metrics),
            run_id=row.run_id,
            data_fingerprint=row.data_fingerprint,
            feature_spec_hash=row.feature_spec_hash,
            strategy_hash=row.strategy_hash,
            decided_at=row.decided_at,
        )
        for row in session.scalars(query.limit(_limit(limit)))
    )


def recent_events(
    session: Session,
    *,
    kind: str | None = None,
    bot: str | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> tuple[EventView, ...]:
    """The latest events, newest first, optionally of one kind and/or about one bot;
    `offset` rows of that order skipped (pages)."""
    query = sa.select(Event)
    if kind is not None:
        query = query.where(Event.kind == kind)
    if bot is not None:
        query = query.where(Event.bot_name == bot)
    query = query.order_by(Event.created_at.desc(), Event.id.desc())
    query = query.limit(_limit(limit)).offset(_offset(offset))
    return tuple(
        EventView(
            id=row.id,
            kind=row.kind,
            bot_name=row.bot_name,
            payload=copy.deepcopy(row.payload),
            created_at=row.created_at,
        )
        for row in session.scalars(query)
    )


# ---------------------------------------------------------------- helpers


def _members(enum: type[E], given: E | str | Collection[E | str], what: str) -> list[E]:
    values = [given] if isinstance(given, str) else list(given)
    members = []
    for value in values:
        try:
            members.append(enum(value))
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise QueryError(f"unknown {what} {value!r}: expected one of {allowed}") from None
    return members


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise QueryError(
            f"{name}={moment.isoformat()} has no time zone: pass an aware datetime (UTC)"
        )
    return moment


def _time_range(
    column: InstrumentedAttribute[datetime], since: datetime | None, until: datetime | None
) -> list[sa.ColumnElement[bool]]:
    conditions = []
    if since is not None:
        conditions.append(column >= _aware(since, "since"))
    if until is not None:
        conditions.append(column < _aware(until, "until"))
    return conditions


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise QueryError(f"limit={limit!r}: expected a whole number of rows, at least 1")
    return limit


def _offset(offset: int) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise QueryError(f"offset={offset!r}: expected a whole number of rows, at least 0")
    return offset
