"""strategy_sync: every day, reconcile the strategy registry with the strategies folder and
backtest every strategy that loads on recent data.

    sync_registry -> plan_backtests -> backtest_strategy (mapped, one per valid strategy)

- sync_registry: tradepipe.strategy.registry_sync.sync_strategies, the one sync the live
  engine and `tradepipe strategies sync` also use (added, edited, invalid with file and
  line, removed, unchanged; idempotent).
- plan_backtests: one window for all (the last days of the configured series up to the
  run's data interval end; orchestration config `[strategy_backtest]`).
- backtest_strategy: backtests the strategy file as it is now (a strategy consuming a model
  with that model's champion) and records an `events` row of kind "strategy_backtest" with
  the metrics, once per (strategy hash, window, model version).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

PERIOD = timedelta(days=1)


@dag(
    dag_id="strategy_sync",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(hours=1),
    },
    tags=["tradepipe", "strategies"],
    doc_md=__doc__,
)
def strategy_sync() -> None:
    # multiple_outputs=False: a returned dict is one XCom, the reference the next task reads;
    # Airflow would otherwise infer one XCom per key from the dict return annotation.
    @task(multiple_outputs=False)
    def sync_registry() -> dict[str, Any]:
        from research.orchestration.strategies import sync_registry

        return sync_registry()

    @task
    def plan_backtests(report: dict[str, Any]) -> list[dict[str, Any]]:
        from research.orchestration.common import DataInterval
        from research.orchestration.strategies import plan_backtests

        interval = DataInterval.from_context(get_current_context(), PERIOD)
        return plan_backtests(report, interval)

    @task(multiple_outputs=False, map_index_template="{{ strategy_name }}")
    def backtest_strategy(plan: dict[str, Any]) -> dict[str, Any]:
        from research.orchestration.common import DataInterval
        from research.orchestration.strategies import backtest_strategy

        context = get_current_context()
        # Read by map_index_template (Airflow's Context TypedDict does not declare such keys).
        context["strategy_name"] = plan["strategy"]  # type: ignore[typeddict-unknown-key]
        return backtest_strategy(plan, DataInterval.from_context(context, PERIOD))

    # A task called here gets the XComArg of the one before; Airflow types the call as the
    # function's own parameters (airflow.sdk.bases.decorator.Task), hence the ignore.
    backtest_strategy.expand(plan=plan_backtests(sync_registry()))  # type: ignore[arg-type]


strategy_sync()
