"""live_review: every day, each bot's live trading of the previous UTC day reconciled with
a backtest of the same recorded market.

    plan_reviews -> review_bot (mapped: one per bot)

- plan_reviews: the bots of the trading database.
- review_bot: `tradepipe live review` for the data interval: the recorded candles replayed
  through the backtester with the strategy and model versions that were live; features,
  probabilities, decisions and positions compared; kept in live_reviews (one row per bot
  and day, replaced on re-runs) and as an MLflow evaluation run of each model version.
  A bot with no recorded decision that day is skipped (see
  research/orchestration/live_review.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

PERIOD = timedelta(days=1)


@dag(
    dag_id="live_review",
    # the UTC day; evidence the engine had not written yet at midnight (it flushes every
    # evidence_flush_seconds) is left out of that run, and a re-run of the day takes it in
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=1),
    },
    tags=["tradepipe", "reports", "live"],
    doc_md=__doc__,
)
def live_review() -> None:
    @task
    def plan_reviews() -> list[dict[str, Any]]:
        from research.orchestration.live_review import plan_reviews

        return plan_reviews()

    @task(multiple_outputs=False, map_index_template="{{ bot_name }}")
    def review_bot(plan: dict[str, Any]) -> dict[str, Any]:
        from research.orchestration.common import DataInterval
        from research.orchestration.live_review import review_one_bot

        context = get_current_context()
        # Read by map_index_template (Airflow's Context TypedDict does not declare such keys).
        context["bot_name"] = plan["bot"]  # type: ignore[typeddict-unknown-key]
        return review_one_bot(plan, DataInterval.from_context(context, PERIOD))

    review_bot.expand(plan=plan_reviews())


live_review()
