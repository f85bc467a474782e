"""Trading history for the control API's REST routes: fills across positions and realised
PnL per UTC day, next to the listings of `tradepipe.db.queries` (same rules: frozen views,
QueryError for a bad filter, half-open time ranges, newest first unless stated)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tradepipe.db.models import Bot, Fill, Order

# the listings' own argument checks, so both modules refuse the same inputs the same way
from tradepipe.db.queries import DEFAULT_LIMIT, QueryError, _aware, _limit, _offset, pnl_summary
from tradepipe.db.to_views import fill_view
from tradepipe.db.views import FillView, PnlSummary

__all__ = ["MAX_DAYS", "BotFill", "DayPnl", "daily_pnl", "list_fills"]

MAX_DAYS = 366  # one query per day: a year at most per call


@dataclass(frozen=True, slots=True)
class BotFill:
    """A fill with what it belongs to (the bot, its order and position)."""

    bot_name: str
    symbol: str
    side: str
    role: str
    position_id: int | None
    fill: FillView


@dataclass(frozen=True, slots=True)
class DayPnl:
    day: date  # UTC
    pnl: PnlSummary  # of the positions closed that day, per bot


def list_fills(
    session: Session,
    *,
    bot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> tuple[BotFill, ...]:
    """Fills newest first; `since`/`until` bound filled_at."""
    query = (
        sa.select(Fill, Order, Bot.name)
        .join(Order, Fill.order_id == Order.id)
        .join(Bot, Order.bot_id == Bot.id)
    )
    if bot is not None:
        query = query.where(Bot.name == bot)
    if since is not None:
        query = query.where(Fill.filled_at >= _aware(since, "since"))
    if until is not None:
        query = query.where(Fill.filled_at < _aware(until, "until"))
    query = query.order_by(Fill.filled_at.desc(), Fill.id.desc())
    query = query.limit(_limit(limit)).offset(_offset(offset))
    return tuple(
        BotFill(
            bot_name=bot_name,
            symbol=order.symbol,
            side=order.side.value,
            role=order.role.value,
            position_id=order.position_id,
            fill=fill_view(fill),
        )
        for fill, order, bot_name in session.execute(query)
    )


def daily_pnl(
    session: Session, *, since: date, until: date, bot: str | None = None
) -> tuple[DayPnl, ...]:
    """Realised PnL of the positions closed on each UTC day in [since, until), oldest first,
    computed from the positions themselves (not the daily_report DAG's roll-up, which lags
    by a day)."""
    days = (until - since).days
    if days < 1 or days > MAX_DAYS:
        raise QueryError(
            f"days {since.isoformat()} to {until.isoformat()}: give 1 to {MAX_DAYS} days"
        )
    result = []
    for offset in range(days):
        day = since + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        summary = pnl_summary(session, bot=bot, since=start, until=start + timedelta(days=1))
        result.append(DayPnl(day, summary))
    return tuple(result)
