"""Task bodies of the `daily_report` DAG: per-bot daily totals from closed positions.

The engine upserts `daily_bot_stats` as positions close; this recomputes each UTC day of
the run's data interval from the positions themselves and overwrites the rows, so a missed
or doubled engine update is corrected the day after, and re-running a day writes the same
figures. The definitions are the query layer's (`pnl_summary`), so the dashboard's totals
and these rows agree:
- a trade is a closed position whose entry filled (`opened_at` set): a maker-order timeout
  that never filled closes a position without being a trade;
- a win is a trade with net PnL (realised PnL minus fees) above zero, a loss the others;
- gross PnL and fees sum over every position closed that day; volume is the quote value of
  both legs of each trade (quantity times entry price plus quantity times exit price).

A bot with nothing closed that day gets no row, unless it already had one (which is then
set to the recomputed zeros rather than left stale).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from research.orchestration.common import DataInterval, json_safe, trading_session
from tradepipe.config import Settings, load_settings
from tradepipe.db import Bot, DailyBotStats, Event, Position, PositionStatus

__all__ = ["REPORT_EVENT", "record_daily_report", "roll_up_days"]

REPORT_EVENT = "daily_report"
_FIGURES = ("trades", "wins", "losses", "gross_pnl", "fees", "net_pnl", "volume")


def roll_up_days(interval: DataInterval, settings: Settings | None = None) -> dict[str, Any]:
    """Recompute and upsert daily_bot_stats for every UTC day the interval touches."""
    current = settings or load_settings()
    days: list[dict[str, Any]] = []
    with trading_session(current.resolved_database_url) as session:
        for day in _days(interval):
            days.append(_roll_up(session, day))
    return {"interval": interval.to_dict(), "days": days}


def record_daily_report(
    summary: dict[str, Any], interval: DataInterval, settings: Settings | None = None
) -> dict[str, Any]:
    """One "daily_report" event per interval (replaced on re-runs), for the event feed."""
    current = settings or load_settings()
    totals = {name: sum(day["totals"][name] for day in summary["days"]) for name in _FIGURES}
    payload = json_safe({"days": summary["days"], "totals": totals})
    with trading_session(current.resolved_database_url) as session:
        event = session.scalars(
            sa.select(Event).where(Event.kind == REPORT_EVENT, Event.created_at == interval.end)
        ).first()
        if event is None:
            session.add(Event(kind=REPORT_EVENT, payload=payload, created_at=interval.end))
        else:
            event.payload = payload
    return {"totals": totals, "replaced": event is not None}


def _days(interval: DataInterval) -> list[date]:
    first = interval.start.date()
    last = (interval.end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _roll_up(session: Session, day: date) -> dict[str, Any]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    closed = (
        (Position.status == PositionStatus.CLOSED)
        & (Position.closed_at >= start)
        & (Position.closed_at < start + timedelta(days=1))
    )
    trade = Position.opened_at.is_not(None)
    net = Position.realised_pnl - Position.fees
    legs = Position.quantity * (
        sa.func.coalesce(Position.entry_price, 0.0) + sa.func.coalesce(Position.exit_price, 0.0)
    )

    def total(value: Any, condition: sa.ColumnElement[bool] | None = None) -> Any:
        if condition is not None:
            value = sa.case((condition, value), else_=0)
        return sa.func.coalesce(sa.func.sum(value), 0)

    query = (
        sa.select(
            Position.bot_id,
            total(1, trade).label("trades"),
            total(1, trade & (net > 0)).label("wins"),
            total(1, trade & (net <= 0)).label("losses"),
            total(Position.realised_pnl).label("gross_pnl"),
            total(Position.fees).label("fees"),
            total(legs, trade).label("volume"),
        )
        .where(closed)
        .group_by(Position.bot_id)
    )
    figures = {row.bot_id: row for row in session.execute(query)}
    existing = {
        row.bot_id: row
        for row in session.scalars(sa.select(DailyBotStats).where(DailyBotStats.day == day))
    }
    names = dict(session.execute(sa.select(Bot.id, Bot.name)).tuples().all())
    per_bot: dict[str, dict[str, float | int]] = {}
    for bot_id in sorted(set(figures) | set(existing)):
        found = figures.get(bot_id)
        values: dict[str, float | int] = {
            "trades": int(found.trades) if found else 0,
            "wins": int(found.wins) if found else 0,
            "losses": int(found.losses) if found else 0,
            "gross_pnl": float(found.gross_pnl) if found else 0.0,
            "fees": float(found.fees) if found else 0.0,
            "volume": float(found.volume) if found else 0.0,
        }
        values["net_pnl"] = float(values["gross_pnl"]) - float(values["fees"])
        row = existing.get(bot_id)
        if row is None:
            row = DailyBotStats(bot_id=bot_id, day=day)
            session.add(row)
        for name, value in values.items():
            setattr(row, name, value)
        per_bot[names.get(bot_id, str(bot_id))] = values
    totals = {name: sum(values[name] for values in per_bot.values()) for name in _FIGURES}
    return {"day": day.isoformat(), "bots": per_bot, "totals": totals}
