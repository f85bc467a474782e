"""strategy_sync: the registry follows the folder through add, edit, break and delete, and
every valid strategy's backtest is recorded once per version and window."""

from __future__ import annotations

import shutil
from typing import Any

import sqlalchemy as sa

from research.marketdata import IngestRequest, ingest
from tests.dags.conftest import REPO_ROOT, AirflowWorker, Platform
from tradepipe.db import Event, Strategy, StrategyStatus, create_engine_for, session_scope
from tradepipe.marketdata import MarketDataStore

RUN_AT = "2024-03-03T00:00:00+00:00"  # data interval: 2024-03-02
WINDOW_START_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z
WINDOW_END_MS = 1_709_424_000_000  # 2024-03-03T00:00:00Z


def _registry(url: str) -> dict[str, Strategy]:
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        rows = {row.name: row for row in session.scalars(sa.select(Strategy))}
    engine.dispose()
    return rows


def _backtests(url: str) -> list[dict[str, Any]]:
    engine = create_engine_for(url)
    with session_scope(engine) as session:
        events = session.scalars(
            sa.select(Event).where(Event.kind == "strategy_backtest").order_by(Event.id)
        ).all()
        payloads = [dict(event.payload) for event in events]
    engine.dispose()
    return payloads


def test_the_registry_follows_the_folder_and_backtests_are_recorded_once(
    airflow: AirflowWorker, platform: Platform
) -> None:
    # Three days stored; the run's window is the last day before its interval end.
    ingest(
        MarketDataStore(platform.market_data_dir),
        IngestRequest("synthetic", None, "BTCUSDT", "1m", None, WINDOW_START_MS, WINDOW_END_MS),
    )
    platform.write_config('[strategy_backtest]\ndata = "synthetic/BTCUSDT/1m"\ndays = 1\n')
    folder = platform.strategies_dir
    for name in ("ema_rsi", "lgbm_threshold"):
        shutil.copy(REPO_ROOT / "strategies" / f"{name}.py", folder)

    first = airflow.run("strategy_sync", RUN_AT, platform)
    assert first.state == "success", first.tasks
    report = first.xcom["sync_registry"]
    assert [row["name"] for row in report["added"]] == ["ema_rsi", "lgbm_threshold"]
    rows = _registry(platform.database_url)
    assert {name: (row.status, row.version_count) for name, row in rows.items()} == {
        "ema_rsi": (StrategyStatus.VALID, 1),
        "lgbm_threshold": (StrategyStatus.VALID, 1),
    }
    ema, lgbm = first.mapped("backtest_strategy")
    assert ema["status"] == "ok" and ema["metrics"]["trades"] > 0
    assert (ema["start_ms"], ema["end_ms"]) == (WINDOW_END_MS - 86_400_000, WINDOW_END_MS)
    assert ema["content_hash"] == rows["ema_rsi"].content_hash
    # No model has a champion in this MLflow store: recorded as skipped, with the reason.
    assert lgbm["status"] == "skipped" and "btcusdt_1m_triple_barrier" in lgbm["reason"]
    assert len(_backtests(platform.database_url)) == 2

    rerun = airflow.run("strategy_sync", RUN_AT, platform)
    assert rerun.state == "success"
    assert rerun.xcom["sync_registry"]["unchanged"] == ["ema_rsi", "lgbm_threshold"]
    assert all(result["reused"] for result in rerun.mapped("backtest_strategy"))
    assert len(_backtests(platform.database_url)) == 2

    ema_file = folder / "ema_rsi.py"
    ema_file.write_text(ema_file.read_text().replace("40.0", "35.0"))
    edited = airflow.run("strategy_sync", RUN_AT, platform)
    assert edited.state == "success"
    assert [row["name"] for row in edited.xcom["sync_registry"]["edited"]] == ["ema_rsi"]
    new_version = _registry(platform.database_url)["ema_rsi"]
    assert new_version.version_count == 2
    assert new_version.content_hash != rows["ema_rsi"].content_hash
    recorded = _backtests(platform.database_url)
    assert len(recorded) == 3 and recorded[-1]["content_hash"] == new_version.content_hash

    lines = ema_file.read_text().splitlines()
    broken_line = next(i for i, line in enumerate(lines, 1) if "def on_candle" in line)
    lines[broken_line - 1] = "    def on_candle(self, context: DecisionContext) -> Enter | None"
    ema_file.write_text("\n".join(lines) + "\n")
    broken = airflow.run("strategy_sync", RUN_AT, platform)
    assert broken.state == "success", broken.tasks
    (invalid,) = broken.xcom["sync_registry"]["invalid"]
    assert invalid["name"] == "ema_rsi" and invalid["error_line"] == broken_line
    assert f"ema_rsi.py:{broken_line}: syntax error" in invalid["error"]
    row = _registry(platform.database_url)["ema_rsi"]
    assert row.status is StrategyStatus.INVALID and row.error == invalid["error"]
    assert row.content_hash == new_version.content_hash  # the version bots keep running
    assert [plan["strategy"] for plan in broken.xcom["plan_backtests"]] == ["lgbm_threshold"]

    ema_file.unlink()
    deleted = airflow.run("strategy_sync", RUN_AT, platform)
    assert deleted.state == "success"
    assert [row["name"] for row in deleted.xcom["sync_registry"]["removed"]] == ["ema_rsi"]
    assert _registry(platform.database_url)["ema_rsi"].status is StrategyStatus.REMOVED
