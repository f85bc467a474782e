"""The shadow routes over a real engine and uvicorn: shadow runs and their positions as
recorded in the engine's database, filtered by model, apart from the orders and positions
routes; an unknown run is a 404."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.harness import engine_api
from tests.engine.helpers import START_MS, Aio
from tradepipe.db import create_engine_for, record_shadow, session_scope
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord


def shadow_run(url: str, bot: str, model: str, version: str) -> None:
    closed = ShadowPositionRecord(
        1, "buy", "closed", 1.0, 100.0, 101.0, START_MS, START_MS, START_MS + 60_000,
        "take_profit", 0.2, 1.0,
    )  # fmt: skip
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        record = ShadowRecord(
            bot, model, version, "BTCUSDT", "hash", START_MS, START_MS + 60_000, 12, 1, (closed,)
        )
        record_shadow(session, record)
        record_shadow(session, record)  # applied twice (a retried write): the same rows
    engine.dispose()


def test_shadow_runs_and_positions(aio: Aio, database_url: str, strategies_dir: Path) -> None:
    shadow_run(database_url, "alpha", "model_a", "4")
    shadow_run(database_url, "beta", "model_b", "2")
    answers: dict[str, Any] = {}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            get = api.client.get
            answers["all"] = (await get("/api/shadow")).json()
            answers["a"] = (await get("/api/shadow", params={"model": "model_a"})).json()
            run_id = answers["a"]["runs"][0]["id"]
            answers["positions"] = (await get(f"/api/shadow/{run_id}/positions")).json()
            answers["missing"] = await get("/api/shadow/999/positions")
            answers["orders"] = (await get("/api/orders")).json()

    aio.run(scenario())
    assert {run["bot_name"] for run in answers["all"]["runs"]} == {"alpha", "beta"}
    [run] = answers["a"]["runs"]
    assert run["model_version"] == "4" and run["decisions"] == 12 and run["entries"] == 1
    assert run["closed_positions"] == 1 and run["net_pnl"] == 0.8
    [position] = answers["positions"]["positions"]
    assert position["exit_reason"] == "take_profit" and position["net_pnl"] == 0.8
    assert answers["missing"].status_code == 404
    assert "no shadow run 999" in answers["missing"].json()["error"]
    assert answers["orders"]["orders"] == []
