"""History routes: orders, positions, fills, PnL and events from the trading database, with
filters and pages (read rule, as GET /health).

They read the database through the kernel's query layer (tradepipe.db.queries and
history_queries) in a worker thread, so they show every bot's history, including bots this
engine does not run. Lists come newest first as `{"<items>": [...], "limit", "offset",
"next_offset"}`; `next_offset` is null on the last page. Times are ISO 8601 with a zone
(`2026-12-01T00:00:00Z`); a time without one, an unknown status or role, or a bad page is
400 naming the problem.

- `GET /api/orders?bot=&symbol=&status=&role=&since=&until=&limit=&offset=` (status and role
  repeatable; since/until bound created_at)
- `GET /api/positions?bot=&symbol=&status=&since=&until=&limit=&offset=` (each open one with
  a `mark`: the live price, its time and age, its source `engine` or `last fill` when no
  engine publishes one, and the unrealised PnL before fees; live/api/marks.py),
  `GET /api/positions/{id}` (with its orders and fills; 404 unknown)
- `GET /api/fills?bot=&since=&until=&limit=&offset=` (since/until bound filled_at)
- `GET /api/pnl?bot=&since=&until=`: realised PnL, fees, trades and win rate per bot of the
  positions closed in the range, and the totals; `unrealised`: the open positions' PnL at
  the live price now, per bot and in total, with the prices' sources and oldest age
- `GET /api/pnl/daily?bot=&since=&until=`: the same per UTC day, dates, [since, until),
  default the last 7 days up to today
- `GET /api/events?kind=&bot=&limit=&offset=`
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.params import Depends
from sqlalchemy.orm import Session

from live.api.errors import ApiError
from live.api.marks import engine_marks, mark_body, unrealised_body
from live.engine import Engine
from tradepipe.db.history_queries import daily_pnl, list_fills
from tradepipe.db.queries import (
    QueryError,
    get_position,
    list_orders,
    list_positions,
    pnl_summary,
    recent_events,
)
from tradepipe.db.views import BotPnl, PnlSummary

__all__ = ["MAX_PAGE", "history_router"]

T = TypeVar("T")
MAX_PAGE = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="rows per page")]
Offset = Annotated[int, Query(ge=0, description="rows skipped: the previous next_offset")]
Many = Annotated[list[str] | None, Query()]


def history_router(engine: Engine, *, read: Sequence[Depends]) -> APIRouter:
    router = APIRouter()
    _add_list_routes(router, engine, read)
    _add_position_routes(router, engine, read)
    _add_pnl_routes(router, engine, read)
    return router


async def _query(engine: Engine, function: Callable[[Session], T]) -> T:
    """`function` on a database session in a worker thread; a bad filter is a 400."""
    try:
        return await engine.recorder.read(function)
    except QueryError as error:
        raise ApiError(400, str(error)) from None


async def _paged(
    engine: Engine,
    name: str,
    list_rows: Callable[..., Sequence[Any]],
    filters: dict[str, Any],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """One page of `list_rows(session, **filters, since, until, limit, offset)`."""
    found = await _query(
        engine,
        lambda session: list_rows(
            session, **filters, since=since, until=until, limit=limit, offset=offset
        ),
    )
    return _page(name, found, limit, offset)


def _add_list_routes(router: APIRouter, engine: Engine, read: Sequence[Depends]) -> None:
    """Orders, fills and events: one page of rows each."""

    @router.get("/api/orders", dependencies=read)
    async def orders(
        bot: str | None = None,
        symbol: str | None = None,
        status: Many = None,
        role: Many = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        chosen = {"bot": bot, "symbol": symbol, "status": status, "role": role}
        return await _paged(engine, "orders", list_orders, chosen, since, until, limit, offset)

    @router.get("/api/fills", dependencies=read)
    async def fills(
        bot: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        return await _paged(engine, "fills", list_fills, {"bot": bot}, since, until, limit, offset)

    @router.get("/api/events", dependencies=read)
    async def events(
        kind: str | None = None, bot: str | None = None, limit: Limit = 100, offset: Offset = 0
    ) -> dict[str, Any]:
        found = await _query(
            engine,
            lambda session: recent_events(session, kind=kind, bot=bot, limit=limit, offset=offset),
        )
        return _page("events", found, limit, offset)


def _add_position_routes(router: APIRouter, engine: Engine, read: Sequence[Depends]) -> None:
    """A page of positions (each open one marked at the live price), and one position."""

    @router.get("/api/positions", dependencies=read)
    async def positions(
        bot: str | None = None,
        symbol: str | None = None,
        status: Many = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        def run(session: Session) -> tuple[Any, dict[int, dict[str, Any]]]:
            found = list_positions(
                session, bot=bot, symbol=symbol, status=status, since=since, until=until,
                limit=limit, offset=offset,
            )  # fmt: skip
            marks = {m.position.id: mark_body(m) for m in engine_marks(engine, session, bot=bot)}
            return found, marks

        found, marks = await _query(engine, run)
        page = _page("positions", found, limit, offset)
        for item in page["positions"]:
            item["mark"] = marks.get(item["id"])  # open ones: at the live price
        return page

    @router.get("/api/positions/{position_id}", dependencies=read)
    async def position(position_id: int) -> dict[str, Any]:
        found = await _query(engine, lambda session: get_position(session, position_id))
        if found is None:
            raise ApiError(404, f"no position {position_id}: see GET /api/positions")
        body: dict[str, Any] = jsonable_encoder(found)
        return body


def _add_pnl_routes(router: APIRouter, engine: Engine, read: Sequence[Depends]) -> None:
    """PnL over a range (with the open positions' unrealised PnL now), and per UTC day."""

    @router.get("/api/pnl", dependencies=read)
    async def pnl(
        bot: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        def run(session: Session) -> tuple[PnlSummary, dict[str, Any]]:
            summary = pnl_summary(session, bot=bot, since=since, until=until)
            return summary, unrealised_body(engine_marks(engine, session, bot=bot))

        summary, unrealised = await _query(engine, run)
        return {**_pnl_body(summary), "unrealised": unrealised}

    @router.get("/api/pnl/daily", dependencies=read)
    async def pnl_daily(
        bot: str | None = None, since: date | None = None, until: date | None = None
    ) -> dict[str, Any]:
        last = until or datetime.now(UTC).date() + timedelta(days=1)
        first = since or last - timedelta(days=7)
        days = await _query(
            engine, lambda session: daily_pnl(session, since=first, until=last, bot=bot)
        )
        return {
            "since": first.isoformat(),
            "until": last.isoformat(),
            "days": [{"day": item.day.isoformat(), **_pnl_body(item.pnl)} for item in days],
        }


def _page(name: str, items: Sequence[Any], limit: int, offset: int) -> dict[str, Any]:
    full = len(items) == limit  # there may be more; an empty next page says there are not
    return {
        name: jsonable_encoder(list(items)),
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if full else None,
    }


def _bot_pnl(item: BotPnl | PnlSummary) -> dict[str, Any]:
    return {
        "trades": item.trades,
        "wins": item.wins,
        "realised_pnl": item.realised_pnl,
        "fees": item.fees,
        "net_pnl": item.net_pnl,
        "win_rate": item.win_rate,
        "open_positions": item.open_positions,
    }


def _pnl_body(summary: PnlSummary) -> dict[str, Any]:
    return {
        "bots": [{"bot": bot.bot_name, **_bot_pnl(bot)} for bot in summary.bots],
        "total": _bot_pnl(summary),
    }
