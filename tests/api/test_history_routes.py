"""The history routes over a real engine that traded (orders, fills, closed positions in its
SQLite database) and a real uvicorn on loopback: filters, pages, PnL per bot and per day
checked against the database itself, the errors, and the OpenAPI document."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.api.harness import engine_api
from tests.engine.helpers import Aio, push, query, walk


def test_orders_positions_fills_pnl_and_events_with_filters_and_pages(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    answers = _ask_every_route_after_trading(aio, database_url, strategies_dir)
    _check_orders_filters_and_pages(answers, database_url)
    closed_rows = _check_positions_and_fills(answers, database_url)
    _check_pnl_per_bot_and_per_day(answers, closed_rows)
    _check_events_errors_and_docs(answers)


def _ask_every_route_after_trading(
    aio: Aio, database_url: str, strategies_dir: Path
) -> dict[str, Any]:
    """A real engine trades 120 candles behind the API; then every route is asked once."""
    answers: dict[str, Any] = {}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            await push(api.running, walk(120))
            await api.running.engine.recorder.wait_durable(
                api.running.engine.recorder.last_submitted, 10
            )
            get = api.client.get
            answers["orders"] = (await get("/api/orders", params={"bot": "alpha"})).json()
            first = (await get("/api/orders", params={"limit": 2})).json()
            second = (await get("/api/orders", params={"limit": 2, "offset": 2})).json()
            answers["pages"] = (first, second)
            answers["entries"] = (
                await get("/api/orders", params={"role": ["entry"], "status": ["filled"]})
            ).json()
            answers["closed"] = (
                await get("/api/positions", params={"status": "closed", "limit": 1000})
            ).json()
            some = answers["closed"]["positions"][0]["id"]
            answers["position"] = (await get(f"/api/positions/{some}")).json()
            answers["missing"] = await get("/api/positions/999999")
            answers["fills"] = (await get("/api/fills", params={"limit": 1000})).json()
            answers["pnl"] = (await get("/api/pnl")).json()
            # the trades' market time is 2024-01-01 (tests.engine.helpers.START_MS)
            answers["daily"] = (
                await get("/api/pnl/daily", params={"since": "2023-12-30", "until": "2024-01-03"})
            ).json()
            answers["default_days"] = (await get("/api/pnl/daily")).json()
            answers["events"] = (await get("/api/events", params={"limit": 5})).json()
            answers["naive"] = await get("/api/orders", params={"since": "2026-01-01T00:00:00"})
            answers["bad_status"] = await get("/api/orders", params={"status": "lost"})
            answers["big_page"] = await get("/api/orders", params={"limit": 5000})
            answers["openapi"] = (await get("/openapi.json")).json()
            answers["docs"] = await get("/docs")

    aio.run(scenario())
    return answers


def _check_orders_filters_and_pages(answers: dict[str, Any], database_url: str) -> None:
    orders = query(database_url, "SELECT o.id, b.name FROM orders o JOIN bots b ON b.id = o.bot_id")
    alpha = {row.id for row in orders if row.name == "alpha"}
    assert {item["id"] for item in answers["orders"]["orders"]} == alpha and alpha
    assert all(item["bot_name"] == "alpha" for item in answers["orders"]["orders"])

    first, second = answers["pages"]
    assert first["next_offset"] == 2 and len(first["orders"]) == 2
    assert not {o["id"] for o in first["orders"]} & {o["id"] for o in second["orders"]}
    assert [o["id"] for o in first["orders"]] == sorted(
        (o["id"] for o in first["orders"]), reverse=True
    )

    assert answers["entries"]["orders"]
    assert {(o["role"], o["status"]) for o in answers["entries"]["orders"]} == {("entry", "filled")}


def _check_positions_and_fills(answers: dict[str, Any], database_url: str) -> list[Any]:
    """The closed positions, one position's detail and the fills; returns the closed rows."""
    closed = answers["closed"]["positions"]
    rows = query(
        database_url,
        "SELECT p.id, b.name, p.realised_pnl, p.fees, p.closed_at, p.opened_at FROM positions p "
        "JOIN bots b ON b.id = p.bot_id WHERE p.status = 'closed'",
    )
    assert {item["id"] for item in closed} == {row.id for row in rows} and len(rows) >= 2
    assert answers["closed"]["next_offset"] is None

    detail = answers["position"]
    assert detail["position"]["id"] == closed[0]["id"]
    assert detail["orders"] and all(
        o["position_id"] == detail["position"]["id"] for o in detail["orders"]
    )
    assert answers["missing"].status_code == 404

    fill_rows = query(database_url, "SELECT id FROM fills")
    assert {item["fill"]["id"] for item in answers["fills"]["fills"]} == {
        row.id for row in fill_rows
    }
    assert all(item["bot_name"] in {"alpha", "beta"} for item in answers["fills"]["fills"])
    return rows


def _check_pnl_per_bot_and_per_day(answers: dict[str, Any], rows: list[Any]) -> None:
    traded = [row for row in rows if row.opened_at is not None]
    net = sum(row.realised_pnl - row.fees for row in rows)
    total = answers["pnl"]["total"]
    assert total["trades"] == len(traded)
    assert abs(total["net_pnl"] - net) < 1e-9
    assert {bot["bot"] for bot in answers["pnl"]["bots"]} == {"alpha", "beta"}

    per_day: dict[str, int] = defaultdict(int)
    for row in traded:
        closed_at = (
            row.closed_at
            if isinstance(row.closed_at, datetime)
            else datetime.fromisoformat(str(row.closed_at))
        )
        per_day[closed_at.replace(tzinfo=UTC).date().isoformat()] += 1
    days = {day["day"]: day["total"]["trades"] for day in answers["daily"]["days"]}
    assert len(days) == 4 and {day: n for day, n in days.items() if n} == dict(per_day)
    assert len(answers["default_days"]["days"]) == 7  # the last week, up to today
    assert answers["default_days"]["days"][-1]["day"] == datetime.now(UTC).date().isoformat()


def _check_events_errors_and_docs(answers: dict[str, Any]) -> None:
    assert len(answers["events"]["events"]) == 5 and answers["events"]["next_offset"] == 5

    assert (
        answers["naive"].status_code == 400 and "no time zone" in answers["naive"].json()["error"]
    )
    assert answers["bad_status"].status_code == 400
    assert "unknown order status 'lost'" in answers["bad_status"].json()["error"]
    assert answers["big_page"].status_code == 422

    paths = answers["openapi"]["paths"]
    assert {"/api/orders", "/api/positions/{position_id}", "/api/pnl/daily", "/api/models"} <= set(
        paths
    )
    assert answers["docs"].status_code == 200 and "swagger" in answers["docs"].text.lower()
