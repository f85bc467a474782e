"""daily_report: every day, roll up the previous UTC day's closed positions per bot.

    roll_up_daily_stats -> record_daily_report

- roll_up_daily_stats: recomputes daily_bot_stats (trades, wins, losses, gross PnL, fees,
  net PnL, volume) of the data interval's day from the positions closed that day and
  upserts one row per bot (see research/orchestration/daily_report.py for definitions).
- record_daily_report: one `events` row of kind "daily_report" with per-bot and total
  figures, replaced when the day is re-run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

PERIOD = timedelta(days=1)


@dag(
    dag_id="daily_report",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=30),
    },
    tags=["tradepipe", "reports"],
    doc_md=__doc__,
)
def daily_report() -> None:
    # multiple_outputs=False: a returned dict is one XCom, the reference the next task reads;
    # Airflow would otherwise infer one XCom per key from the dict return annotation.
    @task(multiple_outputs=False)
    def roll_up_daily_stats() -> dict[str, Any]:
        from research.orchestration.common import DataInterval
        from research.orchestration.daily_report import roll_up_days

        return roll_up_days(DataInterval.from_context(get_current_context(), PERIOD))

    @task(multiple_outputs=False)
    def record_daily_report(summary: dict[str, Any]) -> dict[str, Any]:
        from research.orchestration.common import DataInterval
        from research.orchestration.daily_report import record_daily_report

        interval = DataInterval.from_context(get_current_context(), PERIOD)
        return record_daily_report(summary, interval)

    # A task called here gets the XComArg of the one before; Airflow types the call as the
    # function's own parameters (airflow.sdk.bases.decorator.Task), hence the ignore.
    record_daily_report(roll_up_daily_stats())  # type: ignore[arg-type]


daily_report()
