"""Open positions marked at the live price: this engine's own last trade per symbol, else
what another fresh engine publishes in its heartbeat, else the last fill (said in `note`).
Used by `GET /api/positions` (a `mark` on each open position) and `GET /api/pnl` (an
`unrealised` block)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from live.engine import Engine
from live.engine.heartbeats import last_trades
from tradepipe.db.dashboard_queries import OpenPositionMark, open_position_marks
from tradepipe.db.live_prices import LivePrice, live_prices

__all__ = ["engine_marks", "mark_body", "unrealised_body"]


def engine_marks(
    engine: Engine, session: Session, *, bot: str | None = None
) -> tuple[OpenPositionMark, ...]:
    now = datetime.now(UTC)
    own = {
        (exchange, symbol): LivePrice(
            exchange, symbol, price, datetime.fromtimestamp(time_ms / 1000, UTC),
            engine.engine_id, now,
        )
        for symbol, (exchange, price, time_ms) in last_trades(engine.core).items()
    }  # fmt: skip
    return open_position_marks(session, bot=bot, prices={**live_prices(session), **own})


def mark_body(mark: OpenPositionMark, now: datetime | None = None) -> dict[str, Any]:
    at = mark.marked_at
    age = None if at is None else round(((now or datetime.now(UTC)) - at).total_seconds(), 3)
    return {
        "price": mark.mark_price,
        "price_time": at.isoformat() if at else None,
        "price_age_seconds": age,
        "price_source": mark.price_source,
        "unrealised_pnl": mark.unrealised_pnl,
        "note": mark.note,
    }


def unrealised_body(marks: Sequence[OpenPositionMark]) -> dict[str, Any]:
    """Unrealised PnL (before fees) per bot and in total, with the marks' sources and age."""
    per_bot: dict[str, float] = {}
    for mark in marks:
        if mark.unrealised_pnl is not None:
            name = mark.position.bot_name
            per_bot[name] = per_bot.get(name, 0.0) + mark.unrealised_pnl
    bodies = [mark_body(mark) for mark in marks]
    ages = [body["price_age_seconds"] for body in bodies if body["price_age_seconds"] is not None]
    return {
        "total": sum(per_bot.values()),
        "bots": per_bot,
        "marked": sum(1 for mark in marks if mark.unrealised_pnl is not None),
        "unmarked": sum(1 for mark in marks if mark.unrealised_pnl is None),
        "price_sources": sorted({m.price_source for m in marks if m.price_source}),
        "oldest_price_age_seconds": max(ages) if ages else None,
        "notes": sorted({m.note for m in marks if m.note}),
    }
