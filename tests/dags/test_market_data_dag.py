"""market_data: a run stores the candles that closed in its hour, and a re-run adds nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.dags.conftest import AirflowWorker, Platform
from tradepipe.marketdata import MarketDataStore

HOUR_START_MS = 1_709_337_600_000  # 2024-03-02T00:00:00Z
HOUR_END_MS = HOUR_START_MS + 3_600_000


def asset_events(airflow_home: Path) -> list[dict[str, Any]]:
    """The extras of the tradepipe_market_data events in Airflow's metadata database."""
    engine = sa.create_engine(f"sqlite:///{airflow_home / 'airflow.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                    "WHERE a.name = 'tradepipe_market_data' ORDER BY e.id"
                )
            ).all()
    finally:
        engine.dispose()
    return [json.loads(row.extra) if isinstance(row.extra, str) else row.extra for row in rows]


def test_a_run_ingests_its_hour_in_every_timeframe_and_a_rerun_adds_nothing(
    airflow: AirflowWorker, platform: Platform, airflow_home: Path
) -> None:
    platform.write_config(
        '[[market_data.series]]\nsource = "synthetic"\nsymbol = "BTCUSDT"\n'
        'timeframes = ["1m", "1h", "1d"]\n'
    )
    # A manual run at 01:00 works on the hour that ended then: [00:00, 01:00).
    first = airflow.run("market_data", "2024-03-02T01:00:00+00:00", platform)
    assert first.state == "success", first.tasks
    assert set(first.tasks) == {"plan_series", "ingest[0]", "ingest[1]", "ingest[2]"}
    minutes, hour, day = first.mapped("ingest")

    store = MarketDataStore(platform.market_data_dir)
    candles = store.read_candles("synthetic", "BTCUSDT", "1m")
    assert minutes["key"] == "synthetic/BTCUSDT/1m"
    assert minutes["rows_added"] == len(candles) > 50  # the synthetic market has quiet minutes
    assert candles["start_ms"].min() >= HOUR_START_MS
    assert candles["start_ms"].max() < HOUR_END_MS
    assert hour["rows_added"] == 1 and hour["start_ms"] == HOUR_START_MS
    # The day candle of 2024-03-02 closes at midnight, not in this hour.
    assert day["rows_added"] == 0 and "no 1d candle closes" in day["note"]

    again = airflow.run("market_data", "2024-03-02T01:00:00+00:00", platform)
    assert again.state == "success"
    for result in again.mapped("ingest"):
        assert result["rows_added"] == result["rows_changed"] == 0
    assert len(store.read_candles("synthetic", "BTCUSDT", "1m")) == len(candles)

    # Each ingest updated the asset model_lifecycle is scheduled on, saying what changed.
    events = [extra for extra in asset_events(airflow_home) if extra["end_ms"] == HOUR_END_MS]
    minute_events = [extra for extra in events if extra["key"] == "synthetic/BTCUSDT/1m"]
    assert [extra["rows_added"] for extra in minute_events] == [len(candles), 0]


def test_a_run_without_a_logical_date_ingests_the_hour_before_it_was_due(
    airflow: AirflowWorker, platform: Platform
) -> None:
    run = airflow.run("market_data", None, platform)
    assert run.state == "success", run.tasks
    (result,) = run.mapped("ingest")
    now_ms = time.time() * 1000
    assert result["end_ms"] - result["start_ms"] == 3_600_000
    assert result["end_ms"] % 3_600_000 == 0 and now_ms - 7_200_000 < result["end_ms"] <= now_ms
    assert result["rows_added"] > 0
