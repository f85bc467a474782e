"""market_data: every hour, ingest the candles that closed in the hour.

For each series and timeframe of the orchestration config (embedded default: the synthetic
BTCUSDT market, 1m; see research/orchestration/config.py and TRADEPIPE_ORCHESTRATION_CONFIG)
one mapped `ingest` task upserts the candles whose start lies in the run's data interval on
the timeframe's grid into the market-data store. Re-running an hour stores nothing new.
No catch-up: a backfill is `airflow dags backfill market_data` over the wanted range.

Each successful `ingest` updates the Airflow asset `tradepipe_market_data` (the event's extra
says which series and how many rows changed): model_lifecycle is scheduled on it, so new
candles start a training run without waiting for its daily schedule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronDataIntervalTimetable, dag, get_current_context, task

PERIOD = timedelta(hours=1)
MARKET_DATA = Asset(name="tradepipe_market_data")  # model_lifecycle refers to it by name


@dag(
    dag_id="market_data",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        # An exchange that stops answering must not hold the next hour's run back.
        "execution_timeout": timedelta(minutes=30),
    },
    tags=["tradepipe", "market-data"],
    doc_md=__doc__,
)
def market_data() -> None:
    @task
    def plan_series() -> list[dict[str, Any]]:
        from research.orchestration.market_data import planned_series

        return planned_series()

    # multiple_outputs=False: a returned dict is one XCom, the reference the next task reads;
    # Airflow would otherwise infer one XCom per key from the dict return annotation.
    @task(multiple_outputs=False, map_index_template="{{ series_key }}", outlets=[MARKET_DATA])
    def ingest(series: dict[str, Any]) -> dict[str, Any]:
        from research.orchestration.common import DataInterval
        from research.orchestration.market_data import ingest_series

        context = get_current_context()
        # Names the mapped instance in the UI ("synthetic/BTCUSDT/1m" instead of "0"), read by
        # map_index_template (Airflow's Context TypedDict does not declare such keys).
        context["series_key"] = f"{series['exchange']}/{series['symbol']}/{series['timeframe']}"  # type: ignore[typeddict-unknown-key]
        summary = ingest_series(series, DataInterval.from_context(context, PERIOD))
        context["outlet_events"][MARKET_DATA].extra = {
            name: summary[name] for name in ("key", "end_ms", "rows_added", "rows_changed")
        }
        return summary

    ingest.expand(series=plan_series())


market_data()
